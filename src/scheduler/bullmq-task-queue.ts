import { Queue } from 'bullmq';
import { Redis, type RedisOptions } from 'ioredis';
import { MlosError, UserError } from '../store/errors.js';
import { BullmqConsumer } from './bullmq-consumer.js';
import { type Logger, silentLogger } from './logger.js';
import { GRACE_MS, shutdown, within, withoutPassword } from './redis-connection.js';
import {
  type ConsumeOptions,
  type Consumer,
  DEFAULT_CLOSE_TIMEOUT_MS,
  type JobEnd,
  type JobHandler,
  type QueuedJob,
  type TaskQueue,
  TaskQueueClosedError,
} from './task-queue.js';

export interface BullmqTaskQueueOptions {
  /** `redis://[user:password@]host:port[/db]`. One of `url` and `connection` is required. */
  readonly url?: string;
  readonly connection?: {
    readonly host: string;
    readonly port: number;
    readonly db?: number;
    readonly username?: string;
    readonly password?: string;
  };
  /** Redis key prefix of every queue. Default `mlos`. */
  readonly prefix?: string;
  /** Isolates one database (or one test) from another on a shared Redis: queues are `<namespace>.<identity>`. Default `tasks`. */
  readonly namespace?: string;
  readonly log?: Logger;
  /** Ended jobs kept per queue for inspection: the newest `count`, none older than `ageSeconds`. */
  readonly keepEnded?: { readonly count: number; readonly ageSeconds: number };
  /** Reconnects closer together than this call the listeners once. Default 250 ms. */
  readonly reconnectDebounceMs?: number;
  /** The longest pause between two reconnection attempts. Default 2000 ms. */
  readonly maxReconnectDelayMs?: number;
  /** How long `enqueue`, `held` and `depth` wait for an unreachable Redis before they fail. Default 3000 ms. */
  readonly waitForRedisMs?: number;
}

const JOB_NAME = 'task';
/** Job states in which a task id is held: enqueueing it again is a no-op. */
const HELD_STATES = ['waiting', 'active', 'delayed', 'prioritized'] as const;
const NOT_STARTED_STATES = ['waiting', 'delayed', 'prioritized'] as const;
const NAME = /^[A-Za-z0-9_-]+$/;

/**
 * The distributed TaskQueue: one BullMQ queue per identity, on Redis. Jobs are doorbells
 * (`attempts: 1`, `jobId` = task id, the QueuedJob as data): SQLite alone decides retries, and
 * a Redis that loses its jobs is repaired by the supervisor's reconciliation, which runs after
 * every reconnect (`onReconnect`).
 *
 * Connections: one for producing and inspecting (commands fail after a few reconnection attempts,
 * so an enqueue during an outage fails instead of hanging; the outbox keeps the task), and per
 * consumer one whose commands wait for Redis (`maxRetriesPerRequest: null`, as BullMQ workers
 * need) plus the blocking connection BullMQ opens per worker. Lost connections are retried with
 * capped exponential backoff, forever; errors are logged, never thrown at the process.
 */
export class BullmqTaskQueue implements TaskQueue {
  readonly kind = 'bullmq' as const;
  readonly #prefix: string;
  readonly #namespace: string;
  readonly #log: Logger;
  readonly #keep: { count: number; age: number };
  readonly #redisOptions: RedisOptions;
  readonly #url: string | undefined;
  readonly #debounceMs: number;
  readonly #waitForRedisMs: number;
  /** Where Redis is, for messages (no password). */
  readonly #where: string;
  readonly #client: Redis;
  readonly #queues = new Map<string, Queue<QueuedJob, JobEnd>>();
  readonly #consumers = new Set<BullmqConsumer>();
  readonly #listeners: (() => void)[] = [];
  /** The producer connection dropped and has not been ready since. */
  #lost = false;
  /** Errors already logged during the current outage (a retry loop repeats the same one). */
  readonly #reported = new Set<string>();
  #notify: ReturnType<typeof setTimeout> | null = null;
  /** Calls waiting for the producer connection to become ready. */
  #readyWait: { promise: Promise<void>; resolve: () => void } | null = null;
  #closing: Promise<void> | null = null;

  constructor(options: BullmqTaskQueueOptions) {
    if (!options.url && !options.connection) {
      throw new UserError(
        'BullmqTaskQueue needs a Redis `url` (e.g. redis://127.0.0.1:6379) or a `connection`',
      );
    }
    this.#prefix = checkName('prefix', options.prefix ?? 'mlos');
    this.#namespace = checkName('namespace', options.namespace ?? 'tasks');
    this.#log = options.log ?? silentLogger;
    this.#keep = {
      count: options.keepEnded?.count ?? 1000,
      age: options.keepEnded?.ageSeconds ?? 24 * 3600,
    };
    this.#debounceMs = options.reconnectDebounceMs ?? 250;
    this.#waitForRedisMs = options.waitForRedisMs ?? 3000;
    this.#where = options.url
      ? withoutPassword(options.url)
      : `${options.connection?.host}:${options.connection?.port}`;
    const maxDelay = options.maxReconnectDelayMs ?? 2000;
    this.#url = options.url;
    this.#redisOptions = {
      ...options.connection,
      // Never give up: a queue outlives Redis restarts.
      retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times - 1, 16), maxDelay),
    };
    this.#client = this.#connect({ maxRetriesPerRequest: 3, connectionName: `${this.#prefix}:producer` });
    this.#client.on('error', (err) => this.#report('producer connection', err));
    this.#client.on('close', () => {
      if (this.#closing || this.#lost) return;
      this.#lost = true;
      this.#log.warn({ queue: this.kind }, 'lost the connection to Redis; reconnecting with backoff');
    });
    this.#client.on('ready', () => {
      this.#readyWait?.resolve();
      this.#readyWait = null;
      if (!this.#lost) return;
      this.#lost = false;
      this.#reported.clear();
      this.#log.info({ queue: this.kind }, 'reconnected to Redis');
      this.#scheduleNotify();
    });
  }

  async enqueue(job: QueuedJob, options: { readonly fresh?: boolean } = {}): Promise<void> {
    if (this.#closing) throw new TaskQueueClosedError(`cannot enqueue task ${job.taskId}`);
    checkTaskId(job.taskId);
    const queue = this.#queue(job.identity);
    await this.#whenReady(`cannot enqueue task ${job.taskId}`);
    // One hash read, whatever the backlog (getJobState scans the wait list). A job that exists
    // and has not finished is held; an ended one kept for inspection would make BullMQ ignore
    // the add, so it goes first. A fresh task has none (see TaskQueue.enqueue).
    const existing = options.fresh ? undefined : await queue.getJob(job.taskId);
    if (existing) {
      if (existing.finishedOn === undefined) return;
      await queue.remove(job.taskId);
    }
    await queue.add(JOB_NAME, job, {
      jobId: job.taskId,
      attempts: 1,
      removeOnComplete: this.#keep,
      removeOnFail: this.#keep,
    });
  }

  consume(identities: readonly string[], handler: JobHandler, options: ConsumeOptions): Consumer {
    if (this.#closing) throw new TaskQueueClosedError(`cannot consume ${identities.join(', ')}`);
    if (!Number.isInteger(options.concurrency) || options.concurrency < 1) {
      throw new RangeError(`consume: concurrency must be a positive integer, got ${options.concurrency}`);
    }
    const unique = [...new Set(identities)];
    for (const identity of unique) this.#queueName(identity);
    const consumer = new BullmqConsumer(
      {
        connect: () =>
          this.#connect({ maxRetriesPerRequest: null, connectionName: `${this.#prefix}:consumer` }),
        prefix: this.#prefix,
        queueName: (identity) => this.#queueName(identity),
        log: this.#log,
        report: (source, err, fields) => this.#report(source, err, fields),
        closed: (c) => this.#consumers.delete(c),
      },
      unique,
      handler,
      options.concurrency,
    );
    this.#consumers.add(consumer);
    return consumer;
  }

  async held(identity: string): Promise<ReadonlySet<string>> {
    if (this.#closing) throw new TaskQueueClosedError(`cannot list the jobs of ${identity}`);
    const queue = this.#queue(identity);
    await this.#whenReady(`cannot list the jobs of ${identity}`);
    return new Set(await queue.getRanges([...HELD_STATES], 0, -1));
  }

  async depth(identities: readonly string[]): Promise<Record<string, number>> {
    if (this.#closing) throw new TaskQueueClosedError('cannot count waiting jobs');
    const queues = identities.map((identity) => this.#queue(identity));
    await this.#whenReady('cannot count waiting jobs');
    const counts = await Promise.all(queues.map((queue) => queue.getJobCountByTypes(...NOT_STARTED_STATES)));
    return Object.fromEntries(identities.map((identity, i) => [identity, counts[i] ?? 0]));
  }

  onReconnect(listener: () => void): void {
    this.#listeners.push(listener);
  }

  /**
   * Closes consumers (each bounded by `timeoutMs`, then its running handlers are aborted), then
   * queues, then connections. Idempotent.
   */
  close(timeoutMs = DEFAULT_CLOSE_TIMEOUT_MS): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#notify) clearTimeout(this.#notify);
      await Promise.all([...this.#consumers].map((c) => c.close(timeoutMs)));
      await Promise.all([...this.#queues.values()].map((q) => within(q.close(), GRACE_MS)));
      await shutdown(this.#client);
    })();
    return this.#closing;
  }

  /**
   * Deletes every queue of this namespace (jobs, history, metadata), including those of identities
   * this instance never touched. For tests and cleanup; close consumers first.
   */
  async obliterate(): Promise<void> {
    if (this.#closing) throw new TaskQueueClosedError('cannot obliterate');
    await this.#whenReady('cannot obliterate');
    const identities = new Set(this.#queues.keys());
    const head = `${this.#prefix}:${this.#namespace}.`;
    let cursor = '0';
    do {
      const [next, keys] = await this.#client.scan(cursor, 'MATCH', `${head}*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) {
        const end = key.indexOf(':', head.length);
        if (end > head.length) identities.add(key.slice(head.length, end));
      }
    } while (cursor !== '0');
    for (const identity of identities) await this.#queue(identity).obliterate({ force: true });
  }

  /** Logs a backend error, once per outage (a retry loop repeats it); never throws. */
  #report(source: string, err: unknown, fields: Record<string, unknown> = {}): void {
    const message = err instanceof Error ? err.message : String(err);
    if (this.#lost) {
      const key = `${source}\n${message}`;
      if (this.#reported.has(key)) return;
      if (this.#reported.size < 100) this.#reported.add(key);
    }
    this.#log.warn({ ...fields, queue: this.kind, source, err }, `Redis ${source}: ${message}`);
  }

  /**
   * Waits (boundedly) for the producer connection. While Redis is unreachable, BullMQ would wait
   * forever to set up a queue; a caller gets an error it can act on instead.
   */
  async #whenReady(what: string): Promise<void> {
    if (this.#client.status === 'ready') return;
    if (!this.#readyWait) {
      let resolve = () => {};
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#readyWait = { promise, resolve };
    }
    if (!(await within(this.#readyWait.promise, this.#waitForRedisMs))) {
      throw new MlosError(
        'redis_unavailable',
        `${what}: Redis at ${this.#where} did not answer within ${this.#waitForRedisMs} ms (reconnection goes on in the background); start Redis or check its URL`,
      );
    }
  }

  #connect(extra: RedisOptions): Redis {
    const options = { ...this.#redisOptions, ...extra };
    return this.#url ? new Redis(this.#url, options) : new Redis(options);
  }

  #queueName(identity: string): string {
    if (!identity || identity.includes(':')) {
      throw new UserError(
        `identity "${identity}" cannot name a BullMQ queue: it must be non-empty, without ':'`,
      );
    }
    return `${this.#namespace}.${identity}`;
  }

  #queue(identity: string): Queue<QueuedJob, JobEnd> {
    let queue = this.#queues.get(identity);
    if (!queue) {
      queue = new Queue<QueuedJob, JobEnd>(this.#queueName(identity), {
        connection: this.#client,
        prefix: this.#prefix,
      });
      queue.on('error', (err) => this.#report('queue', err, { identity }));
      this.#queues.set(identity, queue);
    }
    return queue;
  }

  /** Calls the reconnect listeners once, after reconnects stop flapping for the debounce time. */
  #scheduleNotify(): void {
    if (this.#notify) clearTimeout(this.#notify);
    this.#notify = setTimeout(() => {
      this.#notify = null;
      if (this.#closing) return;
      for (const listener of this.#listeners) {
        try {
          listener();
        } catch (err) {
          this.#log.error({ err, queue: this.kind }, 'an onReconnect listener threw');
        }
      }
    }, this.#debounceMs);
    this.#notify.unref();
  }
}

function checkName(what: string, value: string): string {
  if (!NAME.test(value)) {
    throw new UserError(
      `BullmqTaskQueue ${what} "${value}" must match ${NAME} (letters, digits, '_' and '-')`,
    );
  }
  return value;
}

function checkTaskId(taskId: string): void {
  if (!taskId || taskId.includes(':') || /^\d+$/.test(taskId)) {
    throw new UserError(
      `task id "${taskId}" cannot be a BullMQ job id: it must be non-empty, without ':' and not all digits`,
    );
  }
}
