import { Redis, type RedisOptions } from 'ioredis';
import * as z from 'zod';
import { MlosError, NEED_STATUSES } from '../store/index.js';
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

export interface RedisNeedBusOptions {
  /** `redis://[user:pass@]host:port[/db]`. */
  readonly url: string;
  /** Key prefix: the stream is `<namespace>:bus:events`, the snapshot `<namespace>:bus:snapshot`. Default `mlos`. */
  readonly namespace?: string;
  /** The stream keeps about this many of the latest events (`XADD MAXLEN ~`). Default 100 000. */
  readonly maxLen?: number;
  /** How long one blocking XREAD waits for new events, in ms. Default 1000. */
  readonly blockMs?: number;
  /** Events fetched per XREAD at most. Default 1000. */
  readonly batchSize?: number;
  /** The longest pause between reconnection or retry attempts, in ms. Default 2000. */
  readonly maxBackoffMs?: number;
  /**
   * How long publish, publishSnapshot and snapshot wait for Redis (including while it is
   * unreachable) before they reject, in ms. Default 10 000.
   */
  readonly commandTimeoutMs?: number;
  /** How long close() waits for connections to quit before it drops them, in ms. Default 2000. */
  readonly closeTimeoutMs?: number;
  /**
   * Receives Redis errors (connection loss, refused reconnects) and what subscriber callbacks
   * threw; the bus never lets them crash the process, and retries with backoff. Default: a
   * process warning, repeated messages once.
   */
  readonly onError?: (error: unknown, context: string) => void;
}

interface Config {
  readonly url: string;
  readonly stream: string;
  readonly snapshot: string;
  readonly maxLen: number;
  readonly blockMs: number;
  readonly batchSize: number;
  readonly maxBackoffMs: number;
  readonly commandTimeoutMs: number;
  readonly closeTimeoutMs: number;
  readonly onError: (error: unknown, context: string) => void;
}

/**
 * Appends events to the stream in seq order, atomically. Stream ids are `<seq>-0`, so a reader
 * resumes after seq N by reading after id `N-0`. Seqs at or below the stream's newest entry are
 * skipped: a restarted publisher re-publishing from its cursor, or a retried publish whose reply
 * was lost, adds nothing twice. KEYS[1] stream; ARGV[1] maxLen, then (seq, event JSON) pairs.
 */
const PUBLISH_LUA = `
local top = 0
local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
if newest[1] then top = tonumber(string.match(newest[1][1], '^(%d+)')) end
local added = 0
for i = 2, #ARGV, 2 do
  local seq = tonumber(ARGV[i])
  if seq > top then
    redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], ARGV[i] .. '-0', 'seq', ARGV[i], 'event', ARGV[i + 1])
    top = seq
    added = added + 1
  end
end
return added`;

/**
 * Replaces the snapshot unless the stored one is newer. The snapshot is a hash {seq, json}, so the
 * check and the subscribers' "is it ahead of me?" read need not decode the JSON. Returns -1 when
 * stored, else the stored (newer) seq. KEYS[1] snapshot; ARGV[1] seq; ARGV[2] JSON.
 */
const SNAPSHOT_LUA = `
local current = redis.call('HGET', KEYS[1], 'seq')
if current and tonumber(current) > tonumber(ARGV[1]) then return tonumber(current) end
redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'json', ARGV[2])
return -1`;

const BusEventSchema = z.looseObject({
  seq: z.number().int().positive(),
  at: z.number(),
  kind: z.string(),
  entity: z.string(),
  needId: z.string().nullable(),
});

const NeedSnapshotSchema = z.object({
  seq: z.number().int().nonnegative(),
  needs: z.array(
    z.looseObject({
      id: z.string(),
      title: z.string(),
      status: z.enum(NEED_STATUSES),
      priority: z.number(),
      scope: z.string(),
      tags: z.array(z.string()),
      actionable: z.boolean(),
      leaseTask: z.string().nullable(),
      leaseExpiresAt: z.number().nullable(),
      fencingToken: z.number(),
      unmetSince: z.number().nullable(),
      orphaned: z.boolean(),
    }),
  ),
});

/**
 * The distributed NeedBus: a Redis Stream that carries every event in seq order, plus a snapshot
 * key. Each subscription reads with blocking XREAD on its own connection and tracks the last seq
 * it delivered.
 *
 * Resync rules (a subscription at position `last`):
 * - **start**: the stored snapshot (or an empty one at seq 0), then the events after it.
 * - **seq jump / trimmed**: the next event is past `last + 1`; the reason is 'trimmed' when the
 *   stream's oldest entry is past `last + 1` (our position fell off), else 'seq_jump'. The snapshot
 *   is delivered only if it moves forward (seq > last); the events up to its seq are skipped. If it
 *   does not (still behind or missing), nothing past the hole is delivered: the subscription keeps
 *   re-reading from `last` with backoff (up to `blockMs`) and resyncs once a newer snapshot exists.
 * - **reconnect**: after the connection came back, the snapshot is delivered if it is at or past
 *   `last` (it can never move the subscriber back). If it is missing or behind (say Redis restarted
 *   without persistence), the next event decides: `last + 1` proves nothing was lost (no resync);
 *   a jump resyncs with reason 'reconnect' by the rule above.
 * - Events with seq ≤ last are never delivered (duplicates).
 *
 * Subscriber callbacks that throw are reported to `onError` and count as delivered.
 */
export class RedisNeedBus implements NeedBus {
  readonly kind = 'redis' as const;
  /** The Redis keys this bus uses (for operators and test cleanup). */
  readonly keys: { readonly stream: string; readonly snapshot: string };
  readonly #config: Config;
  readonly #cmd: Redis;
  readonly #subscriptions = new Set<RedisSubscription>();
  #lastPublished: number | null = null;
  /** The newest snapshot seq this instance stored or read. */
  #snapshotSeq: number | null = null;
  #publishing: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(options: RedisNeedBusOptions) {
    const namespace = options.namespace ?? 'mlos';
    this.#config = {
      url: options.url,
      stream: `${namespace}:bus:events`,
      snapshot: `${namespace}:bus:snapshot`,
      maxLen: positive('maxLen', options.maxLen ?? 100_000),
      blockMs: positive('blockMs', options.blockMs ?? 1000),
      batchSize: positive('batchSize', options.batchSize ?? 1000),
      maxBackoffMs: positive('maxBackoffMs', options.maxBackoffMs ?? 2000),
      commandTimeoutMs: positive('commandTimeoutMs', options.commandTimeoutMs ?? 10_000),
      closeTimeoutMs: positive('closeTimeoutMs', options.closeTimeoutMs ?? 2000),
      onError: options.onError ?? warnOnce(),
    };
    this.keys = { stream: this.#config.stream, snapshot: this.#config.snapshot };
    this.#cmd = connect(this.#config, 'mlos:bus:pub', {
      commandTimeout: this.#config.commandTimeoutMs,
      maxRetriesPerRequest: null,
    });
  }

  /**
   * XADDs the events (fields `seq` and `event`, the JSON) in one Lua script: atomic, in seq order.
   * Throws `bus_out_of_order` when a seq does not continue this instance's previous publish (see
   * `checkPublishOrder`); rejects when Redis does not answer within `commandTimeoutMs`, in which
   * case publishing the same events again is safe.
   */
  publish(events: readonly BusEvent[]): Promise<void> {
    return this.#serialized(async () => {
      this.#assertOpen();
      try {
        checkPublishOrder(events, this.#lastPublished, this.#snapshotSeq);
      } catch (error) {
        // Another instance may have stored the snapshot that covers the jump.
        const stored = await this.#cmd.hget(this.#config.snapshot, 'seq');
        if (stored === null) throw error;
        this.#noteSnapshot(Number(stored));
        checkPublishOrder(events, this.#lastPublished, this.#snapshotSeq);
      }
      if (events.length === 0) return;
      const args: string[] = [String(this.#config.maxLen)];
      for (const event of events) args.push(String(event.seq), JSON.stringify(event));
      await this.#cmd.eval(PUBLISH_LUA, 1, this.#config.stream, ...args);
      this.#lastPublished = events[events.length - 1]!.seq;
    });
  }

  /** Stores the snapshot; throws `bus_snapshot_behind` if the stored one has a higher seq. */
  publishSnapshot(snapshot: NeedSnapshot): Promise<void> {
    return this.#serialized(async () => {
      this.#assertOpen();
      const json = JSON.stringify({ seq: snapshot.seq, needs: snapshot.needs });
      const result = Number(await this.#cmd.eval(SNAPSHOT_LUA, 1, this.#config.snapshot, snapshot.seq, json));
      if (result >= 0) {
        this.#noteSnapshot(result);
        throw snapshotBehind(snapshot.seq, result);
      }
      this.#noteSnapshot(snapshot.seq);
    });
  }

  async snapshot(): Promise<NeedSnapshot | null> {
    this.#assertOpen();
    const snapshot = await readSnapshot(this.#cmd, this.#config.snapshot);
    if (snapshot) this.#noteSnapshot(snapshot.seq);
    return snapshot;
  }

  /**
   * Opens a dedicated connection and resolves once the 'start' resync was delivered (waiting for
   * Redis if it is down; close() aborts the wait with `bus_closed`).
   */
  async subscribe(subscriber: BusSubscriber): Promise<BusSubscription> {
    this.#assertOpen();
    const subscription = new RedisSubscription(this.#config, subscriber, () =>
      this.#subscriptions.delete(subscription),
    );
    this.#subscriptions.add(subscription);
    try {
      await subscription.started;
    } catch (error) {
      await subscription.close();
      throw error;
    }
    return subscription;
  }

  /** Stops every subscription and quits the connections; idempotent, bounded by `closeTimeoutMs`. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.all([...this.#subscriptions].map((s) => s.close()));
      await quit(this.#cmd, this.#config.closeTimeoutMs);
    })();
    return this.#closing;
  }

  #assertOpen(): void {
    if (this.#closing) throw new MlosError('bus_closed', 'the need bus is closed: open a new one');
  }

  #noteSnapshot(seq: number): void {
    if (this.#snapshotSeq === null || seq > this.#snapshotSeq) this.#snapshotSeq = seq;
  }

  /** Runs publishes one at a time, so the order check sees the previous publish's outcome. */
  #serialized(fn: () => Promise<void>): Promise<void> {
    const run = this.#publishing.then(fn, fn);
    this.#publishing = run.catch(() => undefined);
    return run;
  }
}

class RedisSubscription implements BusSubscription {
  readonly started: Promise<void>;
  readonly #config: Config;
  readonly #subscriber: BusSubscriber;
  readonly #onClosed: () => void;
  readonly #conn: Redis;
  readonly #loop: Promise<void>;
  #last = 0;
  #closed = false;
  #everReady = false;
  /** Set by the connection's 'ready' after a loss; the loop turns it into a pending resync. */
  #reconnected = false;
  #pendingReconnect = false;
  #wake: (() => void) | null = null;
  #closing: Promise<void> | undefined;

  constructor(config: Config, subscriber: BusSubscriber, onClosed: () => void) {
    this.#config = config;
    this.#subscriber = subscriber;
    this.#onClosed = onClosed;
    // Commands fail fast while disconnected (the loop waits for 'ready' itself); a command lost
    // in flight is resent on reconnect or times out, so the loop can never hang.
    this.#conn = connect(config, 'mlos:bus:sub', {
      enableOfflineQueue: false,
      maxRetriesPerRequest: null,
      commandTimeout: config.blockMs + config.commandTimeoutMs,
    });
    this.#conn.on('ready', () => {
      if (this.#everReady) this.#reconnected = true;
      this.#everReady = true;
    });
    let markStarted: () => void = () => undefined;
    let failStart: (error: unknown) => void = () => undefined;
    this.started = new Promise<void>((resolve, reject) => {
      markStarted = resolve;
      failStart = reject;
    });
    this.#loop = this.#run(markStarted, failStart);
  }

  get seq(): number {
    return this.#last;
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#closed = true;
      this.#wake?.();
      this.#onClosed();
      this.#conn.disconnect();
      await withTimeout(this.#loop, this.#config.closeTimeoutMs);
    })();
    return this.#closing;
  }

  async #run(markStarted: () => void, failStart: (error: unknown) => void): Promise<void> {
    let failures = 0;
    while (!this.#closed) {
      try {
        await this.#ready();
        if (this.#closed) break;
        this.#reconnected = false;
        const snapshot = (await readSnapshot(this.#conn, this.#config.snapshot)) ?? EMPTY_SNAPSHOT;
        if (this.#closed) break;
        this.#last = snapshot.seq;
        this.#call(() => this.#subscriber.onResync(snapshot, 'start'));
        markStarted();
        break;
      } catch (error) {
        if (this.#closed) break;
        this.#config.onError(error, 'need bus subscription: reading the snapshot');
        await this.#sleep(backoff(++failures, this.#config.maxBackoffMs));
      }
    }
    if (this.#closed) {
      failStart(new MlosError('bus_closed', 'the need bus was closed before the subscription started'));
      return;
    }
    failures = 0;
    let gapOpen = false;
    while (!this.#closed) {
      try {
        if (gapOpen)
          await this.#sleep(Math.min(this.#config.blockMs, backoff(++failures, this.#config.maxBackoffMs)));
        await this.#ready();
        if (this.#closed) break;
        const reply = await this.#conn.xread(
          'COUNT',
          this.#config.batchSize,
          'BLOCK',
          this.#config.blockMs,
          'STREAMS',
          this.#config.stream,
          `${this.#last}-0`,
        );
        if (this.#closed) break;
        if (this.#reconnected) {
          this.#reconnected = false;
          this.#pendingReconnect = true;
        }
        if (this.#pendingReconnect) await this.#resync('reconnect', false);
        gapOpen = await this.#deliver(streamEntries(reply));
        if (!gapOpen) failures = 0;
      } catch (error) {
        if (this.#closed) break;
        this.#config.onError(error, 'need bus subscription: reading the stream');
        await this.#sleep(backoff(++failures, this.#config.maxBackoffMs));
      }
    }
  }

  /** Delivers entries in order; true when a hole remains that no snapshot fills yet. */
  async #deliver(entries: readonly StreamEntry[]): Promise<boolean> {
    let run: BusEvent[] = [];
    const flush = () => {
      if (run.length === 0 || this.#closed) return;
      const batch = run;
      run = [];
      this.#call(() => this.#subscriber.onEvents(batch));
    };
    for (const [id, fields] of entries) {
      const event = this.#parse(id, fields);
      if (!event || event.seq <= this.#last) continue;
      if (event.seq !== this.#last + 1) {
        flush();
        const reason = this.#pendingReconnect ? 'reconnect' : await this.#gapReason();
        if (!(await this.#resync(reason, true))) return true;
        if (event.seq <= this.#last) continue;
        if (event.seq !== this.#last + 1) return true;
      }
      run.push(event);
      this.#last = event.seq;
      this.#pendingReconnect = false;
    }
    flush();
    return false;
  }

  /** 'trimmed' when the stream's oldest entry is past our next seq, else 'seq_jump'. */
  async #gapReason(): Promise<GapReason> {
    const oldest = await this.#conn.xrange(this.#config.stream, '-', '+', 'COUNT', 1);
    const id = oldest[0]?.[0];
    return id !== undefined && seqOfId(id) > this.#last + 1 ? 'trimmed' : 'seq_jump';
  }

  /**
   * Delivers the stored snapshot if it moves the subscriber forward (or, unless `mustAdvance`,
   * keeps it where it is); true when delivered.
   */
  async #resync(reason: GapReason, mustAdvance: boolean): Promise<boolean> {
    const usable = (seq: number) => seq > this.#last || (!mustAdvance && seq === this.#last);
    const seq = await this.#conn.hget(this.#config.snapshot, 'seq');
    if (seq === null || !usable(Number(seq))) return false;
    const snapshot = await readSnapshot(this.#conn, this.#config.snapshot);
    if (!snapshot || !usable(snapshot.seq) || this.#closed) return false;
    this.#last = snapshot.seq;
    this.#pendingReconnect = false;
    this.#call(() => this.#subscriber.onResync(snapshot, reason));
    return true;
  }

  #parse(id: string, fields: readonly string[]): BusEvent | null {
    const json = fields[fields.indexOf('event') + 1];
    try {
      const event = BusEventSchema.parse(JSON.parse(json ?? 'null'));
      if (event.seq !== seqOfId(id)) throw new Error(`its seq ${event.seq} differs from its id`);
      return event;
    } catch (error) {
      this.#config.onError(
        new MlosError('bus_bad_entry', `${this.#config.stream} entry ${id} is not a bus event; skipped`, {
          cause: error,
        }),
        'need bus subscription: parsing an entry',
      );
      return null;
    }
  }

  #call(fn: () => void): void {
    if (this.#closed) return;
    try {
      fn();
    } catch (error) {
      this.#config.onError(error, 'need bus subscriber callback');
    }
  }

  /** Resolves when the connection is ready (or the subscription closes). */
  #ready(): Promise<void> {
    if (this.#conn.status === 'ready') return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#conn.off('ready', done);
        this.#wake = null;
        resolve();
      };
      this.#conn.on('ready', done);
      this.#wake = done;
    });
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }
}

type StreamEntry = readonly [id: string, fields: readonly string[]];

/** The entries of a one-stream XREAD reply (RESP2 array or RESP3 map shape). */
function streamEntries(reply: unknown): readonly StreamEntry[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply))
    return ((reply[0] as [string, StreamEntry[]] | undefined)?.[1] ?? []) as StreamEntry[];
  return (Object.values(reply as Record<string, StreamEntry[]>)[0] ?? []) as StreamEntry[];
}

function seqOfId(id: string): number {
  return Number(id.slice(0, id.indexOf('-')));
}

async function readSnapshot(conn: Redis, key: string): Promise<NeedSnapshot | null> {
  const json = await conn.hget(key, 'json');
  if (json === null) return null;
  try {
    return NeedSnapshotSchema.parse(JSON.parse(json)) as NeedSnapshot;
  } catch (error) {
    throw new MlosError('bus_bad_snapshot', `${key} does not hold a need snapshot: ${String(error)}`, {
      cause: error,
    });
  }
}

function connect(config: Config, name: string, extra: RedisOptions): Redis {
  const conn = new Redis(config.url, {
    connectionName: name,
    retryStrategy: (times) => backoff(times, config.maxBackoffMs),
    ...extra,
  });
  conn.on('error', (error) => config.onError(error, `${name} connection`));
  return conn;
}

/** QUIT, bounded: a connection that does not answer in time is dropped. */
async function quit(conn: Redis, ms: number): Promise<void> {
  if (conn.status === 'ready')
    await withTimeout(
      conn.quit().catch(() => undefined),
      ms,
    );
  if (conn.status !== 'end') conn.disconnect();
}

async function withTimeout(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    promise,
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, ms);
    }),
  ]);
  clearTimeout(timer);
}

function backoff(attempt: number, max: number): number {
  return Math.min(max, 50 * 2 ** Math.min(attempt - 1, 16));
}

function positive(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MlosError('bus_config', `RedisNeedBus ${name} must be a positive integer, got ${value}`);
  }
  return value;
}

/** A process warning per distinct message in a row, so a Redis that stays down warns once. */
function warnOnce(): (error: unknown, context: string) => void {
  let previous = '';
  return (error, context) => {
    const message = `${context}: ${error instanceof Error ? error.message : String(error)}`;
    if (message === previous) return;
    previous = message;
    process.emitWarning(message);
  };
}
