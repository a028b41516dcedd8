import { type Job, UnrecoverableError, WaitingError, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { MlosError } from '../store/errors.js';
import type { Logger } from './logger.js';
import { endForGood, GRACE_MS, shutdown, within } from './redis-connection.js';
import {
  type Consumer,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type JobEnd,
  type JobHandler,
  type QueuedJob,
} from './task-queue.js';

const QueuedJobSchema = z.object({
  taskId: z.string().min(1),
  needId: z.string().min(1),
  identity: z.string().min(1),
  attempt: z.number().int().min(0),
});

/** What a consumer needs from its queue. */
export interface ConsumerHost {
  connect(): Redis;
  readonly prefix: string;
  queueName(identity: string): string;
  readonly log: Logger;
  report(source: string, err: unknown, fields?: Record<string, unknown>): void;
  closed(consumer: BullmqConsumer): void;
}

/**
 * One BullMQ worker per identity, all sharing this consumer's concurrency through a semaphore:
 * each worker may fetch up to `concurrency` jobs, and a fetched job waits (active, its lock
 * renewed) for a free slot. On close, jobs still waiting for a slot go back to their queue.
 */
export class BullmqConsumer implements Consumer {
  readonly #host: ConsumerHost;
  readonly #identities: readonly string[];
  readonly #handler: JobHandler;
  readonly #permits: Permits;
  readonly #connection: Redis;
  /** Every connection of this consumer: its own and the blocking ones BullMQ duplicates from it. */
  readonly #clients: Redis[] = [];
  readonly #workers: Worker<QueuedJob, JobEnd>[];
  readonly #running = new Set<{ job: QueuedJob; controller: AbortController }>();
  #closing: Promise<void> | null = null;

  constructor(host: ConsumerHost, identities: readonly string[], handler: JobHandler, concurrency: number) {
    this.#host = host;
    this.#identities = identities;
    this.#handler = handler;
    this.#permits = new Permits(concurrency);
    this.#connection = host.connect();
    this.#clients.push(this.#connection);
    const duplicate = this.#connection.duplicate.bind(this.#connection);
    this.#connection.duplicate = (override) => {
      const copy = duplicate(override);
      this.#clients.push(copy);
      return copy;
    };
    // BullMQ forwards this connection's errors to each worker's 'error'; this listener only keeps
    // ioredis from printing "Unhandled error event" once the workers have let go of it.
    this.#connection.on('error', (err) => host.log.debug({ err }, 'consumer connection error'));
    this.#workers = identities.map((identity) => {
      const worker = new Worker<QueuedJob, JobEnd>(
        host.queueName(identity),
        // Three declared parameters: BullMQ passes the AbortSignal only to processors that take it.
        (job: Job<QueuedJob, JobEnd>, token: string | undefined, signal: AbortSignal | undefined) =>
          this.#process(identity, job, token, signal),
        {
          connection: this.#connection,
          prefix: host.prefix,
          concurrency,
          // After a failed fetch (Redis away), try again after 1 s rather than BullMQ's 15 s.
          runRetryDelay: 1000,
        },
      );
      worker.on('error', (err) => host.report('worker', err, { identity }));
      return worker;
    });
  }

  async #process(
    identity: string,
    job: Job<QueuedJob, JobEnd>,
    token: string | undefined,
    signal: AbortSignal | undefined,
  ): Promise<JobEnd> {
    const parsed = QueuedJobSchema.safeParse(job.data);
    if (!parsed.success) {
      this.#host.log.error(
        { jobId: job.id, identity, issues: z.prettifyError(parsed.error) },
        'malformed job payload: the job fails; reconciliation enqueues its task again from SQLite',
      );
      throw new UnrecoverableError(`job ${job.id}: malformed payload`);
    }
    if (!(await this.#permits.acquire())) {
      // The consumer began closing while this job waited for a slot: hand it back untouched.
      await job.moveToWait(token);
      throw new WaitingError();
    }
    const entry = { job: parsed.data, controller: new AbortController() };
    const onAbort = () => entry.controller.abort(signal?.reason);
    signal?.addEventListener('abort', onAbort, { once: true });
    this.#running.add(entry);
    try {
      return await untilAborted(this.#handler(entry.job, entry.controller.signal), entry.controller.signal);
    } catch (err) {
      const abandoned = entry.controller.signal.aborted && err === entry.controller.signal.reason;
      this.#host.log[abandoned ? 'warn' : 'error'](
        { err, taskId: entry.job.taskId, identity },
        abandoned
          ? 'task handler abandoned: its signal was aborted; its job fails (SQLite decides retries)'
          : 'task handler failed; its job ends (attempts 1: SQLite decides retries)',
      );
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#running.delete(entry);
      this.#permits.release();
    }
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.#closing ??= this.#shutdown(timeoutMs);
    return this.#closing;
  }

  async #shutdown(timeoutMs: number): Promise<void> {
    this.#permits.close();
    // BullMQ's close waits for running jobs without a bound, and a later close(true) would only
    // return that same pending promise; so the bound is ours: abort the handlers' signals, which
    // also ends their jobs at once (see untilAborted), then cut the connections if need be.
    const closed = Promise.allSettled(this.#workers.map((w) => w.close()));
    if (!(await within(closed, timeoutMs))) {
      for (const { job, controller } of this.#running) {
        controller.abort(
          new MlosError(
            'queue_close_timeout',
            `task ${job.taskId} was still running ${timeoutMs} ms after its consumer began closing; its signal is aborted and its job failed`,
          ),
        );
      }
      if (!(await within(closed, GRACE_MS))) {
        // Typically Redis is away, and BullMQ waits for an 'end' that ioredis never emits for a
        // client disconnected between two reconnection attempts: end every connection for good.
        this.#host.log.warn(
          { identities: this.#identities },
          'BullMQ workers did not finish closing (is Redis away?); ending their connections',
        );
        for (const client of this.#clients) endForGood(client);
        if (!(await within(closed, GRACE_MS))) {
          this.#host.log.error(
            { identities: this.#identities },
            'BullMQ workers did not close; their timers may keep the process alive',
          );
        }
      }
    }
    await shutdown(this.#connection);
    this.#host.closed(this);
  }
}

/** A counting semaphore with FIFO waiters; once closed, waiters and later acquirers get `false`. */
class Permits {
  #free: number;
  readonly #waiters: ((granted: boolean) => void)[] = [];
  #closed = false;

  constructor(count: number) {
    this.#free = count;
  }

  acquire(): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false);
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve(true);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  release(): void {
    const next = this.#closed ? undefined : this.#waiters.shift();
    if (next) next(true);
    else this.#free++;
  }

  close(): void {
    this.#closed = true;
    for (const waiter of this.#waiters.splice(0)) waiter(false);
  }
}

/** Settles with `work`, or rejects with the signal's reason as soon as it aborts. */
function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    if (signal.aborted) onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(err);
      },
    );
  });
}
