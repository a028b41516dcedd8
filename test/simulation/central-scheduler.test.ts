import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CentralScheduler } from '../../src/scheduler/simulation/central-scheduler.js';
import type { SimAgents } from '../../src/scheduler/simulation/sim-agents.js';
import type { QueuedJob } from '../../src/scheduler/task-queue.js';
import { createGuardWorld } from '../helpers/guard.js';

/** The central scheduler keeps graduation's retry rules (the baseline must not be favoured). */
describe('central scheduler: retries', () => {
  let world: ReturnType<typeof createGuardWorld>;
  let jobs: QueuedJob[];
  let wakes: number[];
  let central: CentralScheduler;
  beforeEach(() => {
    world = createGuardWorld();
    jobs = [];
    wakes = [];
    const agent = {
      id: 'agent_0',
      seat: 0,
      alive: true,
      identity: world.identity('architect'),
      inbox: { enqueue: async (job: QueuedJob) => void jobs.push(job) },
      worker: { running: 0 },
    };
    central = new CentralScheduler({
      store: world.store.as('central'),
      agents: { list: [agent] } as unknown as SimAgents,
      clock: world.clock,
      timers: {
        setTimeout: (_fn, ms) => {
          wakes.push(world.clock.now() + ms);
          return { cancel: () => {} };
        },
      },
      policy: { maxAttempts: 3, retryDelayMs: 5000, maxRetryDelayMs: 600_000 },
    });
  });
  afterEach(() => world.close());

  const fail = (needId: string) => {
    const { task } = world.store.claims.claim(needId, { identity: 'architect', leaseMs: 60_000 });
    world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
  };
  const settle = (task: string) => world.store.tasks.cancel(task, 'for the test');

  it('dispatches a failed need again only when its retry delay has passed, and wakes then', () => {
    const need = world.store.needs.create({ title: 'flaky', tags: ['kernel'] });
    fail(need.id);
    const failedAt = world.clock.now();
    world.clock.advance(1000);
    central.step();
    expect(jobs).toHaveLength(0);
    expect(wakes).toContain(failedAt + 5000);
    world.clock.set(failedAt + 5000);
    central.notify();
    central.step();
    expect(jobs.map((j) => j.needId)).toEqual([need.id]);
    // A second failure: twice the delay.
    settle(jobs[0]!.taskId);
    fail(need.id);
    const again = world.clock.now();
    world.clock.advance(9999);
    central.notify();
    central.step();
    expect(jobs).toHaveLength(1);
    world.clock.advance(1);
    central.notify();
    central.step();
    expect(jobs).toHaveLength(2);
    expect(wakes).toContain(again + 10_000);
  });

  it('dispatches a need at its lease expiry at once, as a takeover would, but never a dead-lettered one', () => {
    const crashed = world.store.needs.create({ title: 'its agent died', tags: ['kernel'] });
    const { task } = world.store.claims.claim(crashed.id, { identity: 'architect', leaseMs: 60_000 });
    const dead = world.store.needs.create({ title: 'failed three times', tags: ['kernel'] });
    for (let i = 0; i < 3; i++) fail(dead.id);
    world.store.needs.setFlags(dead.id, { orphaned: true });
    world.clock.advance(60_000);
    central.step();
    expect(world.store.tasks.require(task.id).status).toBe('lost');
    expect(jobs.map((j) => j.needId)).toEqual([crashed.id]);
    world.clock.advance(3_600_000);
    central.notify();
    central.step();
    expect(jobs.map((j) => j.needId)).toEqual([crashed.id]);
  });

  it('cancels a task whose identity was held before it started, and dispatches it when the hold ends', () => {
    const need = world.store.needs.create({ title: 'dispatched, then held', tags: ['kernel'] });
    central.step();
    expect(jobs.map((j) => j.needId)).toEqual([need.id]);
    // Another session of the identity met a model outage before this one started.
    world.store.identities.hold('architect', 'the model call failed: 529 overloaded', () => 30_000);
    central.step();
    expect(world.store.tasks.require(jobs[0]!.taskId).status).toBe('cancelled');
    expect(central.stats.cancelled).toBe(1);
    world.clock.advance(30_000);
    central.step();
    expect(jobs.map((j) => j.needId)).toEqual([need.id, need.id]);
    expect(world.store.tasks.require(jobs[1]!.taskId).status).toBe('queued');
  });
});
