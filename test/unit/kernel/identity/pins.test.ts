import { cpSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acceptIdentity,
  IdentityFileError,
  identityFromPin,
  identityHash,
  identityStatuses,
  loadIdentityFile,
  resolveRunnableIdentities,
  runnableIdentities,
  syncIdentities,
} from '../../../../src/kernel/identity/index.js';
import { DatabaseError, IdentityDriftError, type Store, UserError } from '../../../../src/store/index.js';
import { makeTempDir, openTestStore } from '../../../helpers/store.js';

const EXAMPLES = resolve(import.meta.dirname, '../../../../identities');

describe('identity pins and drift', () => {
  let store: Store;
  let dir: string;
  let cleanup: () => void;
  const file = (name: string) => join(dir, `${name}.md`);
  const read = (name: string) => readFileSync(file(name), 'utf8');
  const events = (kind?: string) =>
    store.events.since(0).filter((e) => kind === undefined || e.kind === kind);
  const runnable = () => runnableIdentities(store).map((i) => i.name);

  beforeEach(() => {
    ({ dir, cleanup } = makeTempDir('mlos-pins-'));
    cpSync(EXAMPLES, dir, { recursive: true });
    ({ store } = openTestStore());
  });
  afterEach(() => {
    store.close();
    cleanup();
  });

  it('pins every identity on first sight with its exact bytes, and only once', () => {
    const report = syncIdentities(store, dir);
    expect(report.changes.map((c) => [c.name, c.kind])).toEqual([
      ['architect', 'pinned'],
      ['context-manager', 'pinned'],
      ['janitor', 'pinned'],
    ]);
    const pin = store.identities.require('janitor');
    expect(pin.content).toBe(read('janitor'));
    expect(pin.hash).toBe(identityHash(readFileSync(file('janitor'))));
    expect(events('identity.pinned').map((e) => e.entity)).toEqual([
      'architect',
      'context-manager',
      'janitor',
    ]);

    const head = store.events.headSeq();
    expect(syncIdentities(store, dir).changes).toEqual([]);
    expect(store.events.headSeq()).toBe(head);
    expect(runnable()).toEqual(['architect', 'context-manager', 'janitor']);
  });

  it('marks a changed file drifted, keeps its identity from new work, and accepts it with both hashes', () => {
    syncIdentities(store, dir);
    const pinned = store.identities.require('janitor').hash;
    const booted = runnableIdentities(store).find((i) => i.name === 'janitor')!;
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 1', 'capacity: 3'));

    const report = syncIdentities(store, dir);
    expect(report.changes).toEqual([
      expect.objectContaining({ name: 'janitor', kind: 'drifted', pinnedHash: pinned }),
    ]);
    expect(report.drift).toHaveLength(1);
    const drift = report.drift[0]!;
    expect(drift.error).toBeInstanceOf(IdentityDriftError);
    expect(drift.error.code).toBe('identity_drift');
    expect(drift.error.message).toContain('changed since it was pinned');
    expect(drift.error.message).toContain('mlos identity accept janitor');
    expect(events('identity.drifted').at(-1)!.payload).toEqual({
      pinnedHash: pinned,
      fileHash: drift.fileHash,
    });
    expect(runnable()).toEqual(['architect', 'context-manager']);
    expect(resolveRunnableIdentities(store).excluded).toEqual([
      expect.objectContaining({ name: 'janitor', reason: 'drifted' }),
    ]);

    // The same drift is recorded once; a further edit is a new fact.
    const head = store.events.headSeq();
    expect(syncIdentities(store, dir).changes).toEqual([]);
    expect(store.events.headSeq()).toBe(head);
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 3', 'capacity: 4'));
    syncIdentities(store, dir);
    expect(events('identity.drifted')).toHaveLength(2);

    const accepted = acceptIdentity(store, dir, 'janitor');
    expect(accepted).toMatchObject({ outcome: 'accepted', oldHash: pinned, changedFields: ['capacity'] });
    expect(events('identity.accepted').at(-1)!.payload).toEqual({
      oldHash: pinned,
      newHash: accepted.newHash,
    });
    expect(runnableIdentities(store).find((i) => i.name === 'janitor')!.capacity).toBe(4);
    // A session that booted before the change still holds what it booted with.
    expect(booted.capacity).toBe(1);
    expect(Object.isFrozen(booted)).toBe(true);
    expect(acceptIdentity(store, dir, 'janitor').outcome).toBe('unchanged');
  });

  it('lints a file again only when its bytes changed (mlos run syncs the folder every second)', () => {
    const first = loadIdentityFile(file('janitor'));
    expect(loadIdentityFile(file('janitor')).identity).toBe(first.identity);
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 1', 'capacity: 2'));
    const changed = loadIdentityFile(file('janitor'));
    expect(changed.identity).not.toBe(first.identity);
    expect(changed.identity?.capacity).toBe(2);
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 2', 'capacity: 0'));
    expect(loadIdentityFile(file('janitor')).error).toBeInstanceOf(IdentityFileError);
  });

  it('clears drift when the file is back to its pinned bytes', () => {
    syncIdentities(store, dir);
    const original = read('architect');
    writeFileSync(file('architect'), `${original}\nOne more line.\n`);
    syncIdentities(store, dir);
    expect(runnable()).not.toContain('architect');

    writeFileSync(file('architect'), original);
    const report = syncIdentities(store, dir);
    expect(report.changes).toEqual([expect.objectContaining({ name: 'architect', kind: 'restored' })]);
    expect(report.drift).toEqual([]);
    expect(events('identity.restored').map((e) => e.entity)).toEqual(['architect']);
    expect(runnable()).toContain('architect');
  });

  it('builds runnable identities from the pinned bytes, never from the file', () => {
    syncIdentities(store, dir);
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 1', 'capacity: 7'));
    // Not synced yet: the kernel still runs the pinned bytes.
    const janitor = runnableIdentities(store).find((i) => i.name === 'janitor')!;
    expect(janitor.capacity).toBe(1);
    expect(janitor.hash).toBe(store.identities.require('janitor').hash);
    rmSync(dir, { recursive: true, force: true });
    expect(runnable()).toEqual(['architect', 'context-manager', 'janitor']);
  });

  it('excludes paused identities and pins whose bytes do not match their hash', () => {
    syncIdentities(store, dir);
    store.identities.setPaused('architect', true);
    store.identities.pin(
      'rogue',
      identityHash('other bytes'),
      read('janitor').replace('name: janitor', 'name: rogue'),
    );
    const { identities, excluded } = resolveRunnableIdentities(store);
    expect(identities.map((i) => i.name)).toEqual(['context-manager', 'janitor']);
    expect(excluded.map((e) => [e.name, e.reason])).toEqual([
      ['architect', 'paused'],
      ['rogue', 'invalid'],
    ]);
    expect(() => identityFromPin(store.identities.require('rogue'))).toThrow(DatabaseError);
  });

  it('reports each state without writing anything', () => {
    syncIdentities(store, dir);
    store.identities.setPaused('context-manager', true);
    writeFileSync(file('janitor'), `${read('janitor')}\nchanged\n`);
    writeFileSync(file('newcomer'), read('janitor').replace('name: janitor', 'name: newcomer'));
    writeFileSync(file('broken'), '---\nname: broken\n---\nbody\n');
    unlinkSync(file('architect'));
    const head = store.events.headSeq();
    const states = identityStatuses(store, dir).map((s) => [s.name, s.state, s.runnable]);
    expect(states).toEqual([
      ['architect', 'missing-file', true],
      ['broken', 'invalid', false],
      ['context-manager', 'paused', false],
      ['janitor', 'drifted', true],
      ['newcomer', 'new', false],
    ]);
    expect(store.events.headSeq()).toBe(head);

    const report = syncIdentities(store, dir);
    expect(report.missing).toEqual(['architect']);
    expect(report.errors.map((e) => e.file)).toEqual([expect.stringMatching(/broken\.md$/)]);
    expect(report.changes.map((c) => [c.name, c.kind])).toEqual([
      ['janitor', 'drifted'],
      ['newcomer', 'pinned'],
    ]);
  });

  it('marks a pinned file that no longer lints as drifted, and refuses to accept it', () => {
    syncIdentities(store, dir);
    writeFileSync(file('janitor'), read('janitor').replace('capacity: 1', 'capacity: 0'));
    const report = syncIdentities(store, dir);
    expect(report.drift.map((d) => d.name)).toEqual(['janitor']);
    expect(report.errors[0]).toBeInstanceOf(IdentityFileError);

    const head = store.events.headSeq();
    let error: unknown;
    try {
      acceptIdentity(store, dir, 'janitor');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).code).toBe('identity_invalid');
    expect((error as Error).message).toContain('does not lint, so it cannot be accepted');
    expect((error as Error).message).toContain('capacity must be at least 1');
    expect(store.events.headSeq()).toBe(head);
    expect(runnable()).not.toContain('janitor');
  });

  it('refuses to accept a name without a file, saying that the pin stays', () => {
    syncIdentities(store, dir);
    unlinkSync(file('janitor'));
    expect(() => acceptIdentity(store, dir, 'janitor')).toThrow(/the pin \(\w+\) stays in force/);
    expect(() => acceptIdentity(store, dir, 'nobody')).toThrow(/there is no identity nobody/);
    expect(() => acceptIdentity(store, dir, '../etc')).toThrow(/is not an identity name/);
  });
});
