import type { ManualClock, Timers } from '../../src/store/index.js';

interface PendingTimer {
  readonly at: number;
  readonly fn: () => void;
  live: boolean;
}

/** Timers that fire only when the test advances the clock, in time order. */
export class ManualTimers implements Timers {
  readonly #clock: ManualClock;
  #pending: PendingTimer[] = [];

  constructor(clock: ManualClock) {
    this.#clock = clock;
  }

  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const timer = { at: this.#clock.now() + ms, fn, live: true };
    this.#pending.push(timer);
    return {
      cancel: () => {
        timer.live = false;
      },
    };
  }

  /** Moves the clock by `ms`, firing every timer due on the way (and settling after each). */
  async advance(ms: number): Promise<void> {
    const target = this.#clock.now() + ms;
    for (;;) {
      this.#pending = this.#pending.filter((t) => t.live);
      let next: PendingTimer | undefined;
      for (const t of this.#pending) if (t.at <= target && (!next || t.at < next.at)) next = t;
      if (!next) break;
      if (next.at > this.#clock.now()) this.#clock.set(next.at);
      next.live = false;
      next.fn();
      await settle();
    }
    this.#clock.set(target);
    await settle();
  }
}

/** Lets every pending callback and promise run. */
export const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
