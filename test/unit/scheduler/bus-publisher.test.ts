/**
 * The bus publisher's snapshots: one every `snapshotEvery` events while the open graph is small;
 * after a snapshot that held more needs than that, the next waits for as many events as it held
 * (a snapshot costs as much as it holds), never more than four times `snapshotEvery`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import { BusPublisher } from '../../../src/scheduler/bus-publisher.js';
import { createSeededPrng, ManualClock, Store } from '../../../src/store/index.js';

describe('bus publisher snapshots', () => {
  let clock: ManualClock;
  let store: Store;
  let bus: MemoryNeedBus;
  let publisher: BusPublisher;
  const snapshots: number[] = [];

  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
    store = Store.open(':memory:', { clock, prng: createSeededPrng(3) });
    bus = new MemoryNeedBus();
    snapshots.length = 0;
    const publish = bus.publishSnapshot.bind(bus);
    bus.publishSnapshot = async (snapshot) => {
      snapshots.push(snapshot.seq);
      return publish(snapshot);
    };
    publisher = new BusPublisher(store, bus, clock, 10);
  });
  afterEach(async () => {
    await bus.close();
    store.close();
  });

  /** Writes `n` events (one need each) and publishes them. */
  async function events(n: number): Promise<void> {
    for (let i = 0; i < n; i++) store.needs.create({ title: `n${store.events.headSeq()}`, tags: ['kernel'] });
    await publisher.publish();
  }

  /** Writes `n` events about one need (its unmet mark set and cleared in turn) and publishes them. */
  async function flips(n: number): Promise<void> {
    const id = store.needs.list()[0]!.id;
    for (let i = 0; i < n; i++) {
      store.needs.setFlags(id, {
        unmetSince: store.needs.require(id).unmetSince === null ? clock.now() : null,
      });
    }
    await publisher.publish();
  }

  it('snapshots every snapshotEvery events while the graph holds fewer open needs', async () => {
    await events(3); // the first publication always snapshots
    await flips(9);
    await flips(1);
    await flips(10);
    expect(snapshots).toEqual([3, 13, 23]);
  });

  it('waits for as many events as the last snapshot held needs, at most four times snapshotEvery', async () => {
    await events(25); // 25 open needs in the first snapshot
    await events(24);
    expect(snapshots).toEqual([25]);
    await events(1);
    expect(snapshots).toEqual([25, 50]); // 50 needs now: the next waits for 40 events, not 50
    await events(39);
    expect(snapshots).toEqual([25, 50]);
    await events(1);
    expect(snapshots).toEqual([25, 50, 90]);
    // Forced (a Redis restart lost it): at once, whatever the count.
    publisher.forceSnapshot();
    await events(1);
    expect(snapshots).toEqual([25, 50, 90, 91]);
  });
});
