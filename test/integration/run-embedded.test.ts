import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import {
  census,
  copyIdentitiesWithLargeBudgets,
  expectEachResolvedOnce,
  seedWork,
  spawnMlos,
  WORK_SCRIPT,
  waitFor,
} from '../helpers/run.js';

const RUN_FLAGS = [
  '--until-idle',
  '--provider',
  'scripted',
  '--model',
  WORK_SCRIPT,
  '--lease',
  '2s',
  '--heartbeat',
  '500ms',
  '--loop',
  '100ms',
  '--retry-delay',
  '200ms',
  '--concurrency',
  '6',
  '--log-format',
  'json',
];

/** `mlos run` in embedded mode, as real processes started from the built CLI. */
describe('mlos run (embedded)', { timeout: 180_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let db: string;
  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    copyIdentitiesWithLargeBudgets(dir);
    db = join(dir, 'mlos.db');
  });
  afterEach(() => cleanup());

  it('resolves 200 needs with dependencies and exits 0 when idle', async () => {
    const ids = seedWork(db, 200);
    const run = spawnMlos(['run', ...RUN_FLAGS], dir);
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain('mlos run stopped (idle): 200 needs resolved');
    expectEachResolvedOnce(db, ids);
  });

  it('a second mlos run on the same database refuses and names the holder', async () => {
    seedWork(db, 5);
    const first = spawnMlos(
      ['run', '--provider', 'scripted', '--model', WORK_SCRIPT, '--log-format', 'json'],
      dir,
    );
    await waitFor(() => first.output().includes('mlos run started'), 20_000, 'the first run to start');
    const second = spawnMlos(['run', '--log-format', 'json'], dir);
    expect(await second.exited).toBe(1);
    expect(second.output()).toMatch(/another supervisor holds this database: pid \d+ on /);
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
  });

  it('survives a SIGKILL of the supervisor mid-run: the restart finishes, each need resolved once', async () => {
    const ids = seedWork(db, 120);
    const first = spawnMlos(['run', ...RUN_FLAGS], dir);
    await waitFor(() => census(db).resolved >= 20, 60_000, '20 needs resolved');
    first.child.kill('SIGKILL');
    await first.exited;
    const before = census(db);
    expect(before.resolved).toBeLessThan(120);
    const second = spawnMlos(['run', ...RUN_FLAGS], dir);
    expect(await second.exited, second.output()).toBe(0);
    expectEachResolvedOnce(db, ids);
  });

  it('drains on SIGTERM: the run stops cleanly and a later run finishes the work', async () => {
    const ids = seedWork(db, 60);
    const first = spawnMlos(['run', ...RUN_FLAGS, '--drain', '5s'], dir);
    await waitFor(() => census(db).resolved >= 5, 60_000, '5 needs resolved');
    first.child.kill('SIGTERM');
    expect(await first.exited).toBe(0);
    expect(first.output()).toContain('SIGTERM: draining');
    const after = census(db);
    expect(after.active).toBe(0);
    const second = spawnMlos(['run', ...RUN_FLAGS], dir);
    expect(await second.exited, second.output()).toBe(0);
    expectEachResolvedOnce(db, ids);
  });
});
