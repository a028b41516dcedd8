import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  IdentityWatcher,
  runnableIdentities,
  type SyncReport,
} from '../../../../src/kernel/identity/index.js';
import { Store, type StoredEvent } from '../../../../src/store/index.js';
import { makeTempDir } from '../../../helpers/store.js';

const EXAMPLES = resolve(import.meta.dirname, '../../../../identities');
const DEADLINE_MS = 2000;

/** Polls `find` until it returns something or the deadline passes. */
async function waitFor<T>(find: () => T | undefined, deadlineMs: number): Promise<T | undefined> {
  const until = Date.now() + deadlineMs;
  for (;;) {
    const found = find();
    if (found !== undefined || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('IdentityWatcher', () => {
  let dir: string;
  let cleanup: () => void;
  let store: Store;
  let watcher: IdentityWatcher | undefined;
  const file = (name: string) => join(dir, 'identities', `${name}.md`);
  const eventAfter = (seq: number, kind: string, entity: string) => () =>
    store.events.since(seq).find((e: StoredEvent) => e.kind === kind && e.entity === entity);

  beforeEach(() => {
    ({ dir, cleanup } = makeTempDir('mlos-watch-'));
    cpSync(EXAMPLES, join(dir, 'identities'), { recursive: true });
    store = Store.open(join(dir, 'mlos.db'), { actor: 'supervisor' });
  });
  afterEach(() => {
    watcher?.close();
    watcher = undefined;
    store.close();
    cleanup();
  });

  for (const mode of ['fs.watch', 'polling only'] as const) {
    it(`notices a rewritten file within 2 s and clears the mark when it is restored (${mode})`, async () => {
      const reports: SyncReport[] = [];
      watcher = new IdentityWatcher({
        store,
        dir: join(dir, 'identities'),
        fsWatch: mode === 'fs.watch',
        pollIntervalMs: mode === 'fs.watch' ? 60_000 : 250,
        onChange: (r) => reports.push(r),
      });
      watcher.start();
      expect(watcher.state).toBe('watching');
      expect(store.identities.list().map((p) => p.name)).toEqual(['architect', 'context-manager', 'janitor']);
      const booted = runnableIdentities(store).find((i) => i.name === 'janitor')!;

      const original = readFileSync(file('janitor'), 'utf8');
      let seq = store.events.headSeq();
      writeFileSync(file('janitor'), original.replace('capacity: 1', 'capacity: 2'));
      const drifted = await waitFor(eventAfter(seq, 'identity.drifted', 'janitor'), DEADLINE_MS);
      expect(drifted, 'no identity.drifted event within 2 s').toBeDefined();
      expect(drifted!.actor).toBe('supervisor');
      expect(runnableIdentities(store).map((i) => i.name)).not.toContain('janitor');
      expect(reports.at(-1)!.drift.map((d) => d.name)).toEqual(['janitor']);
      expect(booted.capacity).toBe(1);

      seq = store.events.headSeq();
      writeFileSync(file('janitor'), original);
      const restored = await waitFor(eventAfter(seq, 'identity.restored', 'janitor'), DEADLINE_MS);
      expect(restored, 'no identity.restored event within 2 s').toBeDefined();
      expect(runnableIdentities(store).map((i) => i.name)).toContain('janitor');
    });
  }

  it('starts and closes idempotently, and cannot be restarted once closed', () => {
    watcher = new IdentityWatcher({ store, dir: join(dir, 'identities') });
    watcher.start();
    watcher.start();
    watcher.close();
    watcher.close();
    expect(watcher.state).toBe('closed');
    expect(watcher.sync()).toBeNull();
    expect(() => watcher!.start()).toThrow(/closed/);
  });

  it('reports a failing sync once and keeps watching', async () => {
    const errors: unknown[] = [];
    watcher = new IdentityWatcher({
      store,
      dir: join(dir, 'missing'),
      pollIntervalMs: 20,
      onError: (e) => errors.push(e),
    });
    watcher.start();
    await new Promise((r) => setTimeout(r, 150));
    expect(watcher.state).toBe('watching');
    const messages = errors.map((e) => (e as Error).message);
    expect(messages.filter((m) => m.includes('does not exist'))).toHaveLength(1);
  });
});
