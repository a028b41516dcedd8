import type { Redis } from 'ioredis';
import { MlosError } from '../store/index.js';
import {
  type BusEvent,
  type BusSubscriber,
  type BusSubscription,
  checkPublishOrder,
  type NeedBus,
  type NeedSnapshot,
  snapshotBehind,
} from './need-bus.js';
import {
  connect,
  PUBLISH_LUA,
  quit,
  type RedisBusConfig,
  readSnapshot,
  SNAPSHOT_LUA,
} from './redis-need-bus-shared.js';
import { RedisSubscription } from './redis-need-bus-subscription.js';

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
  readonly #config: RedisBusConfig;
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
