import { MlosError, type NeedStateRow } from '../store/index.js';

/**
 * The NeedBus port: need-state publication. Every event of the store's log is published in seq
 * order, so a subscriber that sees a seq jump knows it lost something; it then resyncs from the
 * snapshot (the compact need state as of some seq) and continues from there. At-least-once:
 * subscribers must tolerate duplicates (skip seq ≤ last seen). Not plain pub/sub.
 * Adapters: `MemoryNeedBus` (embedded) and `RedisNeedBus` (a Redis Stream plus a snapshot key).
 */

/** One published event: the store event's identity and what a watcher needs to react. */
export interface BusEvent {
  readonly seq: number;
  readonly at: number;
  readonly kind: string;
  readonly entity: string;
  readonly needId: string | null;
}

/**
 * The compact state of one need, as agents' Layer 2 views use it: the row the supervisor reads
 * (`needStates` in the store). `lastTakeoverAt` (starts the takeover cooldown) and `dueAt` (a
 * standing need is not unmet before its next cadence) may be absent: absent means never / due now.
 */
export type NeedState = Omit<NeedStateRow, 'lastTakeoverAt' | 'dueAt'> &
  Partial<Pick<NeedStateRow, 'lastTakeoverAt' | 'dueAt'>>;

export interface NeedSnapshot {
  /** The seq of the last event this state reflects. */
  readonly seq: number;
  readonly needs: readonly NeedState[];
}

export type GapReason = 'seq_jump' | 'reconnect' | 'trimmed' | 'start';

export interface BusSubscriber {
  /** Events in seq order, each after the previous one the subscriber saw (no duplicates). */
  onEvents(events: readonly BusEvent[]): void;
  /**
   * The subscriber missed events (or is starting): here is the snapshot to resync from; events
   * after `snapshot.seq` follow through onEvents.
   */
  onResync(snapshot: NeedSnapshot, reason: GapReason): void;
}

export interface BusSubscription {
  /** The last seq delivered (through events or a snapshot). */
  readonly seq: number;
  close(): Promise<void>;
}

export interface NeedBus {
  readonly kind: 'memory' | 'redis';
  /** Publishes events (strictly increasing seq, continuing the previous publish). */
  publish(events: readonly BusEvent[]): Promise<void>;
  /** Replaces the snapshot (its seq must not go back). */
  publishSnapshot(snapshot: NeedSnapshot): Promise<void>;
  /** The latest snapshot, if any. */
  snapshot(): Promise<NeedSnapshot | null>;
  /** Starts delivery: a resync from the snapshot first (reason 'start'), then events after it. */
  subscribe(subscriber: BusSubscriber): Promise<BusSubscription>;
  close(): Promise<void>;
}

/** The snapshot a subscriber starts from when none was ever published: no needs, at seq 0. */
export const EMPTY_SNAPSHOT: NeedSnapshot = Object.freeze({ seq: 0, needs: Object.freeze([]) });

/**
 * The publish order every adapter enforces, given the last seq this publisher published (`null`
 * before its first publish, which may start anywhere: a restarted supervisor re-publishes from its
 * cursor) and the latest snapshot seq it knows of. Each event must continue the previous one
 * (seq = previous + 1); a jump is allowed only when a snapshot already covers the skipped seqs
 * (snapshot seq ≥ the new seq − 1), because subscribers resync from it. Throws `MlosError`
 * (`bus_out_of_order`) naming the offending seq otherwise; a programmer error of the publisher.
 */
export function checkPublishOrder(
  events: readonly BusEvent[],
  previous: number | null,
  snapshotSeq: number | null,
): void {
  let prev = previous;
  for (const event of events) {
    if (!Number.isSafeInteger(event.seq) || event.seq < 1) {
      throw new MlosError('bus_out_of_order', `event seq ${event.seq} is not a positive integer`);
    }
    if (prev !== null && event.seq !== prev + 1) {
      const covered = event.seq > prev && snapshotSeq !== null && snapshotSeq >= event.seq - 1;
      if (!covered) {
        throw new MlosError(
          'bus_out_of_order',
          event.seq <= prev
            ? `event seq ${event.seq} does not continue seq ${prev}: publish strictly increasing seqs (each seq once)`
            : `event seq ${event.seq} does not continue seq ${prev}: publish seqs ${prev + 1}…${event.seq - 1} first, or a snapshot at seq ≥ ${event.seq - 1} that covers them`,
        );
      }
    }
    prev = event.seq;
  }
}

/** The error of a snapshot whose seq is behind the stored one (`bus_snapshot_behind`). */
export function snapshotBehind(seq: number, current: number): MlosError {
  return new MlosError(
    'bus_snapshot_behind',
    `snapshot at seq ${seq} refused: the bus already holds one at seq ${current} (a snapshot never goes back)`,
  );
}
