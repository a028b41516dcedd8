/** The source of time for store, protocol and scheduler logic, in milliseconds since the epoch. */
export interface Clock {
  now(): number;
}

export const systemClock: Clock = { now: () => Date.now() };

/** Timers as a port, so a simulator can drive loops (supervisor, takeover loop) on virtual time. */
export interface Timers {
  /** Calls `fn` once after `ms` milliseconds, unless cancelled first. */
  setTimeout(fn: () => void, ms: number): { cancel(): void };
}

/** Node's timers. */
export const realTimers: Timers = {
  setTimeout(fn, ms) {
    const handle = setTimeout(fn, ms);
    return { cancel: () => clearTimeout(handle) };
  },
};

/** A clock that moves only when told to: tests and the simulator run on it. */
export class ManualClock implements Clock {
  #now: number;

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start;
  }

  now(): number {
    return this.#now;
  }

  advance(ms: number): number {
    if (ms < 0) throw new RangeError(`ManualClock cannot go back (${ms} ms)`);
    this.#now += ms;
    return this.#now;
  }

  set(ms: number): void {
    if (ms < this.#now) throw new RangeError(`ManualClock cannot go back from ${this.#now} to ${ms}`);
    this.#now = ms;
  }
}
