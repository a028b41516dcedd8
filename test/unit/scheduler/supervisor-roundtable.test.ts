import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../../src/kernel/identity/schema.js';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import { MemoryTaskQueue } from '../../../src/scheduler/memory-task-queue.js';
import { Supervisor } from '../../../src/scheduler/supervisor.js';
import { createSeededPrng, ManualClock, Store } from '../../../src/store/index.js';
import { identityFrom } from '../../helpers/guard.js';

const S = 1000;
const M = 60 * S;

/**
 * The supervisor's side of the round table, tick by tick on a manual clock: it marks unmet needs
 * (`unmet_since`), clears marks that no longer hold, and escalates a need unmet past the escalation
 * time with no claimant (orphaned, priority 0, a `need.flagged` event).
 */
describe('supervisor: unmet marks and escalation', () => {
  let clock: ManualClock;
  let store: Store;
  let supervisor: Supervisor;
  let capacity: number;
  const watcher = identityFrom(
    'objective: watch kernel\nscope: { primary: [kernel], peripheral: [schema] }\ntakeover: { grace: 10s, peripheral_delay: 20s, escalation: 5m }',
    'watcher',
  );
  const slow = identityFrom(
    'objective: watch schema\nscope: { primary: [schema] }\ntakeover: { escalation: 20m }',
    'slow',
  );
  const identities: Identity[] = [watcher, slow];

  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
    store = Store.open(':memory:', { clock, prng: createSeededPrng(11) });
    for (const identity of identities) store.identities.pin(identity.name, identity.hash, identity.source);
    capacity = 0; // nothing graduates unless a test gives capacity: the needs stay unmet
    supervisor = new Supervisor({
      store,
      queue: new MemoryTaskQueue(),
      bus: new MemoryNeedBus(),
      slots: () => identities.map((identity) => ({ identity, capacity })),
      clock,
    });
    store.scheduling.acquireLock(15 * S);
  });
  afterEach(async () => {
    await supervisor.close();
    store.close();
  });

  const flagged = (id: string) =>
    store.events
      .since(0, 10_000)
      .filter((e) => e.kind === 'need.flagged' && e.needId === id)
      .map((e) => e.payload);

  it('marks an unmet need on its first tick and escalates it once unmet past E with no claimant', async () => {
    const need = store.needs.create({ title: 'Nobody takes this', tags: ['kernel'], priority: 3 });
    const marked = clock.now();
    expect((await supervisor.tick()).escalated).toBe(0);
    expect(store.needs.require(need.id)).toMatchObject({ unmetSince: marked, orphaned: false });
    expect(flagged(need.id)).toEqual([{ unmetSince: marked, orphaned: false }]);

    clock.advance(5 * M - 1);
    expect((await supervisor.tick()).escalated).toBe(0);
    expect(store.needs.require(need.id).orphaned).toBe(false);

    clock.advance(1);
    expect((await supervisor.tick()).escalated).toBe(1);
    expect(store.needs.require(need.id)).toMatchObject({ orphaned: true, priority: 0, unmetSince: marked });
    expect(flagged(need.id)).toEqual([
      { unmetSince: marked, orphaned: false },
      { unmetSince: marked, orphaned: true },
    ]);
    clock.advance(M);
    expect((await supervisor.tick()).escalated).toBe(0);
    expect(flagged(need.id)).toHaveLength(2);
    expect(store.events.verify().ok).toBe(true);
  });

  it('takes the shortest escalation of the identities watching the tags, the default when none does', async () => {
    const schema = store.needs.create({ title: 'Schema only', tags: ['schema'] });
    const nobody = store.needs.create({ title: 'Nobody watches', tags: ['marketing'] });
    await supervisor.tick();
    clock.advance(5 * M);
    await supervisor.tick();
    // watcher's peripheral scope covers schema: its 5m applies, not slow's 20m.
    expect(store.needs.require(schema.id).orphaned).toBe(true);
    expect(store.needs.require(nobody.id).orphaned).toBe(false);
    clock.advance(5 * M);
    await supervisor.tick();
    expect(store.needs.require(nobody.id).orphaned).toBe(true);
  });

  it('a claimed need loses its mark and is never escalated while its lease is live', async () => {
    const need = store.needs.create({ title: 'Taken', tags: ['kernel'] });
    await supervisor.tick();
    expect(store.needs.require(need.id).unmetSince).not.toBeNull();
    const claim = store.claims.claim(need.id, { identity: 'watcher', leaseMs: 10 * M });
    expect(store.needs.require(need.id).unmetSince).toBeNull();
    clock.advance(6 * M);
    store.claims.heartbeat(claim.fence, { turns: 1, tokens: 1, toolCalls: 1 }, 10 * M);
    clock.advance(4 * M);
    expect((await supervisor.tick()).escalated).toBe(0);
    expect(store.needs.require(need.id)).toMatchObject({ unmetSince: null, orphaned: false });

    // Its holder stops making progress: the lease expires, the task is lost, the need is unmet
    // again from that tick on, and escalation counts from there.
    clock.advance(10 * M);
    const lostAt = clock.now();
    expect((await supervisor.tick()).expired).toBe(1);
    expect(store.needs.require(need.id).unmetSince).toBe(lostAt);
    clock.advance(5 * M);
    expect((await supervisor.tick()).escalated).toBe(1);
  });

  it('clears the mark of a need that is no longer unmet (a new dependency blocks it)', async () => {
    const need = store.needs.create({ title: 'Will wait', tags: ['kernel'] });
    await supervisor.tick();
    const blocker = store.needs.create({ title: 'First this', tags: ['marketing'] });
    store.edges.link(need.id, 'depends_on', blocker.id);
    clock.advance(S);
    await supervisor.tick();
    expect(store.needs.require(need.id).unmetSince).toBeNull();
    expect(flagged(need.id).at(-1)).toEqual({ unmetSince: null, orphaned: false });
    clock.advance(6 * M);
    await supervisor.tick();
    expect(store.needs.require(need.id).orphaned).toBe(false);
  });

  it('a standing need is not unmet before its next cadence', async () => {
    const need = store.needs.create({
      title: 'Hourly sweep',
      tags: ['kernel'],
      mode: 'standing',
      cadenceMs: 60 * M,
    });
    const claim = store.claims.claim(need.id, { identity: 'watcher', leaseMs: M });
    store.claims.finish(claim.fence, { outcome: 'progressed', summary: 'swept' });
    const finished = clock.now();
    clock.advance(30 * M);
    await supervisor.tick();
    expect(store.needs.require(need.id).unmetSince).toBeNull();
    clock.set(finished + 60 * M);
    await supervisor.tick();
    expect(store.needs.require(need.id).unmetSince).toBe(finished + 60 * M);
  });

  it('graduation is not delayed: a need graduates on its first tick, and its start clears the mark', async () => {
    capacity = 1;
    const need = store.needs.create({ title: 'Routine', tags: ['kernel'] });
    const stats = await supervisor.tick();
    expect(stats.graduated).toBe(1);
    const [task] = store.tasks.forNeed(need.id);
    expect(task).toMatchObject({ status: 'queued', identity: 'watcher' });
    expect(store.needs.require(need.id).unmetSince).toBe(clock.now());
    const started = store.claims.claim(need.id, { identity: 'watcher', leaseMs: M });
    expect(started.task.id).toBe(task!.id);
    expect(store.needs.require(need.id).unmetSince).toBeNull();
  });

  it('a tick without upkeep marks the unmet needs not marked yet; clearing and escalating wait for the upkeep', async () => {
    capacity = 1;
    const first = store.needs.create({ title: 'Placed', tags: ['kernel'], priority: 1 });
    const second = store.needs.create({ title: 'Waits for a seat', tags: ['kernel'], priority: 2 });
    const marked = clock.now();
    expect((await supervisor.tick({ upkeep: false })).graduated).toBe(1);
    expect(store.needs.require(first.id).unmetSince).toBe(marked);
    expect(store.needs.require(second.id).unmetSince).toBe(marked);
    const kinds = store.events
      .since(0, 10_000)
      .filter((e) => e.needId === first.id)
      .map((e) => e.kind);
    expect(kinds.indexOf('need.flagged')).toBeLessThan(kinds.indexOf('task.created'));

    // No longer unmet (a new dependency blocks it): the mark stays until a tick with upkeep.
    const blocker = store.needs.create({ title: 'First this', tags: ['marketing'] });
    store.edges.link(second.id, 'depends_on', blocker.id);
    clock.advance(S);
    await supervisor.tick({ upkeep: false });
    expect(store.needs.require(second.id).unmetSince).toBe(marked);
    await supervisor.tick();
    expect(store.needs.require(second.id).unmetSince).toBeNull();

    // Unmet past its escalation time (its task never started): only a tick with upkeep escalates it.
    clock.advance(6 * M);
    expect((await supervisor.tick({ upkeep: false })).escalated).toBe(0);
    expect(store.needs.require(first.id).orphaned).toBe(false);
    expect((await supervisor.tick()).escalated).toBe(1);
    expect(store.needs.require(first.id).orphaned).toBe(true);
  });
});
