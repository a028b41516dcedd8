import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runnableIdentities } from '../../src/kernel/identity/index.js';
import { Store, type StoredEvent } from '../../src/store/index.js';
import { BIN, runCli, tempDir } from '../helpers/cli.js';

const EXAMPLES = resolve(import.meta.dirname, '../../identities');

/** `mlos identity …` end to end through the built binary, in a temp folder with its own database. */
describe('mlos identity', () => {
  let dir: string;
  let cleanup: () => void;
  let db: string;
  const mlos = (...args: string[]) => runCli(['--db', db, ...args], { cwd: dir });
  const file = (name: string) => join(dir, 'identities', `${name}.md`);
  const withStore = <T>(fn: (store: Store) => T): T => {
    const store = Store.open(db);
    try {
      return fn(store);
    } finally {
      store.close();
    }
  };
  const events = (kind: string): StoredEvent[] =>
    withStore((s) => s.events.since(0, 100_000).filter((e) => e.kind === kind));
  const listed = () =>
    JSON.parse(mlos('identity', 'list', '--json').stdout) as {
      name: string;
      state: string;
      runnable: boolean;
    }[];

  beforeAll(() => {
    ({ dir, cleanup } = tempDir('mlos-identity-'));
    db = join(dir, 'state', 'mlos.db');
    cpSync(EXAMPLES, join(dir, 'identities'), { recursive: true });
    expect(runCli(['--db', db, 'init'], { cwd: dir }).code).toBe(0);
  });
  afterAll(() => cleanup());

  it('lints the example identities clean, and lists every error of a bad folder one per line', () => {
    const ok = mlos('identity', 'lint');
    expect(ok.code).toBe(0);
    expect(ok.stdout.trim()).toBe('ok: 3 identities (architect, context-manager, janitor)');

    const bad = join(dir, 'bad-identities');
    cpSync(join(dir, 'identities'), bad, { recursive: true });
    writeFileSync(join(bad, 'janitor.md'), readFileSync(file('janitor'), 'utf8').replace('scope:', 'scop:'));
    writeFileSync(
      join(bad, 'architect.md'),
      readFileSync(file('architect'), 'utf8').replace('capacity: 2', 'capacity: 0'),
    );
    const r = mlos('identity', 'lint', 'bad-identities');
    expect(r.code).toBe(1);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toEqual([
      expect.stringMatching(/^bad-identities\/architect\.md:\d+: capacity must be at least 1/),
      'bad-identities/janitor.md: scope is required: the tags this identity watches, e.g. scope: { primary: [cleanup], peripheral: [schema] }',
      expect.stringMatching(
        /^bad-identities\/janitor\.md:\d+: unknown field "scop" \(did you mean "scope"\?\)$/,
      ),
    ]);
    expect(r.stderr).toContain('3 errors in 2 of 3 identity files');
  });

  it('shows new identities without pinning them, then pins them on sync', () => {
    expect(listed().map((s) => [s.name, s.state])).toEqual([
      ['architect', 'new'],
      ['context-manager', 'new'],
      ['janitor', 'new'],
    ]);
    expect(events('identity.pinned')).toEqual([]);

    const sync = mlos('identity', 'sync');
    expect(sync.code).toBe(0);
    expect(sync.stdout).toContain('ok: 3 identities pinned');
    expect(events('identity.pinned').map((e) => e.entity)).toEqual([
      'architect',
      'context-manager',
      'janitor',
    ]);
    expect(listed().every((s) => s.state === 'pinned' && s.runnable)).toBe(true);
    expect(mlos('identity', 'list').stdout).toMatch(
      /^janitor\s+pinned\s+[0-9a-f]{12}\s+yes\s+identities\/janitor\.md$/m,
    );
  });

  it('names the folder with --identities, as init and run do (--dir still works); a missing one lists the pins', () => {
    cpSync(join(dir, 'identities'), join(dir, 'team'), { recursive: true });
    expect(mlos('identity', 'list', '--identities', 'team').stdout).toMatch(
      /^janitor\s+pinned\s+[0-9a-f]{12}\s+yes\s+team\/janitor\.md$/m,
    );
    expect(mlos('identity', 'list', '--dir', 'team').stdout).toContain('team/janitor.md');
    expect(mlos('identity', 'lint', '--identities', 'team').stdout.trim()).toBe(
      'ok: 3 identities (architect, context-manager, janitor)',
    );
    expect(mlos('identity', 'show', 'janitor', '--identities', 'team').stdout).toMatch(
      /^janitor — team\/janitor\.md$/m,
    );
    // The pins are what agents run: a wrong folder shows them, each missing its file, and says why.
    const missing = mlos('identity', 'list', '--identities', 'nowhere');
    expect(missing.code).toBe(0);
    expect(missing.stdout).toMatch(/^janitor\s+missing-file\s+[0-9a-f]{12}\s+yes\s+-$/m);
    expect(missing.stdout).toContain(
      'nowhere/ does not exist, so only the pins are listed: name the folder that holds your identity files with --identities DIR',
    );
    expect(mlos('identity', 'lint', 'nowhere').stderr).toContain('nowhere does not exist');
  });

  it('shows an identity with its defaults applied and durations readable', () => {
    const text = mlos('identity', 'show', 'janitor');
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('grace 45s, peripheral delay 1m (default)');
    expect(text.stdout).toContain('cooldown 2m (default), escalation 10m (default)');
    expect(text.stdout).toContain('100,000 tokens per task');
    const json = JSON.parse(mlos('identity', 'show', 'janitor', '--json').stdout);
    expect(json.takeover).toEqual({
      grace: 45_000,
      peripheralDelay: 60_000,
      cooldown: 120_000,
      escalation: 600_000,
    });
    expect(json.defaults).toEqual(expect.arrayContaining(['tools', 'takeover.cooldown']));
    expect(json.defaults).not.toContain('takeover.grace');
    expect(mlos('identity', 'show', 'nobody').stderr).toContain('identity nobody does not exist');
  });

  it('drift: an edited file is drifted and not runnable until accepted; the event holds both hashes', () => {
    const pinned = withStore((s) => s.identities.require('janitor').hash);
    writeFileSync(
      file('janitor'),
      readFileSync(file('janitor'), 'utf8').replace('capacity: 1', 'capacity: 2'),
    );
    expect(listed().find((s) => s.name === 'janitor')!.state).toBe('drifted');

    const sync = mlos('identity', 'sync');
    expect(sync.code).toBe(1);
    expect(sync.stdout).toContain('janitor: identities/janitor.md changed since it was pinned');
    expect(sync.stderr).toContain('1 identity drifted');
    const janitor = listed().find((s) => s.name === 'janitor')!;
    expect(janitor).toMatchObject({ state: 'drifted', runnable: false });
    expect(withStore((s) => runnableIdentities(s).map((i) => i.name))).toEqual([
      'architect',
      'context-manager',
    ]);
    expect(events('identity.drifted').map((e) => e.entity)).toEqual(['janitor']);

    const accept = mlos('identity', 'accept', 'janitor');
    expect(accept.code).toBe(0);
    expect(accept.stdout).toContain('(changed: capacity)');
    const newHash = withStore((s) => s.identities.require('janitor').hash);
    expect(newHash).not.toBe(pinned);
    expect(events('identity.accepted').map((e) => e.payload)).toEqual([{ oldHash: pinned, newHash }]);
    expect(withStore((s) => runnableIdentities(s).find((i) => i.name === 'janitor')!.capacity)).toBe(2);
    expect(mlos('audit', 'verify').stdout).toMatch(/^ok: \d+ events/);
    expect(mlos('identity', 'accept', 'janitor').stdout).toContain('nothing to accept');
  });

  it('accept refuses a file that fails lint and leaves the pin alone', () => {
    const before = withStore((s) => ({
      head: s.events.headSeq(),
      hash: s.identities.require('architect').hash,
    }));
    const original = readFileSync(file('architect'), 'utf8');
    writeFileSync(file('architect'), original.replace('model: scripted:demo', 'model: gpt-4o'));
    const r = mlos('identity', 'accept', 'architect');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('identities/architect.md does not lint, so it cannot be accepted');
    expect(r.stderr).toMatch(/identities\/architect\.md:\d+: model must be a model spec/);
    expect(withStore((s) => s.identities.require('architect').hash)).toBe(before.hash);
    writeFileSync(file('architect'), original);
    expect(mlos('identity', 'sync').code).toBe(0);
  });

  it('pause and resume take an identity out of and back into the runnable list', () => {
    expect(mlos('identity', 'pause', 'architect').code).toBe(0);
    expect(listed().find((s) => s.name === 'architect')).toMatchObject({ state: 'paused', runnable: false });
    expect(mlos('identity', 'resume', 'architect').code).toBe(0);
    expect(listed().find((s) => s.name === 'architect')).toMatchObject({ state: 'pinned', runnable: true });
  });

  describe('watch', () => {
    let child: ChildProcess | undefined;
    afterAll(() => {
      if (child && child.exitCode === null) child.kill('SIGKILL');
    });

    it('marks a file rewritten while watched drifted within 2 s, and clears it when restored', async () => {
      child = spawn(process.execPath, [BIN, '--db', db, 'identity', 'watch'], {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let stdout = '';
      child.stdout!.on('data', (chunk: Buffer) => {
        stdout += chunk.toString();
      });
      const exited = new Promise<number | null>((done) => child!.on('exit', (code) => done(code)));
      await until(() => stdout.includes('watching'), 10_000, 'the watcher did not start');

      const original = readFileSync(file('context-manager'), 'utf8');
      let seq = withStore((s) => s.events.headSeq());
      writeFileSync(file('context-manager'), `${original}\nA line added while the system runs.\n`);
      await until(() => hasEvent(seq, 'identity.drifted', 'context-manager'), 2000, 'no drift within 2 s');
      expect(listed().find((s) => s.name === 'context-manager')).toMatchObject({
        state: 'drifted',
        runnable: false,
      });

      seq = withStore((s) => s.events.headSeq());
      writeFileSync(file('context-manager'), original);
      await until(
        () => hasEvent(seq, 'identity.restored', 'context-manager'),
        2000,
        'not restored within 2 s',
      );
      expect(listed().find((s) => s.name === 'context-manager')).toMatchObject({
        state: 'pinned',
        runnable: true,
      });

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(stdout).toContain('drifted   context-manager');
      expect(stdout).toContain('restored  context-manager');
    });
  });

  function hasEvent(afterSeq: number, kind: string, entity: string): boolean {
    return withStore((s) => s.events.since(afterSeq).some((e) => e.kind === kind && e.entity === entity));
  }
});

/** Polls `check` every 20 ms until it holds, failing with `what` after `deadlineMs`. */
async function until(check: () => boolean, deadlineMs: number, what: string): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} (waited ${deadlineMs} ms)`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
