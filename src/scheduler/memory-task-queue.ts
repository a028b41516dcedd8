import { MlosError } from '../store/errors.js';
import { type Logger, realTimers, silentLogger, type Timers } from './logger.js';
import {
  type ConsumeOptions,
  type Consumer,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type JobHandler,
  type QueuedJob,
  type TaskQueue,
  TaskQueueClosedError,
} from './task-queue.js';

export interface MemoryTaskQueueOptions {
  readonly log?: Logger;
  /**
   * Used by `close` while handlers still run (its timeout); jobs themselves need no timer. Given
   * (virtual time), a handler starts on a microtask; absent (Node's timers), on a macrotask: see
   * MemoryTaskQueue.
   */
  readonly timers?: Timers;
}

/** How a handler's start is put off: never inside the caller's `enqueue` or `release`. */
type Defer = () => Promise<void>;

const onMicrotask: Defer = () => Promise.resolve();

const onMacrotask: Defer = () => new Promise((resolve) => setImmediate(resolve));

/** A FIFO with O(1) shift: an array and a head index, compacted once the dead prefix dominates. */
class Fifo<T> {
  #items: T[] = [];
  #head = 0;

  get size(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  shift(): T | undefined {
    if (this.#head >= this.#items.length) return undefined;
    const item = this.#items[this.#head++];
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
    return item;
  }
}

/** A held job: waiting in its identity's FIFO, or active in one consumer. */
interface Held {
  readonly job: QueuedJob;
  state: 'waiting' | 'active';
}

/**
 * The embedded TaskQueue: in-process, FIFO per identity, one job per task id while it is held.
 * Its durable state is SQLite (the tasks and outbox tables), so losing it on exit loses nothing:
 * the supervisor's reconciliation enqueues again what is queued in SQLite.
 *
 * Dispatch is synchronous bookkeeping plus a deferred start per handler. On Node's timers the start
 * is a macrotask (setImmediate): a backlog of jobs whose handlers never wait for I/O (the scripted
 * model) would otherwise run as one chain of microtasks, holding timers, signals and sockets
 * (heartbeats, Ctrl-C, /healthz) up until the whole backlog is done. On injected timers it is a
 * microtask, so it runs the same on virtual time: no timer is involved except `close`'s timeout.
 * Fairness: consumers take turns one job at a time, and each consumer takes its identities in
 * round-robin order, so one busy identity cannot starve another.
 */
export class MemoryTaskQueue implements TaskQueue {
  readonly kind = 'memory' as const;
  readonly #log: Logger;
  readonly #timers: Timers;
  readonly #defer: Defer;
  readonly #waiting = new Map<string, Fifo<Held>>();
  readonly #held = new Map<string, Held>();
  #consumers: MemoryConsumer[] = [];
  /** The consumer offered the first job of the next dispatch round (rotates for fairness). */
  #turn = 0;
  #closing: Promise<void> | null = null;

  constructor(options: MemoryTaskQueueOptions = {}) {
    this.#log = options.log ?? silentLogger;
    this.#timers = options.timers ?? realTimers;
    this.#defer = options.timers ? onMicrotask : onMacrotask;
  }

  async enqueue(job: QueuedJob): Promise<void> {
    if (this.#closing) throw new TaskQueueClosedError(`cannot enqueue task ${job.taskId}`);
    if (this.#held.has(job.taskId)) return;
    const held: Held = { job, state: 'waiting' };
    this.#held.set(job.taskId, held);
    let fifo = this.#waiting.get(job.identity);
    if (!fifo) {
      fifo = new Fifo();
      this.#waiting.set(job.identity, fifo);
    }
    fifo.push(held);
    this.#dispatch();
  }

  consume(identities: readonly string[], handler: JobHandler, options: ConsumeOptions): Consumer {
    if (this.#closing) throw new TaskQueueClosedError(`cannot consume ${identities.join(', ')}`);
    checkConcurrency(options.concurrency);
    const consumer = new MemoryConsumer(
      {
        log: this.#log,
        timers: this.#timers,
        defer: this.#defer,
        detach: (c) => {
          this.#consumers = this.#consumers.filter((other) => other !== c);
        },
        release: (job) => this.#release(job),
      },
      [...new Set(identities)],
      handler,
      options.concurrency,
    );
    this.#consumers.push(consumer);
    this.#dispatch();
    return consumer;
  }

  async held(identity: string): Promise<ReadonlySet<string>> {
    if (this.#closing) throw new TaskQueueClosedError(`cannot list the jobs of ${identity}`);
    const ids = new Set<string>();
    for (const [taskId, held] of this.#held) if (held.job.identity === identity) ids.add(taskId);
    return ids;
  }

  async depth(identities: readonly string[]): Promise<Record<string, number>> {
    if (this.#closing) throw new TaskQueueClosedError('cannot count waiting jobs');
    const out: Record<string, number> = {};
    for (const identity of identities) out[identity] = this.#waiting.get(identity)?.size ?? 0;
    return out;
  }

  /** The memory queue has no backend to lose: the listener is never called. */
  onReconnect(_listener: () => void): void {}

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.#closing ??= Promise.all([...this.#consumers].map((c) => c.close(timeoutMs))).then(() => {
      this.#waiting.clear();
      this.#held.clear();
    });
    return this.#closing;
  }

  /** A job ended (or was abandoned by a closing consumer): its task id may be added again. */
  #release(job: QueuedJob): void {
    const held = this.#held.get(job.taskId);
    if (held?.job === job && held.state === 'active') this.#held.delete(job.taskId);
    this.#dispatch();
  }

  /** Hands waiting jobs to consumers with free slots, one job per consumer per round. */
  #dispatch(): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      const consumers = this.#consumers;
      const n = consumers.length;
      for (let i = 0; i < n; i++) {
        const consumer = consumers[(this.#turn + i) % n];
        if (!consumer?.hasRoom) continue;
        const held = consumer.pick(this.#waiting);
        if (!held) continue;
        held.state = 'active';
        consumer.start(held.job);
        progressed = true;
      }
      if (n > 0) this.#turn = (this.#turn + 1) % n;
    }
  }
}

/** What a consumer needs from its queue. */
interface ConsumerHost {
  readonly log: Logger;
  readonly timers: Timers;
  readonly defer: Defer;
  /** The consumer stops taking jobs. */
  detach(consumer: MemoryConsumer): void;
  /** A job ended (or was abandoned by a closing consumer). */
  release(job: QueuedJob): void;
}

class MemoryConsumer implements Consumer {
  readonly #queue: ConsumerHost;
  readonly #identities: readonly string[];
  readonly #handler: JobHandler;
  readonly #concurrency: number;
  /** Running handlers by job, each with the controller of the signal it was given. */
  readonly #running = new Map<QueuedJob, AbortController>();
  /** The identity looked at first by the next pick (round-robin). */
  #next = 0;
  #closing: Promise<void> | null = null;
  #onIdle: (() => void) | null = null;

  constructor(queue: ConsumerHost, identities: readonly string[], handler: JobHandler, concurrency: number) {
    this.#queue = queue;
    this.#identities = identities;
    this.#handler = handler;
    this.#concurrency = concurrency;
  }

  get hasRoom(): boolean {
    return !this.#closing && this.#running.size < this.#concurrency;
  }

  /** The next waiting job of this consumer's identities, in round-robin order. */
  pick(waiting: ReadonlyMap<string, Fifo<Held>>): Held | undefined {
    const n = this.#identities.length;
    for (let i = 0; i < n; i++) {
      const index = (this.#next + i) % n;
      const held = waiting.get(this.#identities[index] ?? '')?.shift();
      if (held) {
        this.#next = (index + 1) % n;
        return held;
      }
    }
    return undefined;
  }

  start(job: QueuedJob): void {
    const controller = new AbortController();
    this.#running.set(job, controller);
    void this.#run(job, controller);
  }

  async #run(job: QueuedJob, controller: AbortController): Promise<void> {
    // Put off (see MemoryTaskQueue): a handler never runs inside the caller's `enqueue`.
    await this.#queue.defer();
    // Abandoned by a `close` that timed out before it started: it never starts.
    if (this.#running.get(job) !== controller) return;
    try {
      await this.#handler(job, controller.signal);
    } catch (err) {
      this.#queue.log.error(
        { err, taskId: job.taskId, identity: job.identity },
        'task handler failed; its job ends (the queue never retries: SQLite decides)',
      );
    }
    // A handler abandoned by `close` was already released; its late end changes nothing.
    if (this.#running.get(job) !== controller) return;
    this.#running.delete(job);
    this.#queue.release(job);
    if (this.#running.size === 0) this.#onIdle?.();
  }

  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.#closing ??= this.#drain(timeoutMs);
    return this.#closing;
  }

  async #drain(timeoutMs: number): Promise<void> {
    this.#queue.detach(this);
    if (this.#running.size === 0) return;
    let timer: { cancel(): void } | undefined;
    const idle = new Promise<boolean>((resolve) => {
      this.#onIdle = () => resolve(true);
      if (timeoutMs > 0) timer = this.#queue.timers.setTimeout(() => resolve(false), timeoutMs);
      else resolve(false);
    });
    const drained = await idle;
    timer?.cancel();
    if (drained) return;
    const running = [...this.#running];
    this.#running.clear();
    for (const [job, controller] of running) {
      controller.abort(
        new MlosError(
          'queue_close_timeout',
          `task ${job.taskId} was still running ${timeoutMs} ms after its consumer began closing; its signal is aborted and its job ended`,
        ),
      );
      this.#queue.release(job);
    }
  }
}

function checkConcurrency(concurrency: number): void {
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`consume: concurrency must be a positive integer, got ${concurrency}`);
  }
}
