import type { Clock } from '../store/index.js';

/**
 * This host's time, never stepped: epoch ms at the process's start plus the monotonic time since.
 * A correction of this host's wall clock (NTP) then moves no reading of the guard's time.
 */
export const monotonicClock: Clock = { now: () => performance.timeOrigin + performance.now() };

/** How many recent exchanges the offset is chosen from. */
const SAMPLES = 8;

/**
 * The guard's time as a worker on another host sees it. Lease ends, token expiries, eligibility
 * times and unmet marks all come from the guard's clock; comparing them with this host's clock
 * would be off by the hosts' skew (a worker ahead by a minute would think every lease nearly
 * over). Each guard response carries the guard's time; the offset is taken NTP-style from the
 * fastest of the recent exchanges (the guard's time minus the exchange's midpoint, good to half
 * its round trip), so one slow response does not move it.
 */
export class GuardClock implements Clock {
  readonly #local: Clock;
  readonly #samples: { readonly rttMs: number; readonly offsetMs: number }[] = [];
  #offsetMs = 0;

  constructor(local: Clock = monotonicClock) {
    this.#local = local;
  }

  now(): number {
    return this.#local.now() + this.#offsetMs;
  }

  /** This host's clock, for timing an exchange. */
  local(): number {
    return this.#local.now();
  }

  /** Guard time minus local time, in ms (0 until a guard response was seen). */
  get offsetMs(): number {
    return this.#offsetMs;
  }

  /** Whether any guard response has been seen. */
  get synced(): boolean {
    return this.#samples.length > 0;
  }

  /** One exchange: sent and received on this host's clock, `guardNow` read from the response. */
  sample(sentAt: number, receivedAt: number, guardNow: number): void {
    if (!Number.isFinite(guardNow) || guardNow <= 0 || receivedAt < sentAt) return;
    this.#samples.push({ rttMs: receivedAt - sentAt, offsetMs: guardNow - (sentAt + receivedAt) / 2 });
    if (this.#samples.length > SAMPLES) this.#samples.shift();
    let best = this.#samples[0]!;
    for (const s of this.#samples) if (s.rttMs < best.rttMs) best = s;
    this.#offsetMs = Math.round(best.offsetMs);
  }
}
