import { describe, expect, it } from 'vitest';
import { MemoryNeedBus } from '../../src/roundtable/memory-need-bus.js';
import { busEvent, busEvents, needBusContract, Recorder, snapshotAt } from './need-bus-suite.js';

needBusContract('memory', async () => {
  const errors: unknown[] = [];
  const bus = new MemoryNeedBus({ onError: (error) => errors.push(error) });
  return { bus, errors, cleanup: () => bus.close() };
});

describe('MemoryNeedBus', () => {
  it('delivers synchronously, before publish returns', async () => {
    const bus = new MemoryNeedBus();
    const recorder = new Recorder();
    void bus.subscribe(recorder);
    expect(recorder.timeline).toEqual(['start@0']);
    void bus.publish(busEvents(1, 2));
    expect(recorder.timeline).toEqual(['start@0', 1, 2]);
  });

  it('resyncs a subscriber whose position was trimmed from the log once a newer snapshot exists', async () => {
    const bus = new MemoryNeedBus({ maxLog: 10 });
    await bus.publishSnapshot(snapshotAt(2));
    await bus.publish(busEvents(3, 30));
    const late = new Recorder();
    const sub = await bus.subscribe(late);
    // Events 3…20 are gone and the snapshot at 2 cannot fill the hole: nothing past it is delivered.
    expect(late.timeline).toEqual(['start@2']);
    await bus.publish([busEvent(31)]);
    expect(late.timeline).toEqual(['start@2']);
    await bus.publishSnapshot(snapshotAt(25));
    expect(late.timeline).toEqual(['start@2', 'trimmed@25', 26, 27, 28, 29, 30, 31]);
    expect(sub.seq).toBe(31);
  });

  it('keeps one order for every subscriber when a callback publishes', async () => {
    const bus = new MemoryNeedBus();
    const echo = new Recorder();
    let published = false;
    await bus.subscribe({
      onEvents: (events) => {
        echo.onEvents(events);
        if (!published) {
          published = true;
          void bus.publish([busEvent(3)]);
        }
      },
      onResync: (snapshot, reason) => echo.onResync(snapshot, reason),
    });
    const other = new Recorder();
    await bus.subscribe(other);
    await bus.publish(busEvents(1, 2));
    expect(echo.timeline).toEqual(['start@0', 1, 2, 3]);
    expect(other.timeline).toEqual(['start@0', 1, 2, 3]);
  });

  it('keeps at most maxLog events', async () => {
    const bus = new MemoryNeedBus({ maxLog: 3 });
    await bus.publish(busEvents(1, 1000));
    await bus.publishSnapshot(snapshotAt(990));
    const recorder = new Recorder();
    await bus.subscribe(recorder);
    // 991…997 were trimmed (only 998…1000 are kept), so the subscriber waits for a newer snapshot.
    expect(recorder.timeline).toEqual(['start@990']);
    await bus.publishSnapshot(snapshotAt(997));
    expect(recorder.timeline).toEqual(['start@990', 'trimmed@997', 998, 999, 1000]);
  });

  it('rejects a maxLog that is not a positive integer', () => {
    expect(() => new MemoryNeedBus({ maxLog: 0 })).toThrow(/maxLog must be a positive integer/);
  });
});
