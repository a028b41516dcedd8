import type { BusEvent, NeedBus } from '../roundtable/need-bus.js';
import type { Clock, Store } from '../store/index.js';
import type { Timers } from './logger.js';

export interface PublishResult {
  readonly published: number;
  readonly takeovers: number;
}

/**
 * Publishes the store's event log on the need bus in seq order, from a cursor kept in a table
 * that writes no events, and a snapshot of the need state every `snapshotEvery` events, or as
 * many as the last one held needs, up to four times that (and whenever asked, e.g. after a Redis
 * restart lost it). Counts takeovers on the way, for metrics.
 * One publication runs at a time: a call made while one runs waits for it, then publishes what
 * is left. `publishSoon` defers one to a moment later; what it published is collected by
 * `takeDeferred`.
 */
export class BusPublisher {
  readonly #store: Store;
  readonly #bus: NeedBus;
  readonly #clock: Clock;
  readonly #snapshotEvery: number;
  #sinceSnapshot = Number.POSITIVE_INFINITY;
  /** Events before the next snapshot (see #publishNow). */
  #snapshotDue: number;
  /** The publication in flight: one at a time. */
  #running: Promise<PublishResult> | undefined;
  #soon: { cancel(): void } | undefined;
  /** What deferred publications published, until `takeDeferred`. */
  #deferred = { published: 0, takeovers: 0 };

  constructor(store: Store, bus: NeedBus, clock: Clock, snapshotEvery: number) {
    this.#store = store;
    this.#bus = bus;
    this.#clock = clock;
    this.#snapshotEvery = snapshotEvery;
    this.#snapshotDue = snapshotEvery;
  }

  /** The next publish also writes a fresh snapshot. */
  forceSnapshot(): void {
    this.#sinceSnapshot = Number.POSITIVE_INFINITY;
  }

  /** Publishes every event past the cursor (after the publication in flight, if any). */
  async publish(): Promise<PublishResult> {
    while (this.#running) await this.#running.catch(() => undefined);
    const run = this.#publishNow();
    this.#running = run;
    try {
      return await run;
    } finally {
      if (this.#running === run) this.#running = undefined;
    }
  }

  /**
   * Publishes `delayMs` from now, unless one is already scheduled; `onError` hears a failure (the
   * cursor stays, so the next publication sends the same events).
   */
  publishSoon(delayMs: number, timers: Timers, onError: (error: unknown) => void): void {
    if (this.#soon) return;
    this.#soon = timers.setTimeout(() => {
      this.#soon = undefined;
      this.publish().then((r) => {
        this.#deferred.published += r.published;
        this.#deferred.takeovers += r.takeovers;
      }, onError);
    }, delayMs);
  }

  /** Drops the scheduled publication, if any (the next `publish` sends its events). */
  cancelSoon(): void {
    this.#soon?.cancel();
    this.#soon = undefined;
  }

  /** What deferred publications published since the last call. */
  takeDeferred(): PublishResult {
    const deferred = this.#deferred;
    this.#deferred = { published: 0, takeovers: 0 };
    return deferred;
  }

  async #publishNow(): Promise<PublishResult> {
    const store = this.#store;
    let published = 0;
    let takeovers = 0;
    for (;;) {
      const events = store.events.since(store.scheduling.cursor('bus'), 1000);
      if (events.length === 0) break;
      const batch: BusEvent[] = events.map((e) => {
        const payload = e.payload as { takeover?: unknown; roundTable?: unknown } | null;
        if (e.kind === 'need.claimed' && (payload?.takeover === true || payload?.roundTable === true))
          takeovers++;
        return { seq: e.seq, at: e.at, kind: e.kind, entity: e.entity, needId: e.needId };
      });
      await this.#bus.publish(batch);
      store.scheduling.setCursor('bus', batch[batch.length - 1]!.seq);
      published += batch.length;
      this.#sinceSnapshot += batch.length;
    }
    if (this.#sinceSnapshot >= this.#snapshotDue) {
      const state = store.scheduling.needStates(this.#clock.now());
      await this.#bus.publishSnapshot({
        seq: Math.min(state.seq, store.scheduling.cursor('bus')),
        needs: state.needs,
      });
      this.#sinceSnapshot = 0;
      // A snapshot costs as much as it holds needs (6,000 open needs: ~40 ms, and a value that
      // size in Redis): the next one waits for at least as many events, so its cost per event
      // stays flat however deep the backlog, and for at most four times `snapshotEvery`, far
      // inside what the streams keep for a subscriber that resyncs.
      this.#snapshotDue = Math.min(
        Math.max(this.#snapshotEvery, state.needs.length),
        4 * this.#snapshotEvery,
      );
    }
    return { published, takeovers };
  }
}
