import { describe, expect, it } from 'vitest';
import { GuardClock } from '../../../src/scheduler/guard-clock.js';
import { ManualClock } from '../../../src/store/index.js';

describe('GuardClock: the guard’s time on a worker’s host', () => {
  it('is the local time until a guard response was seen', () => {
    const local = new ManualClock(1_000_000);
    const clock = new GuardClock(local);
    expect(clock.synced).toBe(false);
    expect(clock.now()).toBe(1_000_000);
  });

  it('takes the offset from the fastest recent exchange, against its midpoint', () => {
    const local = new ManualClock(1_000_000);
    const clock = new GuardClock(local);
    // The guard is 90 s behind this host. A slow exchange (400 ms) puts the guard's reading
    // anywhere in it; a fast one (10 ms) pins it down to 5 ms.
    clock.sample(1_000_000, 1_000_400, 1_000_000 - 90_000 + 350);
    expect(clock.offsetMs).toBe(-90_000 + 150);
    clock.sample(1_001_000, 1_001_010, 1_001_000 - 90_000 + 5);
    expect(clock.offsetMs).toBe(-90_000);
    expect(clock.synced).toBe(true);
    // A later slow one does not move it.
    clock.sample(1_002_000, 1_003_000, 1_002_000 - 90_000 + 900);
    expect(clock.offsetMs).toBe(-90_000);
    local.advance(5000);
    expect(clock.now()).toBe(1_005_000 - 90_000);
  });

  it('forgets exchanges older than the last eight, so a stepped guard clock is followed', () => {
    const t = 1_000_000;
    const clock = new GuardClock(new ManualClock(t));
    clock.sample(t, t + 2, t + 1 + 5000);
    for (let i = 1; i <= 8; i++) clock.sample(t + i * 100, t + i * 100 + 20, t + i * 100 + 10 - 3000);
    expect(clock.offsetMs).toBe(-3000);
  });

  it('ignores a reading that is not a time (or is empty) and an exchange that ends before it starts', () => {
    const clock = new GuardClock(new ManualClock(0));
    clock.sample(0, 10, Number.NaN);
    clock.sample(0, 10, Number('')); // an empty header
    clock.sample(10, 0, 5);
    expect(clock.synced).toBe(false);
    expect(clock.offsetMs).toBe(0);
  });
});
