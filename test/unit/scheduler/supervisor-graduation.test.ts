import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import type { BusEvent, NeedSnapshot } from '../../../src/roundtable/need-bus.js';
import { silentLogger } from '../../../src/scheduler/logger.js';
import { MemoryTaskQueue } from '../../../src/scheduler/memory-task-queue.js';
import { routeNeed } from '../../../src/scheduler/routing.js';
import { Supervisor } from '../../../src/scheduler/supervisor.js';
import { createGuardWorld, spendDayBudget } from '../../helpers/guard.js';

/** The supervisor's tick on a manual clock with the in-process queue and bus. */
describe('supervisor graduation', () => {
  let world: ReturnType<typeof createGuardWorld>;
  let queue: MemoryTaskQueue;
  let bus: MemoryNeedBus;
  let supervisor: Supervisor;
  let capacity: number;
  beforeEach(() => {
    world = createGuardWorld();
    queue = new MemoryTaskQueue();
    bus = new MemoryNeedBus();
    capacity = 5;
    supervisor = new Supervisor({
      store: world.store.as('supervisor'),
      queue,
      bus,
      clock: world.clock,
      maxAttempts: 2,
      slots: () =>
        ['architect', 'context-manager', 'janitor'].map((n) => ({ identity: world.identity(n), capacity })),
    });
  });
  afterEach(async () => {
    await supervisor.close();
    await queue.close(100);
    await bus.close();
    await world.close();
  });

  const held = async (identity: string) => [...(await queue.held(identity))];
  /** A standing cleanup need (the janitor's) recurring every `cadenceMs`. */
  const sweep = (cadenceMs: number, extra: { title?: string; priority?: number } = {}) =>
    world.store.needs.create({ title: 'Sweep', tags: ['cleanup'], mode: 'standing', cadenceMs, ...extra });

  it('graduates actionable needs to the best-matching identity, writes the outbox and drains it at once', async () => {
    await supervisor.start();
    const kernel = world.store.needs.create({ title: 'K', tags: ['kernel', 'context'] });
    const ctx = world.store.needs.create({ title: 'C', tags: ['context', 'retrieval'] });
    const blocked = world.store.needs.create({ title: 'B', tags: ['kernel'], dependsOn: [kernel.id] });
    const stats = await supervisor.tick();
    expect(stats.graduated).toBe(2);
    expect(stats.enqueued).toBe(2);
    expect(world.store.tasks.liveFor(kernel.id)?.identity).toBe('architect');
    expect(world.store.tasks.liveFor(ctx.id)?.identity).toBe('context-manager');
    expect(world.store.tasks.liveFor(blocked.id)).toBeUndefined();
    expect(await held('architect')).toEqual([world.store.tasks.liveFor(kernel.id)!.id]);
    expect(world.store.scheduling.outbox()).toEqual([]);
    // A second tick graduates nothing twice.
    expect((await supervisor.tick()).graduated).toBe(0);
  });

  it('drains the outbox in one batch; a task the queue refuses stays in the outbox for the next tick', async () => {
    await supervisor.start();
    const needs = [0, 1, 2].map((i) => world.store.needs.create({ title: `k${i}`, tags: ['kernel'] }));
    const enqueue = queue.enqueue.bind(queue);
    let refuse: string | undefined = needs[1]!.id;
    queue.enqueue = async (job) => {
      if (job.needId === refuse) throw new Error('redis is away');
      return enqueue(job);
    };
    const stats = await supervisor.tick();
    expect(stats).toMatchObject({ graduated: 3, enqueued: 2 });
    expect(world.store.scheduling.outbox().map((r) => r.needId)).toEqual([needs[1]!.id]);
    refuse = undefined;
    expect((await supervisor.tick()).enqueued).toBe(1);
    expect(world.store.scheduling.outbox()).toEqual([]);
    expect((await held('architect')).sort()).toEqual(
      needs.map((n) => world.store.tasks.liveFor(n.id)!.id).sort(),
    );
  });

  it('respects capacity and routes ties to the lower load, then the name', async () => {
    capacity = 1;
    await supervisor.start();
    for (let i = 0; i < 3; i++) world.store.needs.create({ title: `k${i}`, tags: ['kernel'] });
    expect((await supervisor.tick()).graduated).toBe(1);
    const slots = ['janitor', 'architect'].map((n) => ({
      identity: world.identity(n),
      capacity: 3,
      load: 1,
    }));
    expect(routeNeed(['schema'], slots)?.identity.name).toBe('janitor');
    expect(routeNeed(['methodology'], slots)?.identity.name).toBe('architect');
    expect(routeNeed(['nobody'], slots)).toBeUndefined();
  });

  it('expires leases without progress, retries, and escalates after max attempts (the dead-letter path)', async () => {
    await supervisor.start();
    const need = world.store.needs.create({ title: 'Flaky', tags: ['kernel'], priority: 3 });
    for (let attempt = 1; attempt <= 2; attempt++) {
      await supervisor.tick();
      const task = world.store.tasks.liveFor(need.id)!;
      expect(task.attempt).toBe(attempt);
      world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 1000 });
      world.clock.advance(5000);
      const stats = await supervisor.tick();
      expect(stats.expired).toBe(1);
      expect(world.store.tasks.require(task.id).error).toMatch(/^(dead|hung): /);
    }
    const after = world.store.needs.require(need.id);
    expect(after.orphaned).toBe(true);
    expect(after.priority).toBe(0);
    expect(world.store.tasks.liveFor(need.id)).toBeUndefined();
    expect((await supervisor.tick()).graduated).toBe(0);

    // The operator retries it: two fresh attempts, lost as well, and the same supervisor escalates it again.
    world.store.needs.retry(need.id, { reason: 'lease settings fixed' });
    expect(world.store.needs.require(need.id)).toMatchObject({ orphaned: false, unmetSince: null });
    for (let attempt = 3; attempt <= 4; attempt++) {
      // The tick that expires one attempt graduates the next.
      if (attempt === 3) expect((await supervisor.tick()).graduated).toBe(1);
      const task = world.store.tasks.liveFor(need.id)!;
      expect(task.attempt).toBe(attempt);
      world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 1000 });
      world.clock.advance(5000);
      expect((await supervisor.tick()).expired).toBe(1);
    }
    expect(world.store.needs.require(need.id).orphaned).toBe(true);
    expect((await supervisor.tick()).graduated).toBe(0);
    const retried = world.store.events.since(0, 10_000).filter((e) => e.kind === 'need.retried');
    expect(retried.map((e) => e.payload)).toEqual([
      { setAside: 2, failuresFrom: 2, reason: 'lease settings fixed' },
    ]);
  });

  it('graduates a standing need again on its cadence', async () => {
    await supervisor.start();
    const need = sweep(60_000);
    await supervisor.tick();
    const first = world.store.tasks.liveFor(need.id)!;
    const claim = world.store.claims.claim(need.id, { identity: 'janitor', leaseMs: 60_000 });
    world.store.claims.finish(claim.fence, { outcome: 'progressed', summary: 'swept' });
    expect(world.store.tasks.require(first.id).outcome).toBe('progressed');
    world.clock.advance(30_000);
    expect((await supervisor.tick()).graduated).toBe(0);
    world.clock.advance(31_000);
    expect((await supervisor.tick()).graduated).toBe(1);
    expect(world.store.tasks.liveFor(need.id)?.attempt).toBe(2);
  });

  it('a failed round of a standing need is retried under the retry policy, not after a whole cadence', async () => {
    await supervisor.start();
    const need = sweep(3_600_000);
    const round = async (outcome: 'progressed' | 'failed') => {
      expect((await supervisor.tick()).graduated).toBe(1);
      const claim = world.store.claims.claim(need.id, { identity: 'janitor', leaseMs: 60_000 });
      world.store.claims.finish(
        claim.fence,
        outcome === 'failed'
          ? { outcome, summary: 'the sweep broke', reason: 'disk full' }
          : { outcome, summary: 'swept' },
      );
    };
    await round('progressed');
    world.clock.advance(3_600_001);
    await round('failed');
    // Retried at once (this supervisor has no retry delay): the cadence counts from the last
    // successful round, which the failure did not replace.
    await round('progressed');
    expect(world.store.tasks.forNeed(need.id).map((t) => t.attempt)).toEqual([1, 2, 3]);
    world.clock.advance(3_599_000);
    expect((await supervisor.tick()).graduated).toBe(0);
    expect(world.store.scheduling.needState(need.id, world.clock.now())?.dueAt).toBe(
      world.store.tasks.forNeed(need.id).at(-1)!.finishedAt! + 3_600_000,
    );
  });

  it('standing needs not due leave the candidate page to needs that can graduate', () => {
    for (let i = 0; i < 3; i++) {
      const standing = sweep(3_600_000, { title: `Sweep ${i}`, priority: 0 });
      const claim = world.store.claims.claim(standing.id, { identity: 'janitor', leaseMs: 60_000 });
      world.store.claims.finish(claim.fence, { outcome: 'progressed', summary: 'swept' });
    }
    const once = world.store.needs.create({ title: 'Fix it', tags: ['cleanup'], priority: 4 });
    expect(world.store.scheduling.graduationCandidates(world.clock.now(), 2).map((c) => c.id)).toEqual([
      once.id,
    ]);
  });

  it('reconciles: a task queued in SQLite but missing from the queue is enqueued again', async () => {
    const need = world.store.needs.create({ title: 'Lost job', tags: ['kernel'] });
    const task = world.store.tasks.create(need.id, 'architect');
    expect(await held('architect')).toEqual([]);
    await supervisor.start();
    expect(await held('architect')).toEqual([task.id]);
  });

  it('publishes every event on the bus in seq order, with a snapshot to resync from', async () => {
    const seen: BusEvent[] = [];
    let snapshot: NeedSnapshot | undefined;
    await bus.subscribe({
      onEvents: (events) => seen.push(...events),
      onResync: (s) => {
        snapshot = s;
      },
    });
    await supervisor.start();
    world.store.needs.create({ title: 'Visible', tags: ['kernel'] });
    await supervisor.tick();
    const head = world.store.events.headSeq();
    const seqs = seen.map((e) => e.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(Math.max(snapshot?.seq ?? 0, ...seqs)).toBe(head);
    expect((await bus.snapshot())?.needs.some((n) => n.title === 'Visible')).toBe(true);
  });

  it('refuses to start while another live supervisor holds the database, naming it', async () => {
    world.store.scheduling.acquireLock(15_000, 1, 'elsewhere');
    await expect(supervisor.start()).rejects.toThrow(
      /another supervisor holds this database: pid 1 on elsewhere/,
    );
    // Once its heartbeat is stale, the holder is presumed dead and the lock is taken over.
    world.clock.advance(16_000);
    await supervisor.start();
    expect(world.store.scheduling.lockHolder()?.pid).toBe(process.pid);
  });

  it('stops, without an unhandled rejection, when another process takes its lock', async () => {
    const fatal: Error[] = [];
    const own = new Supervisor({
      store: world.store.as('supervisor'),
      queue,
      bus,
      clock: world.clock,
      slots: () => [],
      onFatal: (error) => fatal.push(error),
    });
    await own.start();
    world.store.scheduling.releaseLock();
    world.store.scheduling.acquireLock(15_000, 1, 'elsewhere');
    own.kick();
    const deadline = Date.now() + 2000;
    while (fatal.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    expect(fatal[0]?.message).toBe('another process took the supervisor lock of this database');
    expect(own.state).toBe('closing');
    await own.close();
  });

  it('closing a supervisor that never started touches nothing (a refused second run)', async () => {
    world.store.needs.create({ title: 'Pending', tags: ['kernel'] });
    const cursor = world.store.scheduling.cursor('bus');
    await supervisor.close();
    expect(world.store.scheduling.cursor('bus')).toBe(cursor);
    expect(supervisor.state).toBe('closed');
  });

  it('parks the needs of an identity whose daily budget cannot cover another task until the next UTC day', async () => {
    const warnings: string[] = [];
    supervisor = new Supervisor({
      store: world.store.as('supervisor'),
      queue,
      bus,
      clock: world.clock,
      maxAttempts: 2,
      log: { ...silentLogger, warn: (_fields: unknown, message: string) => void warnings.push(message) },
      slots: () => [{ identity: world.identity('architect'), capacity: 5 }],
    });
    // Today's spend leaves less than one task's budget.
    spendDayBudget(world, 'architect');
    const waiting = world.store.needs.create({ title: 'Waits for tomorrow', tags: ['kernel'] });
    await supervisor.start();
    const parked = await supervisor.tick();
    expect(parked).toMatchObject({ graduated: 0, budgetBlocked: 1, unroutable: 0 });
    expect(world.store.tasks.liveFor(waiting.id)).toBeUndefined();
    expect(warnings.filter((w) => /architect is budget-blocked until the next UTC day/.test(w))).toHaveLength(
      1,
    );
    await supervisor.tick();
    expect(warnings.filter((w) => /budget-blocked/.test(w))).toHaveLength(1);
    // The next UTC day: the budget renews and the need graduates.
    world.clock.advance(24 * 3_600_000);
    expect((await supervisor.tick()).graduated).toBeGreaterThanOrEqual(1);
    expect(world.store.tasks.liveFor(waiting.id)?.identity).toBe('architect');
  });
});
