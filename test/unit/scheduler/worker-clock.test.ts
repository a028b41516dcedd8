import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ScriptedProvider } from '../../../src/agents/providers/index.js';
import { EmbeddedConnector } from '../../../src/scheduler/connector.js';
import { MemoryTaskQueue } from '../../../src/scheduler/memory-task-queue.js';
import { Worker } from '../../../src/scheduler/worker.js';
import { createGuardWorld } from '../../helpers/guard.js';
import { finish } from '../agents/session-helpers.js';

/**
 * A worker's sessions read the lease the guard gave on the guard's clock (its connector's). The
 * world's clock is a manual one, a day behind this machine's: read on this machine's clock, the
 * lease would have ended a day ago and no retry would be waited for.
 */
describe('a worker’s sessions on the guard’s clock', () => {
  let world: ReturnType<typeof createGuardWorld>;
  let queue: MemoryTaskQueue;
  let worker: Worker | undefined;
  beforeEach(() => {
    world = createGuardWorld();
    queue = new MemoryTaskQueue();
  });
  afterEach(async () => {
    await worker?.close(1000);
    await queue.close(1000);
    world.close();
  });

  it('waits out a retry-after the guard’s lease leaves room for', async () => {
    expect(Date.now() - world.clock.now()).toBeGreaterThan(3_600_000);
    const need = world.store.needs.create({ title: 'Behind a rate limit', tags: ['kernel'] });
    const task = world.store.tasks.create(need.id, 'architect');
    const slept: number[] = [];
    const provider = new ScriptedProvider({
      script: {
        failures: { retry_after_ms: 25_000 },
        rules: [{ steps: [{ ...finish('resolved'), fail: ['rate_limit'] }] }],
      },
      sleep: async () => {},
    });
    const ended = new Promise<void>((resolve) => {
      worker = new Worker({
        queue,
        connector: new EmbeddedConnector(world.deps),
        identities: ['architect'],
        concurrency: 1,
        heartbeatMs: 3_600_000,
        providerFor: () => ({ provider, model: 'test' }),
        sessionTime: {
          sleep: async (ms) => {
            slept.push(ms);
            world.clock.advance(ms);
          },
        },
        onSessionEnd: () => resolve(),
      });
    });
    await worker!.start();
    await queue.enqueue({ taskId: task.id, needId: need.id, identity: 'architect', attempt: 1 });
    await ended;
    expect(slept).toEqual([25_000]);
    expect(world.store.tasks.require(task.id).status).toBe('succeeded');
    expect(world.store.needs.require(need.id).status).toBe('resolved');
  });
});
