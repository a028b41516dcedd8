import type { BusEvent, NeedBus } from '../roundtable/need-bus.js';
import type { Clock, Store } from '../store/index.js';

/**
 * Publishes the store's event log on the need bus in seq order, from a cursor kept in a table
 * that writes no events, and a snapshot of the need state every `snapshotEvery` events (and
 * whenever asked, e.g. after a Redis restart lost it). Counts takeovers on the way, for metrics.
 */
export class BusPublisher {
  readonly #store: Store;
  readonly #bus: NeedBus;
  readonly #clock: Clock;
  readonly #snapshotEvery: number;
  #sinceSnapshot = Number.POSITIVE_INFINITY;

  constructor(store: Store, bus: NeedBus, clock: Clock, snapshotEvery: number) {
    this.#store = store;
    this.#bus = bus;
    this.#clock = clock;
    this.#snapshotEvery = snapshotEvery;
  }

  /** The next publish also writes a fresh snapshot. */
  forceSnapshot(): void {
    this.#sinceSnapshot = Number.POSITIVE_INFINITY;
  }

  async publish(): Promise<{ published: number; takeovers: number }> {
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
    if (this.#sinceSnapshot >= this.#snapshotEvery) {
      const state = store.scheduling.needStates(this.#clock.now());
      await this.#bus.publishSnapshot({
        seq: Math.min(state.seq, store.scheduling.cursor('bus')),
        needs: state.needs,
      });
      this.#sinceSnapshot = 0;
    }
    return { published, takeovers };
  }
}
