import type { Sleep } from '../../agents/retry.js';
import { ManualClock, type Timers } from '../../store/index.js';
import { sleepOn } from './epoch.js';

interface Pending {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * Virtual time for the simulator: a ManualClock, and Timers (and a Sleep built on them) that queue
 * callbacks by due time instead of arming Node timers. Time moves only in `fireNext`, and only to
 * the next due callback; callbacks due at the same time run in the order they were armed.
 *
 * `settle()` drains the work pending in the process before time may move: it yields to the event
 * loop (`await new Promise(setImmediate)`, which first runs every queued microtask, then lets any
 * immediate scheduled by the real components run) until `quietRounds` rounds in a row changed
 * nothing observable (`progress()`: the armed-callback counter plus what the caller adds, e.g. the
 * event log's head), at most `maxRounds` rounds. Everything here is promise chains without real I/O
 * (in-memory SQLite, in-memory MCP transport, in-memory queue and bus), so one round normally drains
 * all of it; the second quiet round is a margin for work that hops through an immediate.
 */
export class VirtualTime {
  readonly clock: ManualClock;
  readonly timers: Timers;
  readonly sleep: Sleep;
  readonly #queue: Pending[] = [];
  #seq = 0;
  #fired = 0;
  readonly #progress: () => number;

  constructor(start: number, progress: () => number = () => 0) {
    this.clock = new ManualClock(start);
    this.#progress = progress;
    this.timers = {
      setTimeout: (fn, ms) => {
        const entry: Pending = {
          due: this.clock.now() + Math.max(0, ms),
          seq: this.#seq++,
          fn,
          cancelled: false,
        };
        this.#insert(entry);
        return {
          cancel: () => {
            entry.cancelled = true;
          },
        };
      },
    };
    this.sleep = sleepOn(this.timers);
  }

  /** Callbacks armed and not cancelled. */
  get pending(): number {
    let n = 0;
    for (const e of this.#queue) if (!e.cancelled) n++;
    return n;
  }

  /** Callbacks fired so far. */
  get fired(): number {
    return this.#fired;
  }

  /** Drains pending promises and immediates (see the class comment). Returns the rounds it took. */
  async settle(quietRounds = 2, maxRounds = 1000): Promise<number> {
    let quiet = 0;
    let rounds = 0;
    let last = this.#fingerprint();
    while (quiet < quietRounds && rounds < maxRounds) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      rounds++;
      const now = this.#fingerprint();
      quiet = now === last ? quiet + 1 : 0;
      last = now;
    }
    return rounds;
  }

  /**
   * Advances the clock to the earliest armed callback and runs it (then the caller settles).
   * Returns false when nothing is armed, or when the next one is later than `until`.
   */
  fireNext(until = Number.POSITIVE_INFINITY): boolean {
    for (;;) {
      const next = this.#queue.shift();
      if (!next) return false;
      if (next.cancelled) continue;
      if (next.due > until) {
        this.#queue.unshift(next);
        return false;
      }
      if (next.due > this.clock.now()) this.clock.set(next.due);
      this.#fired++;
      next.fn();
      return true;
    }
  }

  #fingerprint(): string {
    return `${this.#seq}/${this.#fired}/${this.#progress()}`;
  }

  /** Keeps the queue sorted by (due, seq); a binary search finds the place. */
  #insert(entry: Pending): void {
    const q = this.#queue;
    let lo = 0;
    let hi = q.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const m = q[mid]!;
      if (m.due < entry.due || (m.due === entry.due && m.seq < entry.seq)) lo = mid + 1;
      else hi = mid;
    }
    q.splice(lo, 0, entry);
  }
}
