import { afterEach, describe, expect, it, vi } from 'vitest';
import type {
  BusEvent,
  BusSubscriber,
  GapReason,
  NeedBus,
  NeedSnapshot,
  NeedState,
} from '../../src/roundtable/need-bus.js';

/**
 * The NeedBus contract, run on every adapter. Delivery may be synchronous (memory) or not
 * (Redis), so every expectation on what a subscriber saw waits for it.
 */

export interface NeedBusHarness {
  readonly bus: NeedBus;
  /** What the adapter reported through its `onError` option. */
  readonly errors: unknown[];
  /** Closes the bus and removes whatever it stored. */
  cleanup(): Promise<void>;
}

export type NeedBusFactory = () => Promise<NeedBusHarness>;

export function busEvent(seq: number): BusEvent {
  return {
    seq,
    at: 1_700_000_000_000 + seq,
    kind: 'need.updated',
    entity: `need_${seq}`,
    needId: `need_${seq}`,
  };
}

export function busEvents(from: number, to: number): BusEvent[] {
  const out: BusEvent[] = [];
  for (let seq = from; seq <= to; seq++) out.push(busEvent(seq));
  return out;
}

export function needState(id: string, overrides: Partial<NeedState> = {}): NeedState {
  return {
    id,
    title: `Need ${id}`,
    status: 'open',
    priority: 2,
    scope: 'Sprint_X',
    tags: ['kernel'],
    actionable: true,
    leaseTask: null,
    leaseExpiresAt: null,
    fencingToken: 0,
    unmetSince: null,
    orphaned: false,
    ...overrides,
  };
}

export function snapshotAt(
  seq: number,
  needs: readonly NeedState[] = [needState(`need_s${seq}`)],
): NeedSnapshot {
  return { seq, needs };
}

/** What one subscriber saw, in order: event seqs as numbers, resyncs as `reason@seq`. */
export class Recorder implements BusSubscriber {
  readonly timeline: (number | string)[] = [];
  readonly snapshots: NeedSnapshot[] = [];

  onEvents(events: readonly BusEvent[]): void {
    for (const event of events) this.timeline.push(event.seq);
  }

  onResync(snapshot: NeedSnapshot, reason: GapReason): void {
    this.snapshots.push(snapshot);
    this.timeline.push(`${reason}@${snapshot.seq}`);
  }

  get seqs(): number[] {
    return this.timeline.filter((t): t is number => typeof t === 'number');
  }
}

/** Waits until the recorder's timeline is exactly `expected` (fails on extra entries too). */
export async function expectTimeline(
  recorder: Recorder,
  expected: readonly (number | string)[],
): Promise<void> {
  await vi.waitFor(() => expect(recorder.timeline).toEqual(expected), { timeout: 5_000, interval: 10 });
}

function range(from: number, to: number): number[] {
  return busEvents(from, to).map((e) => e.seq);
}

export function needBusContract(name: string, factory: NeedBusFactory): void {
  describe(`NeedBus contract: ${name}`, () => {
    let harness: NeedBusHarness | undefined;
    const open = async (): Promise<NeedBus> => {
      harness = await factory();
      return harness.bus;
    };
    afterEach(async () => {
      await harness?.cleanup();
      harness = undefined;
    });

    it('starts a subscriber from the snapshot, then delivers every later event in order', async () => {
      const bus = await open();
      await bus.publish(busEvents(1, 3));
      const snapshot = snapshotAt(3, [
        needState('need_a'),
        needState('need_b', { status: 'active', leaseTask: 'task_1' }),
      ]);
      await bus.publishSnapshot(snapshot);
      const recorder = new Recorder();
      const sub = await bus.subscribe(recorder);
      expect(recorder.timeline).toEqual(['start@3']);
      expect(recorder.snapshots[0]).toEqual(snapshot);
      await bus.publish(busEvents(4, 6));
      await bus.publish([busEvent(7)]);
      await expectTimeline(recorder, ['start@3', 4, 5, 6, 7]);
      expect(sub.seq).toBe(7);
      await sub.close();
    });

    it('starts from an empty snapshot at seq 0 when none was published', async () => {
      const bus = await open();
      expect(await bus.snapshot()).toBeNull();
      const recorder = new Recorder();
      const sub = await bus.subscribe(recorder);
      expect(recorder.snapshots[0]).toEqual({ seq: 0, needs: [] });
      expect(sub.seq).toBe(0);
      await bus.publish(busEvents(1, 2));
      await expectTimeline(recorder, ['start@0', 1, 2]);
    });

    it('delivers events published before the subscription but after the snapshot', async () => {
      const bus = await open();
      await bus.publish(busEvents(1, 5));
      await bus.publishSnapshot(snapshotAt(2));
      const recorder = new Recorder();
      await bus.subscribe(recorder);
      await expectTimeline(recorder, ['start@2', 3, 4, 5]);
      await bus.publish([busEvent(6)]);
      await expectTimeline(recorder, ['start@2', 3, 4, 5, 6]);
    });

    it('gives two subscribers everything', async () => {
      const bus = await open();
      const first = new Recorder();
      await bus.subscribe(first);
      await bus.publish(busEvents(1, 3));
      const second = new Recorder();
      await bus.subscribe(second);
      await bus.publish(busEvents(4, 6));
      await expectTimeline(first, ['start@0', ...range(1, 6)]);
      await expectTimeline(second, ['start@0', ...range(1, 6)]);
    });

    it('resyncs from the snapshot on a seq jump, then continues', async () => {
      const bus = await open();
      const recorder = new Recorder();
      const sub = await bus.subscribe(recorder);
      await bus.publish(busEvents(1, 5));
      await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5]);
      // Events 6…9 are lost; the snapshot at 9 covers them.
      const snapshot = snapshotAt(9, [needState('need_z', { orphaned: true, unmetSince: 42 })]);
      await bus.publishSnapshot(snapshot);
      await bus.publish([busEvent(10)]);
      await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5, 'seq_jump@9', 10]);
      expect(recorder.snapshots[1]).toEqual(snapshot);
      await bus.publish(busEvents(11, 12));
      await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5, 'seq_jump@9', 10, 11, 12]);
      expect(sub.seq).toBe(12);
    });

    it('skips events the resync snapshot already reflects', async () => {
      const bus = await open();
      const recorder = new Recorder();
      await bus.subscribe(recorder);
      await bus.publish(busEvents(1, 3));
      await bus.publishSnapshot(snapshotAt(6));
      // 4 is lost; 5 and 6 arrive but are older than the snapshot the subscriber resyncs to.
      await bus.publish(busEvents(5, 8));
      await expectTimeline(recorder, ['start@0', 1, 2, 3, 'seq_jump@6', 7, 8]);
    });

    it('refuses publishes that do not continue the previous one, and never delivers twice', async () => {
      const bus = await open();
      const recorder = new Recorder();
      await bus.subscribe(recorder);
      await bus.publish(busEvents(1, 3));
      await expect(bus.publish([busEvent(3)])).rejects.toMatchObject({ code: 'bus_out_of_order' });
      await expect(bus.publish(busEvents(2, 4))).rejects.toMatchObject({ code: 'bus_out_of_order' });
      await expect(bus.publish([busEvent(5)])).rejects.toThrow(/publish seqs 4…4 first/);
      await expect(bus.publish([busEvent(4), busEvent(4)])).rejects.toMatchObject({
        code: 'bus_out_of_order',
      });
      await expect(bus.publish([busEvent(0)])).rejects.toMatchObject({ code: 'bus_out_of_order' });
      await bus.publish(busEvents(4, 5));
      await expectTimeline(recorder, ['start@0', 1, 2, 3, 4, 5]);
    });

    it('refuses a snapshot that goes back, and keeps the newer one', async () => {
      const bus = await open();
      await bus.publishSnapshot(snapshotAt(5));
      await expect(bus.publishSnapshot(snapshotAt(3))).rejects.toMatchObject({ code: 'bus_snapshot_behind' });
      expect((await bus.snapshot())?.seq).toBe(5);
      const replacement = snapshotAt(5, [needState('need_r', { priority: 0 })]);
      await bus.publishSnapshot(replacement);
      expect(await bus.snapshot()).toEqual(replacement);
      const recorder = new Recorder();
      await bus.subscribe(recorder);
      expect(recorder.timeline).toEqual(['start@5']);
      expect(recorder.snapshots[0]).toEqual(replacement);
    });

    it('keeps delivering to others when one subscriber throws, and reports it', async () => {
      const bus = await open();
      const thrower = new Recorder();
      const boom = new Error('subscriber bug');
      await bus.subscribe({
        onEvents: (events) => {
          thrower.onEvents(events);
          throw boom;
        },
        onResync: (snapshot, reason) => thrower.onResync(snapshot, reason),
      });
      const calm = new Recorder();
      await bus.subscribe(calm);
      await bus.publish(busEvents(1, 2));
      await bus.publish([busEvent(3)]);
      await expectTimeline(calm, ['start@0', 1, 2, 3]);
      await vi.waitFor(() => expect(thrower.seqs).toEqual([1, 2, 3]), { timeout: 5_000, interval: 10 });
      expect(harness!.errors).toContain(boom);
    });

    it('stops delivery on close; closing twice is fine, and a closed bus refuses work', async () => {
      const bus = await open();
      const closed = new Recorder();
      const live = new Recorder();
      const sub = await bus.subscribe(closed);
      await bus.subscribe(live);
      await bus.publish(busEvents(1, 2));
      await expectTimeline(closed, ['start@0', 1, 2]);
      await sub.close();
      await sub.close();
      await bus.publish(busEvents(3, 4));
      // The live subscriber seeing 3 and 4 means the closed one would have by now.
      await expectTimeline(live, ['start@0', 1, 2, 3, 4]);
      expect(closed.timeline).toEqual(['start@0', 1, 2]);
      await bus.close();
      await bus.close();
      await expect(bus.publish([busEvent(5)])).rejects.toMatchObject({ code: 'bus_closed' });
      await expect(bus.publishSnapshot(snapshotAt(5))).rejects.toMatchObject({ code: 'bus_closed' });
      await expect(bus.subscribe(new Recorder())).rejects.toMatchObject({ code: 'bus_closed' });
      expect(live.timeline).toEqual(['start@0', 1, 2, 3, 4]);
    });
  });
}
