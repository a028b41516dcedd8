import type { NeedStatus } from '../store/index.js';

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

/** The compact state of one need, as agents' Layer 2 views use it. */
export interface NeedState {
  readonly id: string;
  readonly title: string;
  readonly status: NeedStatus;
  readonly priority: number;
  readonly scope: string;
  readonly tags: readonly string[];
  readonly actionable: boolean;
  /** The task holding the lease and until when, if any. */
  readonly leaseTask: string | null;
  readonly leaseExpiresAt: number | null;
  readonly fencingToken: number;
  readonly unmetSince: number | null;
  readonly orphaned: boolean;
}

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
