import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Identity } from '../../../src/kernel/identity/schema.js';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import type { BusEvent } from '../../../src/roundtable/need-bus.js';
import { MemoryTaskQueue } from '../../../src/scheduler/memory-task-queue.js';
import { Supervisor } from '../../../src/scheduler/supervisor.js';
import { createSeededPrng, ManualClock, Store } from '../../../src/store/index.js';
import { identityFrom } from '../../helpers/guard.js';
import { ManualTimers, settle } from '../../helpers/timers.js';

/**
 * `publishDelayMs`: after a tick that enqueued, the bus publication comes a moment later (so
 * workers in the process pick the job up first); it still publishes every event once and in
 * order, reports what it published in the next tick's stats, and a close publishes what is due.
 */
describe('supervisor: publication deferred after an enqueue', () => {
  let clock: ManualClock;
  let timers: ManualTimers;
  let store: Store;
  let bus: MemoryNeedBus;
  let supervisor: Supervisor;
  const seen: BusEvent[] = [];
  const worker = identityFrom('objective: work\nscope: { primary: [kernel] }', 'worker');
  const identities: Identity[] = [worker];

  beforeEach(async () => {
    clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
    timers = new ManualTimers(clock);
    store = Store.open(':memory:', { clock, prng: createSeededPrng(5) });
    store.identities.pin(worker.name, worker.hash, worker.source);
    bus = new MemoryNeedBus();
    seen.length = 0;
    await bus.subscribe({ onEvents: (events) => seen.push(...events), onResync: () => undefined });
    supervisor = new Supervisor({
      store,
      queue: new MemoryTaskQueue(),
      bus,
      slots: () => identities.map((identity) => ({ identity, capacity: 4 })),
      clock,
      timers,
      publishDelayMs: 5,
    });
    store.scheduling.acquireLock(15_000);
  });
  afterEach(async () => {
    await supervisor.close();
    store.close();
  });

  it('publishes the tick that enqueued 5 ms later, and the next tick reports it', async () => {
    store.needs.create({ title: 'work', tags: ['kernel'] });
    const first = await supervisor.tick();
    expect(first.enqueued).toBe(1);
    expect(first.published).toBe(0);
    expect(seen).toEqual([]);

    await timers.advance(4);
    expect(seen).toEqual([]);
    await timers.advance(1);
    const head = store.events.headSeq();
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: head }, (_, i) => i + 1));

    // Nothing left to enqueue: this tick publishes at once, and counts the deferred publication.
    const second = await supervisor.tick();
    expect(second.enqueued).toBe(0);
    expect(second.published).toBe(head);
  });

  it('publishes what a deferred publication had not sent yet when it closes', async () => {
    store.needs.create({ title: 'work', tags: ['kernel'] });
    // A started loop: its first tick graduates and enqueues, so it only schedules the publication.
    await supervisor.start();
    await settle();
    expect(supervisor.lastStats?.enqueued).toBe(1);
    expect(seen).toEqual([]);
    await supervisor.close();
    await settle();
    expect(seen.map((e) => e.seq)).toEqual(Array.from({ length: store.events.headSeq() }, (_, i) => i + 1));
    // The scheduled one was dropped: nothing is sent twice.
    await timers.advance(10);
    expect(seen).toHaveLength(store.events.headSeq());
  });
});
