import type { Redis } from 'ioredis';
import { MlosError } from '../store/index.js';
import {
  type BusEvent,
  type BusSubscriber,
  type BusSubscription,
  EMPTY_SNAPSHOT,
  type GapReason,
} from './need-bus.js';
import {
  BusEventSchema,
  backoff,
  connect,
  type RedisBusConfig,
  readSnapshot,
  type StreamEntry,
  seqOfId,
  streamEntries,
  withTimeout,
} from './redis-need-bus-shared.js';

/**
 * One subscription of a RedisNeedBus: a blocking XREAD loop on its own connection that tracks the
 * last seq it delivered and resyncs from the snapshot by the rules documented on RedisNeedBus.
 */
export class RedisSubscription implements BusSubscription {
  readonly started: Promise<void>;
  readonly #config: RedisBusConfig;
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

  constructor(config: RedisBusConfig, subscriber: BusSubscriber, onClosed: () => void) {
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
