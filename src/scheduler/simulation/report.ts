import type { Store } from '../../store/index.js';
import type { SimFaults } from './faults.js';
import type { BusFaultStats } from './faulty-bus.js';
import type { Violation } from './invariants.js';
import type { SimScheduler } from './sim-agents.js';

/** Who worked on the needs: distinct owners, attempts, and the handoffs between owners. */
export interface Ownership {
  /**
   * Distinct agents that started a task on a need (over needs with at least one). Every crash or
   * restart brings the seat back as a new agent, and every lost attempt is retried, so faults add
   * owners under any scheduler: with a crash rate p per session, 1 / (1 − p) sessions per need.
   */
  readonly mean: number;
  readonly max: number;
  /**
   * The same, less the new owners a fault forced: a handoff to a new agent after an attempt that
   * did not succeed (its agent crashed, hung, was too slow for its lease, failed, was restarted).
   * What is left counts owners added while the previous owner was doing fine: thrash.
   */
  readonly netOfFaults: number;
  /** Started tasks per need. */
  readonly attemptsPerNeed: number;
  /** Handoffs to a new owner after an attempt that did not succeed, in all. */
  readonly forcedHandoffs: number;
  /** Handoffs to a new owner after an attempt that succeeded (the need stayed open). */
  readonly unforcedHandoffs: number;
}

/** From the expiry of a lost attempt's lease to the start of the next attempt on the need. */
export interface Recovery {
  readonly count: number;
  readonly meanMs: number;
  readonly maxMs: number;
}

export interface SimReport {
  readonly seed: number;
  readonly scheduler: SimScheduler;
  readonly agents: number;
  readonly needs: number;
  readonly faults: SimFaults;
  /** Virtual ms from the start until every need was resolved (or until the run gave up). */
  readonly drainMs: number;
  readonly drained: boolean;
  readonly resolved: number;
  readonly ownersPerNeed: Ownership;
  readonly recovery: Recovery;
  /** Sessions started by the workers' round-table loops (claims that won). */
  readonly takeovers: number;
  /** Tasks the central scheduler dispatched (0 for the round table). */
  readonly dispatches: number;
  /** Sessions stopped because the guard refused one of their writes: their lease had been lost. */
  readonly refusedStaleWrites: number;
  /** Needs resolved more than once. */
  readonly duplicateEffects: number;
  readonly tokens: number;
  readonly sessions: number;
  readonly crashes: number;
  readonly hangs: number;
  readonly slowSessions: number;
  readonly supervisorRestarts: number;
  readonly workerRestarts: number;
  /** Model calls answered 429 by an outage (the `outage` fault). */
  readonly outageCalls: number;
  /** Holds of identities whose model was unavailable (`identity.held` events). */
  readonly holds: number;
  /** What the faulty bus did (absent without bus faults). */
  readonly bus?: BusFaultStats;
  /** Needs escalated as orphaned during the run (unmet past the escalation time). */
  readonly orphanings: number;
  /** Events appended (and checked) in the run. */
  readonly events: number;
  /** The hash of the last event: two runs with the same head hash wrote the same history. */
  readonly headHash: string;
  /** Timer callbacks fired (the driver's steps). */
  readonly steps: number;
  readonly violations: readonly Violation[];
  /** The last events of the trace, when an invariant broke. */
  readonly tail?: readonly string[];
}

/**
 * Ownership and recovery from the tasks table: started tasks per need, in the order they started.
 * A lost attempt's lease expired `leaseMs` after its last progress (or its start).
 */
export function ownership(
  store: Store,
  needIds: readonly string[],
  leaseMs: number,
): { ownership: Ownership; recovery: Recovery } {
  let recovered = 0;
  let recoverySum = 0;
  let recoveryMax = 0;
  let owners = 0;
  let net = 0;
  let max = 0;
  let owned = 0;
  let attempts = 0;
  let forced = 0;
  let unforced = 0;
  for (const id of needIds) {
    const started = store.tasks
      .forNeed(id)
      .filter((t) => t.startedAt !== null)
      .sort((a, b) => a.startedAt! - b.startedAt! || a.attempt - b.attempt);
    if (started.length === 0) continue;
    owned++;
    attempts += started.length;
    const seen = new Set<string>();
    let forcedHere = 0;
    for (let i = 0; i < started.length; i++) {
      const task = started[i]!;
      const next = started[i + 1];
      if (task.status === 'lost' && next) {
        const delay = Math.max(
          0,
          next.startedAt! - (Math.max(task.startedAt!, task.progressAt ?? 0) + leaseMs),
        );
        recovered++;
        recoverySum += delay;
        recoveryMax = Math.max(recoveryMax, delay);
      }
      const agent = started[i]!.agentId ?? started[i]!.identity;
      if (seen.has(agent)) continue;
      seen.add(agent);
      const previous = started[i - 1];
      if (!previous) continue;
      if (previous.status === 'succeeded') unforced++;
      else {
        forced++;
        forcedHere++;
      }
    }
    owners += seen.size;
    net += seen.size - forcedHere;
    max = Math.max(max, seen.size);
  }
  return {
    ownership: {
      mean: owned ? round(owners / owned) : 0,
      max,
      netOfFaults: owned ? round(net / owned) : 0,
      attemptsPerNeed: owned ? round(attempts / owned) : 0,
      forcedHandoffs: forced,
      unforcedHandoffs: unforced,
    },
    recovery: {
      count: recovered,
      meanMs: recovered ? Math.round(recoverySum / recovered) : 0,
      maxMs: recoveryMax,
    },
  };
}

export function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
