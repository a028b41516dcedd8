/**
 * The TaskQueue port. The queue is a doorbell: SQLite decides what runs and when it is retried;
 * a job only says "task X of identity I may be ready". A delivered job whose task is no longer
 * queued ends as superseded. Jobs are identified by the task id, so enqueueing twice is a no-op.
 * Adapters: `MemoryTaskQueue` (embedded) and `BullmqTaskQueue` (one Redis queue per identity).
 */

import { MlosError } from '../store/errors.js';

export interface QueuedJob {
  readonly taskId: string;
  readonly needId: string;
  readonly identity: string;
  readonly attempt: number;
}

/** How a handler ended a job: it ran the task, or found it was no longer queued. */
export type JobEnd = 'done' | 'superseded';

export type JobHandler = (job: QueuedJob, signal: AbortSignal) => Promise<JobEnd>;

export interface ConsumeOptions {
  /** Jobs run at once by this consumer, across its identities. */
  readonly concurrency: number;
}

/** A running consumer; `close` stops taking jobs and waits (up to a timeout) for running ones. */
export interface Consumer {
  close(timeoutMs?: number): Promise<void>;
}

export interface TaskQueue {
  readonly kind: 'memory' | 'bullmq';
  /**
   * Adds the job unless a job with this task id is already held (waiting or active). `fresh`: the
   * caller rings a task for the first time (the outbox drain after graduation), so no ended job
   * with its id can be kept: BullMQ skips the round trip that looks for one. Should one exist after
   * all (a crash between an add and the outbox delete), the add is ignored and reconciliation,
   * which compares queued tasks with the held jobs, rings the task again.
   */
  enqueue(job: QueuedJob, options?: { readonly fresh?: boolean }): Promise<void>;
  /** Takes jobs of `identities` and runs `handler` on each, at most `concurrency` at a time. */
  consume(identities: readonly string[], handler: JobHandler, options: ConsumeOptions): Consumer;
  /** The task ids held (waiting or active) for an identity: what reconciliation compares with SQLite. */
  held(identity: string): Promise<ReadonlySet<string>>;
  /** Waiting jobs per identity. */
  depth(identities: readonly string[]): Promise<Record<string, number>>;
  /**
   * Called after the queue reconnects to its backend (never for memory): the supervisor
   * reconciles then, because a Redis without persistence may have lost its jobs.
   */
  onReconnect(listener: () => void): void;
  /** Closes consumers and connections; bounded by `timeoutMs` (BullMQ's own close has none). Idempotent. */
  close(timeoutMs?: number): Promise<void>;
}

/** What `close` waits for running handlers when no timeout is given, in ms. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 10_000;

/** `enqueue` or `consume` on a queue (or consumer) that was closed: a lifecycle bug of the caller. */
export class TaskQueueClosedError extends MlosError {
  constructor(what: string) {
    super(
      'queue_closed',
      `${what}: the task queue is closed; create a new queue, or stop the caller before closing it`,
    );
  }
}
