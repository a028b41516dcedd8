import type {
  BusEvent,
  BusSubscriber,
  BusSubscription,
  NeedBus,
  NeedSnapshot,
} from '../../roundtable/need-bus.js';
import type { Timers } from '../../store/index.js';
import type { FaultDice } from './faults.js';

export interface BusFaultRates {
  readonly loss: number;
  readonly dup: number;
  readonly reorder: number;
}

export interface FaultyNeedBusOptions {
  readonly dice: FaultDice;
  readonly rates: BusFaultRates;
  readonly timers: Timers;
  /** How long a reordered event is held back, at most, in ms. Default 300. */
  readonly maxDelayMs?: number;
  /** How long a receiver waits for a missing seq before it resyncs from the snapshot, in ms. Default 100. */
  readonly gapWaitMs?: number;
}

/** What the wire did, and what the receivers made of it. */
export interface BusFaultStats {
  lost: number;
  duplicated: number;
  reordered: number;
  /** Duplicates (seq already delivered or already held) the receivers dropped. */
  duplicatesDropped: number;
  /** Resyncs from the snapshot after a hole. */
  resyncs: number;
}

/**
 * A NeedBus whose deliveries go over an unreliable wire: each event, for each subscriber, may be
 * lost, duplicated or held back behind later events. Publishing is the inner bus's (so its order
 * checks and snapshot apply); what changes is the path to each subscriber, which ends in a
 * `BusReceiver` that restores the port's contract by the same rules as the Redis subscription:
 * drop a seq already seen, deliver in seq order, and on a hole that a short wait does not fill,
 * resync from the snapshot when one is past its position (else stay put until one is published).
 */
export class FaultyNeedBus implements NeedBus {
  readonly kind = 'memory' as const;
  readonly stats: BusFaultStats = { lost: 0, duplicated: 0, reordered: 0, duplicatesDropped: 0, resyncs: 0 };
  readonly #inner: NeedBus;
  readonly #o: FaultyNeedBusOptions;
  readonly #receivers = new Set<BusReceiver>();

  constructor(inner: NeedBus, options: FaultyNeedBusOptions) {
    this.#inner = inner;
    this.#o = options;
  }

  publish(events: readonly BusEvent[]): Promise<void> {
    return this.#inner.publish(events);
  }

  async publishSnapshot(snapshot: NeedSnapshot): Promise<void> {
    await this.#inner.publishSnapshot(snapshot);
    // A receiver stalled behind a hole may resume from it.
    for (const receiver of this.#receivers) receiver.snapshotPublished(snapshot);
  }

  snapshot(): Promise<NeedSnapshot | null> {
    return this.#inner.snapshot();
  }

  async subscribe(subscriber: BusSubscriber): Promise<BusSubscription> {
    const receiver = new BusReceiver(subscriber, this.stats, this.#o.timers, this.#o.gapWaitMs ?? 100, () =>
      this.#inner.snapshot(),
    );
    this.#receivers.add(receiver);
    const { dice, rates, timers } = this.#o;
    const maxDelay = this.#o.maxDelayMs ?? 300;
    const inner = await this.#inner.subscribe({
      // Snapshots are read, not streamed (a key in Redis): they are not subject to the wire's faults.
      onResync: (snapshot) => receiver.resync(snapshot, 'start'),
      onEvents: (events) => {
        for (const event of events) {
          if (receiver.closed) return;
          if (dice.chance(rates.loss)) {
            this.stats.lost++;
            continue;
          }
          if (dice.chance(rates.reorder)) {
            this.stats.reordered++;
            timers.setTimeout(() => receiver.receive(event), dice.between(1, maxDelay));
            continue;
          }
          receiver.receive(event);
          if (dice.chance(rates.dup)) {
            this.stats.duplicated++;
            receiver.receive(event);
          }
        }
      },
    });
    const receivers = this.#receivers;
    return {
      get seq() {
        return receiver.last;
      },
      async close() {
        receiver.close();
        receivers.delete(receiver);
        await inner.close();
      },
    };
  }

  /** The subscribers' positions and the holes they wait on (the convergence check reads it). */
  positions(): { last: number; waiting: number }[] {
    return [...this.#receivers].map((r) => ({ last: r.last, waiting: r.waiting }));
  }

  async close(): Promise<void> {
    for (const receiver of this.#receivers) receiver.close();
    this.#receivers.clear();
    await this.#inner.close();
  }
}

/** The subscriber's end of the wire: in order, no duplicates, holes filled by waiting or resync. */
class BusReceiver {
  last = 0;
  closed = false;
  readonly #subscriber: BusSubscriber;
  readonly #stats: BusFaultStats;
  readonly #timers: Timers;
  readonly #gapWaitMs: number;
  readonly #readSnapshot: () => Promise<NeedSnapshot | null>;
  /** Events that arrived ahead of a hole, by seq. */
  readonly #held = new Map<number, BusEvent>();
  #gapTimer: { cancel(): void } | undefined;

  constructor(
    subscriber: BusSubscriber,
    stats: BusFaultStats,
    timers: Timers,
    gapWaitMs: number,
    readSnapshot: () => Promise<NeedSnapshot | null>,
  ) {
    this.#subscriber = subscriber;
    this.#stats = stats;
    this.#timers = timers;
    this.#gapWaitMs = gapWaitMs;
    this.#readSnapshot = readSnapshot;
  }

  /** Events held ahead of a hole. */
  get waiting(): number {
    return this.#held.size;
  }

  resync(snapshot: NeedSnapshot, reason: 'start' | 'seq_jump'): void {
    if (this.closed) return;
    this.last = snapshot.seq;
    for (const seq of [...this.#held.keys()]) if (seq <= snapshot.seq) this.#held.delete(seq);
    this.#subscriber.onResync(snapshot, reason);
    this.#drain();
  }

  receive(event: BusEvent): void {
    if (this.closed) return;
    if (event.seq <= this.last || this.#held.has(event.seq)) {
      this.#stats.duplicatesDropped++;
      return;
    }
    this.#held.set(event.seq, event);
    this.#drain();
  }

  /**
   * A snapshot was published: a receiver behind it resyncs from it, whether it waits behind a hole
   * or lost the last events (which no later event reveals).
   */
  snapshotPublished(snapshot: NeedSnapshot): void {
    if (snapshot.seq > this.last) this.#fill(snapshot);
  }

  close(): void {
    this.closed = true;
    this.#gapTimer?.cancel();
    this.#gapTimer = undefined;
    this.#held.clear();
  }

  /** Delivers the run of held events that continues `last`; arms the gap wait if a hole remains. */
  #drain(): void {
    const run: BusEvent[] = [];
    for (let next = this.#held.get(this.last + 1); next; next = this.#held.get(this.last + 1)) {
      this.#held.delete(next.seq);
      run.push(next);
      this.last = next.seq;
    }
    if (run.length > 0) this.#subscriber.onEvents(run);
    if (this.#held.size === 0) {
      this.#gapTimer?.cancel();
      this.#gapTimer = undefined;
    } else if (!this.#gapTimer) {
      this.#gapTimer = this.#timers.setTimeout(() => {
        this.#gapTimer = undefined;
        void this.#readSnapshot().then((snapshot) => {
          if (snapshot && snapshot.seq > this.last) this.#fill(snapshot);
        });
      }, this.#gapWaitMs);
    }
  }

  #fill(snapshot: NeedSnapshot): void {
    if (this.closed) return;
    this.#gapTimer?.cancel();
    this.#gapTimer = undefined;
    this.#stats.resyncs++;
    this.resync(snapshot, 'seq_jump');
  }
}
