import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, inject, it } from 'vitest';
import { tempDir } from '../helpers/cli.js';
import { freePort, PrivateRedis } from '../helpers/redis-server.js';
import {
  census,
  copyIdentitiesWithLargeBudgets,
  expectEachResolvedOnce,
  type RunningProcess,
  seedWork,
  spawnMlos,
  WORK_SCRIPT,
  waitFor,
} from '../helpers/run.js';

const TOKENS = { MLOS_OPERATOR_TOKEN: 'it-operator-token', MLOS_WORKER_TOKEN: 'it-worker-token' };

/**
 * Distributed mode with real processes from the built CLI: a supervisor serving the guard over
 * HTTP with BullMQ on a private Redis, and two worker processes. Each need must be resolved
 * exactly once, whatever is killed.
 */
describe.skipIf(!inject('redisAvailable'))('mlos run (distributed, Redis)', { timeout: 180_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let db: string;
  let redis: PrivateRedis;
  let port: number;
  const procs: RunningProcess[] = [];

  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    copyIdentitiesWithLargeBudgets(dir);
    db = join(dir, 'mlos.db');
    redis = new PrivateRedis(await freePort());
    await redis.start();
    port = await freePort();
  });
  afterEach(async () => {
    for (const p of procs.splice(0)) if (p.child.exitCode === null) p.child.kill('SIGKILL');
    await redis.stop();
    cleanup();
  });

  const supervisor = () => {
    const p = spawnMlos(
      [
        'run',
        '--until-idle',
        '--redis',
        redis.url,
        '--listen',
        `127.0.0.1:${port}`,
        '--no-workers',
        '--lease',
        '2s',
        '--loop',
        '100ms',
        '--retry-delay',
        '200ms',
        '--heartbeat',
        '500ms',
        '--log-format',
        'json',
      ],
      dir,
      TOKENS,
    );
    procs.push(p);
    return p;
  };
  const worker = () => {
    const p = spawnMlos(
      [
        'worker',
        '--redis',
        redis.url,
        '--mcp',
        `http://127.0.0.1:${port}/mcp`,
        '--provider',
        'scripted',
        '--model',
        WORK_SCRIPT,
        '--concurrency',
        '4',
        '--heartbeat',
        '500ms',
        '--log-format',
        'json',
      ],
      dir,
      TOKENS,
    );
    procs.push(p);
    return p;
  };
  const started = (p: RunningProcess, what: string) =>
    waitFor(() => p.output().includes(what), 30_000, `"${what}" in the output:\n${p.output()}`);

  it('200 needs resolved by two workers; one worker SIGKILLed mid-run, the other finishes its needs', async () => {
    const ids = seedWork(db, 200);
    const sup = supervisor();
    await started(sup, 'mlos run started');
    const a = worker();
    const b = worker();
    await started(a, 'mlos worker started');
    await started(b, 'mlos worker started');
    await waitFor(() => census(db).resolved >= 30, 60_000, '30 needs resolved');
    a.child.kill('SIGKILL');
    expect(await sup.exited, sup.output()).toBe(0);
    expectEachResolvedOnce(db, ids);
    b.child.kill('SIGTERM');
    expect(await b.exited).toBe(0);
    // The surviving worker says what it did: its sessions by outcome and their tokens.
    expect(b.output()).toContain('SIGTERM: draining (a second signal exits at once)');
    const closing =
      /mlos worker stopped \(SIGTERM\): (\d+) sessions \((\d+) resolved[^)]*\), (\d+) tokens, \$0\.0000/.exec(
        b.output(),
      );
    expect(closing, b.output()).not.toBeNull();
    expect(Number(closing![2])).toBeGreaterThan(0);
  });

  it('the supervisor SIGKILLed mid-run and restarted: the run completes, each need resolved once', async () => {
    const ids = seedWork(db, 120);
    const sup = supervisor();
    await started(sup, 'mlos run started');
    const a = worker();
    const b = worker();
    await waitFor(() => census(db).resolved >= 20, 60_000, '20 needs resolved');
    sup.child.kill('SIGKILL');
    await sup.exited;
    const again = supervisor();
    expect(await again.exited, again.output()).toBe(0);
    expectEachResolvedOnce(db, ids);
    for (const w of [a, b]) w.child.kill('SIGTERM');
  });

  it('Redis stopped mid-run and restarted empty: reconciliation re-enqueues and the run completes', async () => {
    const ids = seedWork(db, 120);
    const sup = supervisor();
    await started(sup, 'mlos run started');
    worker();
    worker();
    await waitFor(() => census(db).resolved >= 20, 60_000, '20 needs resolved');
    await redis.stop();
    await new Promise((r) => setTimeout(r, 1500));
    await redis.start();
    expect(await sup.exited, sup.output()).toBe(0);
    expectEachResolvedOnce(db, ids);
  });
});
