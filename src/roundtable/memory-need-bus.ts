import { MlosError } from '../store/index.js';
import {
  type BusEvent,
  type BusSubscriber,
  type BusSubscription,
  checkPublishOrder,
  EMPTY_SNAPSHOT,
  type GapReason,
  type NeedBus,
  type NeedSnapshot,
  snapshotBehind,
} from './need-bus.js';

export interface MemoryNeedBusOptions {
  /** How many of the latest events the log keeps; older ones are trimmed. Default 10 000. */
  readonly maxLog?: number;
  /**
   * Receives what a subscriber's callback threw (the bus goes on delivering). Default: a process
   * warning, so a broken subscriber is never silent.
   */
  readonly onError?: (error: unknown) => void;
}

export const DEFAULT_MEMORY_MAX_LOG = 10_000;

interface MemorySubscriber {
  readonly subscriber: BusSubscriber;
  /** The last seq delivered to it, through events or a snapshot. */
  last: number;
  closed: boolean;
}

/**
 * The embedded NeedBus: a bounded in-process log of the latest events plus the latest snapshot.
 *
 * Delivery is **synchronous**: `publish` and `publishSnapshot` hand the events to every subscriber
 * before they return (before their promise settles), and `subscribe` delivers the 'start' resync
 * and every logged event after the snapshot before it returns. Delivery is not reentrant: what a
 * callback publishes is delivered once the current round ends, so every subscriber sees one order.
 * No timers and no randomness, so the deterministic simulator can run it.
 *
 * Gaps: a subscriber whose next event is not `last + 1` (the log was trimmed past it, or the
 * publisher skipped seqs that a snapshot covers) gets `onResync(snapshot, 'trimmed' | 'seq_jump')`
 * as soon as a snapshot newer than its position exists, then the events after that snapshot. Until
 * then it receives nothing (never an event past a hole); the next `publishSnapshot` resumes it.
 */
export class MemoryNeedBus implements NeedBus {
  readonly kind = 'memory' as const;
  readonly #maxLog: number;
  readonly #onError: (error: unknown) => void;
  /** The log is `#log[#head…]`; trimming advances `#head`, compaction happens in bulk. */
  #log: BusEvent[] = [];
  #head = 0;
  /** The highest seq trimmed from the log (0: none). */
  #trimmedThrough = 0;
  #lastPublished: number | null = null;
  #snapshot: NeedSnapshot | null = null;
  readonly #subscribers = new Set<MemorySubscriber>();
  #pumping = false;
  #again = false;
  #closed = false;

  constructor(options: MemoryNeedBusOptions = {}) {
    const maxLog = options.maxLog ?? DEFAULT_MEMORY_MAX_LOG;
    if (!Number.isSafeInteger(maxLog) || maxLog < 1) {
      throw new MlosError('bus_config', `MemoryNeedBus maxLog must be a positive integer, got ${maxLog}`);
    }
    this.#maxLog = maxLog;
    this.#onError = options.onError ?? warn;
  }

  async publish(events: readonly BusEvent[]): Promise<void> {
    this.#assertOpen();
    checkPublishOrder(events, this.#lastPublished, this.#snapshot?.seq ?? null);
    if (events.length === 0) return;
    for (const event of events) this.#log.push(event);
    this.#lastPublished = events[events.length - 1]!.seq;
    this.#trim();
    this.#pump();
  }

  async publishSnapshot(snapshot: NeedSnapshot): Promise<void> {
    this.#assertOpen();
    const current = this.#snapshot;
    if (current && snapshot.seq < current.seq) {
      throw snapshotBehind(snapshot.seq, current.seq);
    }
    this.#snapshot = snapshot;
    this.#pump();
  }

  async snapshot(): Promise<NeedSnapshot | null> {
    this.#assertOpen();
    return this.#snapshot;
  }

  async subscribe(subscriber: BusSubscriber): Promise<BusSubscription> {
    this.#assertOpen();
    const start = this.#snapshot ?? EMPTY_SNAPSHOT;
    const sub: MemorySubscriber = { subscriber, last: start.seq, closed: false };
    this.#subscribers.add(sub);
    this.#call(() => subscriber.onResync(start, 'start'));
    this.#pump();
    const subscribers = this.#subscribers;
    return {
      get seq() {
        return sub.last;
      },
      async close() {
        sub.closed = true;
        subscribers.delete(sub);
      },
    };
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const sub of this.#subscribers) sub.closed = true;
    this.#subscribers.clear();
  }

  #assertOpen(): void {
    if (this.#closed) throw new MlosError('bus_closed', 'the need bus is closed: open a new one');
  }

  #trim(): void {
    const excess = this.#log.length - this.#head - this.#maxLog;
    if (excess <= 0) return;
    this.#head += excess;
    this.#trimmedThrough = this.#log[this.#head - 1]!.seq;
    if (this.#head >= this.#maxLog) {
      this.#log = this.#log.slice(this.#head);
      this.#head = 0;
    }
  }

  /** Brings every subscriber up to date; a call from inside a callback only asks for another round. */
  #pump(): void {
    if (this.#pumping) {
      this.#again = true;
      return;
    }
    this.#pumping = true;
    try {
      do {
        this.#again = false;
        for (const sub of [...this.#subscribers]) this.#deliver(sub);
      } while (this.#again);
    } finally {
      this.#pumping = false;
    }
  }

  #deliver(sub: MemorySubscriber): void {
    while (!sub.closed) {
      const start = this.#indexAfter(sub.last);
      const first = this.#log[start];
      if (!first) return;
      if (first.seq === sub.last + 1) {
        let end = start + 1;
        while (end < this.#log.length && this.#log[end]!.seq === this.#log[end - 1]!.seq + 1) end++;
        const batch = this.#log.slice(start, end);
        sub.last = batch[batch.length - 1]!.seq;
        this.#call(() => sub.subscriber.onEvents(batch));
        continue;
      }
      // A hole before `first`: only a snapshot past our position can fill it; until one exists,
      // deliver nothing (publishSnapshot pumps again).
      const snapshot = this.#snapshot;
      if (!snapshot || snapshot.seq <= sub.last) return;
      const reason: GapReason = sub.last < this.#trimmedThrough ? 'trimmed' : 'seq_jump';
      sub.last = snapshot.seq;
      this.#call(() => sub.subscriber.onResync(snapshot, reason));
    }
  }

  /** The index in `#log` of the first event with seq > `seq` (`#log.length` if none). */
  #indexAfter(seq: number): number {
    let lo = this.#head;
    let hi = this.#log.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#log[mid]!.seq <= seq) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.#onError(error);
    }
  }
}

function warn(error: unknown): void {
  process.emitWarning(`need bus subscriber threw: ${error instanceof Error ? error.stack : String(error)}`);
}
