import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Graduation, type GraduationOptions } from '../../../src/scheduler/graduation.js';
import { silentLogger } from '../../../src/scheduler/logger.js';
import { createGuardWorld } from '../../helpers/guard.js';

/**
 * Graduation passes: a full pass goes over every candidate; within the loop interval a pass reads
 * only the first few (the slots a finished task freed), and goes over all of them when those few
 * could not fill the free slots.
 */
describe('graduation passes', () => {
  let world: ReturnType<typeof createGuardWorld>;
  let graduation: Graduation;
  let capacity: number;
  let warnings: { obj: Record<string, unknown>; msg: string }[];
  beforeEach(() => {
    world = createGuardWorld();
    capacity = 1;
    warnings = [];
    graduation = graduationWith({});
  });

  /** A Graduation over the world whose warnings land in `warnings`, architect at `capacity` seats. */
  const graduationWith = (options: Partial<GraduationOptions>) =>
    new Graduation({
      store: world.store.as('supervisor'),
      log: {
        ...silentLogger,
        warn: (obj, msg) => warnings.push({ obj: obj as Record<string, unknown>, msg: msg ?? '' }),
      },
      maxAttempts: 3,
      loopMs: 500,
      slots: () => [{ identity: world.identity('architect'), capacity }],
      ...options,
    });
  afterEach(() => world.close());

  const endLive = (needId: string) => {
    const task = world.store.tasks.liveFor(needId)!;
    world.store.tasks.cancel(task.id, 'done for the test');
    world.store.needs.drop(needId);
  };

  it('graduates in priority order within the loop interval, as a full pass would', () => {
    // Oldest first within a priority; the last ones created rank first by priority.
    const needs = Array.from({ length: 40 }, (_, i) => {
      world.clock.advance(1);
      return world.store.needs.create({ title: `k${i}`, tags: ['kernel'], priority: i < 36 ? 3 : 1 });
    });
    const order = [...needs.slice(36), ...needs.slice(0, 36)];
    const t0 = world.clock.now();
    expect(graduation.pass(t0).graduated).toBe(1);
    expect(world.store.tasks.liveFor(order[0]!.id)).toBeDefined();
    for (let i = 1; i <= 6; i++) {
      endLive(order[i - 1]!.id);
      expect(graduation.pass(t0 + i)).toMatchObject({ graduated: 1, unroutable: 0 });
      expect(world.store.tasks.liveFor(order[i]!.id)).toBeDefined();
    }
  });

  it('goes over every candidate when the first few cannot be placed', () => {
    for (let i = 0; i < 20; i++) world.store.needs.create({ title: `n${i}`, tags: ['nobody'], priority: 0 });
    const first = world.store.needs.create({ title: 'first', tags: ['kernel'], priority: 2 });
    const t0 = world.clock.now();
    expect(graduation.pass(t0)).toMatchObject({ graduated: 1, unroutable: 20 });
    endLive(first.id);
    const second = world.store.needs.create({ title: 'second', tags: ['kernel'], priority: 2 });
    // Within the loop interval: the first page holds only needs nobody can take.
    expect(graduation.pass(t0 + 1)).toMatchObject({ graduated: 1, unroutable: 20, routable: 1 });
    expect(world.store.tasks.liveFor(second.id)).toBeDefined();
  });

  it('never reports nothing routable while a need beyond the first page is (no capacity at all)', () => {
    capacity = 0;
    for (let i = 0; i < 20; i++) world.store.needs.create({ title: `n${i}`, tags: ['nobody'], priority: 0 });
    world.store.needs.create({ title: 'waits for an agent', tags: ['kernel'], priority: 2 });
    const t0 = world.clock.now();
    expect(graduation.pass(t0)).toMatchObject({ graduated: 0, routable: 1, unroutable: 20 });
    // The supervisor calls the run idle when nothing is routable: the short page must not hide it.
    expect(graduation.pass(t0 + 1)).toMatchObject({ graduated: 0, routable: 1, unroutable: 20 });
  });

  it('warns once about the needs nobody can take: one line for a backlog, never again for the same need', () => {
    for (let i = 0; i < 7; i++) {
      world.store.needs.create({ title: `n${i}`, tags: i < 4 ? ['nobody'] : ['nobody', 'ops'] });
    }
    const t0 = world.clock.now();
    expect(graduation.pass(t0).unroutable).toBe(7);
    expect(warnings).toHaveLength(1);
    expect(warnings[0]!.obj).toMatchObject({ needs: 7, tags: { nobody: 7, ops: 3 } });
    expect(warnings[0]!.obj['first']).toHaveLength(5);
    expect(warnings[0]!.msg).toBe(
      "no runnable identity's scope covers 7 needs: add or resume an identity whose scope covers their tags, or accept a drifted one (mlos identity accept)",
    );
    // A full pass later: the same needs are not warned about again; a new one alone names its id.
    expect(graduation.pass(t0 + 1000).unroutable).toBe(7);
    expect(warnings).toHaveLength(1);
    const late = world.store.needs.create({ title: 'late', tags: ['ops'] });
    expect(graduation.pass(t0 + 2000).unroutable).toBe(8);
    expect(warnings[1]).toEqual({
      obj: { need: late.id, tags: ['ops'] },
      msg: `no runnable identity's scope covers need ${late.id}: add or resume an identity whose scope covers its tags, or accept a drifted one (mlos identity accept)`,
    });
  });

  it("parks the needs of an identity whose task no longer fits in the run's token budget, and says so once", () => {
    const runId = world.store.budgets.startRun(world.identity('architect').budgets.perTask + 10);
    capacity = 5;
    graduation = graduationWith({ runId });
    const first = world.store.needs.create({ title: 'fits', tags: ['kernel'] });
    const t0 = world.clock.now();
    expect(graduation.pass(t0)).toMatchObject({ graduated: 1, budgetBlocked: 0 });
    endLive(first.id);
    // A session's call reserves 11 tokens of the run: less than one task is left.
    const spender = world.store.needs.create({ title: 'spends', tags: ['kernel'] });
    const { task } = world.store.claims.claim(spender.id, { identity: 'architect', leaseMs: 60_000 });
    world.store.budgets.reserve(task.id, 11, { task: null, day: null, run: null }, runId);
    world.store.tasks.cancel(task.id, 'done for the test');
    world.store.needs.drop(spender.id);
    const second = world.store.needs.create({ title: 'waits', tags: ['kernel'] });
    expect(graduation.pass(t0 + 1000)).toMatchObject({ graduated: 0, budgetBlocked: 1 });
    expect(world.store.tasks.liveFor(second.id)).toBeUndefined();
    expect(graduation.pass(t0 + 2000)).toMatchObject({ graduated: 0, budgetBlocked: 1 });
    const budget = warnings.filter((w) => w.obj['budget'] === 'run');
    expect(budget).toHaveLength(1);
    expect(budget[0]!.msg).toContain('identity architect is budget-blocked for the rest of this run');
    expect(budget[0]!.msg).toContain('start a run with a larger --run-tokens');
  });

  it('waits before the next attempt of a need whose last one failed, twice as long per failure', () => {
    capacity = 5;
    graduation = graduationWith({ maxAttempts: 5, retryDelayMs: 1000 });
    const need = world.store.needs.create({ title: 'flaky', tags: ['kernel'] });
    const fail = () => {
      const { task } = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
      world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed: could not connect' });
      return world.clock.now();
    };
    const live = () => world.store.tasks.liveFor(need.id);
    const policy = { maxAttempts: 5, retryDelayMs: 1000, maxRetryDelayMs: 600_000 };
    expect(world.store.scheduling.nextRetryAt(world.clock.now(), policy)).toBeNull();
    let failedAt = fail();
    // When the retry is due (the central scheduler of the simulator wakes then).
    expect(world.store.scheduling.nextRetryAt(failedAt + 999, policy)).toBe(failedAt + 1000);
    expect(world.store.scheduling.nextRetryAt(failedAt + 1000, policy)).toBeNull();
    // Waiting for its retry, the need still counts as routable: a run is not idle meanwhile.
    expect(graduation.pass(failedAt + 999)).toMatchObject({ graduated: 0, routable: 1 });
    expect(live()).toBeUndefined();
    expect(graduation.pass(failedAt + 1000).graduated).toBe(1);
    world.store.tasks.cancel(live()!.id, 'for the test');
    world.clock.set(failedAt + 1500);
    failedAt = fail();
    // Two failures since the last success: twice the delay.
    expect(world.store.scheduling.nextRetryAt(failedAt, policy)).toBe(failedAt + 2000);
    expect(graduation.pass(failedAt + 1999)).toMatchObject({ graduated: 0, routable: 1 });
    expect(graduation.pass(failedAt + 2000).graduated).toBe(1);
  });

  it('never lets dead-lettered needs or needs waiting for their retry fill the pages ahead of others', () => {
    capacity = 5;
    graduation = graduationWith({ maxAttempts: 1, retryDelayMs: 60_000 });
    const fail = (id: string) => {
      const { task } = world.store.claims.claim(id, { identity: 'architect', leaseMs: 60_000 });
      world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
    };
    // 510 escalated needs at priority 0, more than a full pass reads: they sort first.
    world.store.transaction(() => {
      for (let i = 0; i < 510; i++) {
        const id = world.store.needs.create({ title: `dead ${i}`, tags: ['kernel'], priority: 0 }).id;
        fail(id);
        world.store.needs.setFlags(id, { orphaned: true });
      }
    });
    const waiting = world.store.needs.create({ title: 'waits for its retry', tags: ['kernel'], priority: 0 });
    fail(waiting.id);
    const healthy = world.store.needs.create({ title: 'healthy', tags: ['kernel'], priority: 4 });
    const pass = graduation.pass(world.clock.now());
    expect(pass.graduated).toBe(1);
    expect(world.store.tasks.liveFor(healthy.id)).toBeDefined();
    expect(world.store.tasks.liveFor(waiting.id)).toBeUndefined();
  });

  it('counts needs waiting for their retry as routable when nothing else is: the run is not idle', () => {
    graduation = graduationWith({ retryDelayMs: 60_000 });
    const need = world.store.needs.create({ title: 'flaky', tags: ['kernel'] });
    const { task } = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
    world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
    expect(graduation.pass(world.clock.now() + 1000)).toMatchObject({ graduated: 0, routable: 1 });
    expect(graduation.pass(world.clock.now() + 60_000)).toMatchObject({ graduated: 1 });
  });

  it('reports the last full counts for the needs a short pass did not reach', () => {
    const kernel = Array.from({ length: 30 }, (_, i) =>
      world.store.needs.create({ title: `k${i}`, tags: ['kernel'], priority: 1 }),
    );
    for (let i = 0; i < 5; i++) world.store.needs.create({ title: `n${i}`, tags: ['nobody'], priority: 4 });
    const t0 = world.clock.now();
    expect(graduation.pass(t0)).toMatchObject({ graduated: 1, unroutable: 5 });
    endLive(kernel.find((n) => world.store.tasks.liveFor(n.id))!.id);
    // The short page (16 kernel needs) fills the slot before it reaches the unroutable ones.
    expect(graduation.pass(t0 + 1)).toMatchObject({ graduated: 1, unroutable: 5 });
  });
});
