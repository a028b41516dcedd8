/**
 * An in-process `mlos run` for benchmarks: a fresh database in a temp folder, the repository's
 * identities with their daily budgets lifted and `concurrency` seats each, the scripted `noop`
 * model (one finish call per session), and WAL checkpoints in a worker thread as `mlos run` does.
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdapters } from '../../dist/scheduler/adapters.js';
import { silentLogger } from '../../dist/scheduler/logger.js';
import { Runtime } from '../../dist/scheduler/runtime.js';
import { Store } from '../../dist/store/index.js';
import { dropKeys } from './redis-keys.mjs';

const ROOT = new URL('../..', import.meta.url).pathname;

function identitiesDir(dir, concurrency) {
  const out = join(dir, 'identities');
  mkdirSync(out);
  for (const file of readdirSync(join(ROOT, 'identities'))) {
    const text = readFileSync(join(ROOT, 'identities', file), 'utf8')
      .replace(/per_day: \d+/, 'per_day: 1000000000')
      .replace(/capacity: \d+/, `capacity: ${concurrency}`);
    writeFileSync(join(out, file), text);
  }
  return out;
}

/**
 * Starts a runtime; `redisUrl` puts its queue and bus on Redis (else the in-process ones).
 * `close()` stops it, deletes its folder and the Redis keys it left.
 */
export async function benchRuntime({
  redisUrl,
  concurrency = 8,
  compileViews = false,
  viewThread = true,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-'));
  const store = Store.open(join(dir, 'mlos.db'), { actor: 'bench' });
  const namespace = `bench${randomUUID().slice(0, 8)}`;
  const { queue, bus } = await createAdapters({ redisUrl, namespace, log: silentLogger });
  const runtime = new Runtime({
    store,
    queue,
    bus,
    identitiesDir: identitiesDir(dir, concurrency),
    embeddedWorkers: true,
    concurrency,
    leaseMs: 60_000,
    heartbeatMs: 5000,
    loopMs: 200,
    maxAttempts: 3,
    providerOverrides: { provider: 'scripted', model: 'noop' },
    env: {},
    compileViews,
    viewThread,
    // As mlos run does: WAL checkpoints in a worker thread, not in the commit that fills the log.
    backgroundCheckpoints: true,
    runTokenLimit: null,
  });
  await runtime.start();
  return {
    store,
    runtime,
    async close() {
      await runtime.close(5000);
      store.close();
      rmSync(dir, { recursive: true, force: true });
      // Its queues' jobs, the bus stream and snapshot.
      if (redisUrl) await dropKeys(redisUrl, [`*${namespace}*`]);
    },
  };
}

/** How many needs are resolved. */
export function resolvedCount(store) {
  return store.needs
    .counts()
    .filter((c) => c.status === 'resolved')
    .reduce((a, c) => a + c.count, 0);
}

/**
 * One idle pickup probe: waits 50 ms (the previous probe's aftermath, session teardown, bus
 * publication, the round table reading its events, is over), creates one kernel need, kicks the
 * supervisor and polls until the need is resolved. Returns its task (createdAt, startedAt).
 */
export async function idleProbe(env, i) {
  await new Promise((r) => setTimeout(r, 50));
  const need = env.store.needs.create({ title: `probe ${i}`, tags: ['kernel'] });
  env.runtime.supervisor.kick();
  for (;;) {
    const task = env.store.tasks.forNeed(need.id)[0];
    if (task?.startedAt != null && env.store.needs.require(need.id).status === 'resolved') return task;
    await new Promise((r) => setTimeout(r, 2));
  }
}
