import { hash32 } from '../../roundtable/protocol.js';
import type { Prng } from '../../store/index.js';

/**
 * Faults injected into a run. Every value is a probability in [0, 1]; what it is a probability
 * *of* differs per fault and is documented on each field (and in `FAULT_HELP`).
 */
export interface SimFaults {
  /** Per session: the agent running it dies during the session (its process stops, all at once). */
  readonly crash: number;
  /**
   * Per agent seat: its process dies once, during its n-th session, n uniform in 1 … ⌈needs /
   * agents⌉ (its share of the work), and comes back as a new agent.
   */
  readonly agent_crash: number;
  /** Per session: one model call hangs until the call timeout; heartbeats go on without progress. */
  readonly hang: number;
  /** Per session: the model answers 2–100× slower than usual (a call can outlast the lease). */
  readonly slow: number;
  /** Per model call attempt, through the scripted provider's seeded failure rates. */
  readonly server: number;
  readonly rate_limit: number;
  readonly timeout: number;
  readonly malformed: number;
  /** Per bus event and subscriber: the event never reaches that subscriber. */
  readonly bus_loss: number;
  /** Per bus event and subscriber: the event is delivered twice. */
  readonly bus_dup: number;
  /** Per bus event and subscriber: the event is held back and arrives after later ones. */
  readonly bus_reorder: number;
  /** Per fault period (2 s of virtual time): the supervisor process dies and restarts. */
  readonly supervisor_restart: number;
  /** Per fault period and worker: the worker process is restarted (drained, then started again). */
  readonly worker_restart: number;
  /**
   * Per fault period and identity: its model becomes unavailable (every call answered 429) for
   * 10–60 s, so sessions end as outages and the guard holds the identity.
   */
  readonly outage: number;
}

export const NO_FAULTS: SimFaults = Object.freeze({
  crash: 0,
  agent_crash: 0,
  hang: 0,
  slow: 0,
  server: 0,
  rate_limit: 0,
  timeout: 0,
  malformed: 0,
  bus_loss: 0,
  bus_dup: 0,
  bus_reorder: 0,
  supervisor_restart: 0,
  worker_restart: 0,
  outage: 0,
});

/** One line per fault, for `mlos sim --help` and the README. */
export const FAULT_HELP: readonly (readonly [keyof SimFaults | 'model', string])[] = [
  ['crash', 'per session: the agent process dies mid-session and comes back as a new agent 20 s later'],
  [
    'agent_crash',
    'per agent: dies once, in one of its first needs/agents sessions, back as a new agent 20 s later',
  ],
  ['hang', 'per session: one model call hangs until the 120 s call timeout (heartbeats, no progress)'],
  ['slow', 'per session: the model answers 2-100x slower (a call can outlast the 30 s lease)'],
  ['server', 'per model call: a 500 answer (retried); alias model'],
  ['rate_limit', 'per model call: a 429 answer with a retry-after'],
  ['timeout', 'per model call: no answer within the call timeout'],
  ['malformed', 'per model call: a tool call with invalid JSON arguments'],
  ['bus_loss', 'per bus event and subscriber: lost on the way'],
  ['bus_dup', 'per bus event and subscriber: delivered twice'],
  ['bus_reorder', 'per bus event and subscriber: delayed behind later events'],
  ['supervisor_restart', 'per 2 s of virtual time: the supervisor dies; a new one reopens the database'],
  ['worker_restart', 'per 2 s and worker: the worker drains (5 s), stops and starts as a new agent'],
  [
    'outage',
    'per 2 s and identity: its model answers every call 429 for 10-60 s (sessions end as outages, the identity is held)',
  ],
];

/** How long a model outage lasts (uniform in this range), in ms. */
export const OUTAGE_MS = { min: 10_000, max: 60_000 } as const;

/** What a model in an outage asks for in its 429s' retry-after, in ms. */
export const OUTAGE_RETRY_AFTER_MS = 10_000;

/**
 * The end of the model outage of `identity` under way at `at` (virtual clock ms), or null.
 * Outages start at fault periods, drawn per (identity, period) by keyed dice, so both schedulers
 * meet the same ones; of those that cover `at`, the one that ends last counts.
 */
export function outageUntil(dice: FaultDice, rate: number, identity: string, at: number): number | null {
  if (!(rate > 0)) return null;
  let until: number | null = null;
  const last = Math.floor(at / FAULT_PERIOD_MS);
  const first = Math.floor((at - OUTAGE_MS.max) / FAULT_PERIOD_MS);
  for (let n = first; n <= last; n++) {
    if (dice.at(`outage ${identity} ${n}`) >= rate) continue;
    const start = n * FAULT_PERIOD_MS;
    const end =
      start +
      OUTAGE_MS.min +
      Math.floor(dice.at(`outage-for ${identity} ${n}`) * (OUTAGE_MS.max - OUTAGE_MS.min));
    if (start <= at && end > at) until = Math.max(until ?? 0, end);
  }
  return until;
}

/** The virtual time between two draws of the restart faults, in ms. */
export const FAULT_PERIOD_MS = 2_000;

/** Parses `crash=0.1,hang=0.05,bus_loss=0.02` (`model` is an alias of `server`). */
export function parseFaults(text: string | undefined): SimFaults {
  const faults: Record<string, number> = { ...NO_FAULTS };
  if (!text) return faults as unknown as SimFaults;
  for (const part of text.split(',').filter((p) => p.trim() !== '')) {
    const [rawKey, rawValue] = part.split('=');
    const key = rawKey?.trim() === 'model' ? 'server' : (rawKey?.trim() ?? '');
    if (!(key in NO_FAULTS)) {
      throw new Error(`unknown fault "${rawKey}": use ${[...Object.keys(NO_FAULTS), 'model'].join(', ')}`);
    }
    const value = Number(rawValue);
    if (rawValue === undefined || !Number.isFinite(value) || value < 0 || value > 1)
      throw new Error(`fault ${key}: give a probability in [0, 1], e.g. ${key}=0.05`);
    faults[key] = value;
  }
  const f = faults as unknown as SimFaults;
  if (f.server + f.rate_limit + f.timeout + f.malformed > 1)
    throw new Error('the model fault rates (server, rate_limit, timeout, malformed) add up to more than 1');
  if (f.bus_loss + f.bus_dup + f.bus_reorder > 1)
    throw new Error('the bus fault rates (bus_loss, bus_dup, bus_reorder) add up to more than 1');
  return f;
}

/** The faults of a run written back as `parseFaults` reads them (only the non-zero ones). */
export function formatFaults(faults: SimFaults): string {
  return Object.entries(faults)
    .filter(([, v]) => v > 0)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

/**
 * Seeded draws for the faults: never the store's PRNG, so a fault does not shift the ids. Two
 * kinds: a sequence (`uniform`, `chance`, `between`), for the bus faults (per delivery; the bus
 * has subscribers only under the round table); and keyed draws (`at`), a pure function of (seed,
 * key), for everything the two schedulers must meet alike: a session's faults and model errors
 * (keyed by its need and its rank among the need's sessions), agent crashes (by seat) and
 * restarts (by fault period and seat).
 */
export class FaultDice {
  readonly #prng: Prng;
  readonly #seed: number;

  constructor(prng: Prng, seed = 0) {
    this.#prng = prng;
    this.#seed = seed;
  }

  /** A uniform number in [0, 1) that depends only on the seed and `key`. */
  at(key: string): number {
    return hash32(key, 0x811c9dc5 ^ this.#seed) / 0x1_0000_0000;
  }

  /** A uniform number in [0, 1). */
  uniform(): number {
    return this.#prng.nextUint32() / 0x1_0000_0000;
  }

  /** True with probability `p` (and no draw at all when p is 0, so unused faults shift nothing). */
  chance(p: number): boolean {
    return p > 0 && this.uniform() < p;
  }

  /** A whole number in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + Math.floor(this.uniform() * (hi - lo + 1));
  }
}
