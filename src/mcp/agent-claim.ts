import type { Identity } from '../kernel/identity/schema.js';
import { claimEligibility } from '../roundtable/protocol.js';
import { type Claim, holdOf, NotClaimableError, type Store, utcDay } from '../store/index.js';
import { inView } from './principal.js';
import { GuardRefusal } from './result.js';

/**
 * An agent's claim of a need through the round table, in one transaction: the need must be in the
 * identity's view, the identity pinned without drift and not paused, and the protocol must find
 * the claim eligible on the store's clock (the guard's); then the store claims it with
 * `roundTable: true`, which starts the need's takeover cooldown. Used by `claim_need` for agents
 * and by the embedded worker's takeover loop, so both apply the same rules.
 *
 * Throws `GuardRefusal` (out of view, drifted, paused) or `NotClaimableError` (held, not unmet,
 * not eligible yet, budget-blocked, with the time to ask again when known): refusals, not bugs.
 */
export function claimAsAgent(
  store: Store,
  options: {
    readonly identity: Identity;
    readonly needId: string;
    readonly agentId?: string;
    readonly leaseMs: number;
    /** The run whose sessions would spend the tokens: its budget counts too, when it has one. */
    readonly runId?: string | null;
    /** See GuardDeps.maxAttempts: a need that failed this many attempts is not claimed. */
    readonly maxAttempts?: number | null;
    /** See GuardDeps.retryDelayMs: a need whose last attempt failed is not claimed before its retry. */
    readonly retryDelayMs?: number;
  },
): Claim {
  const { identity, needId, agentId } = options;
  return store.transaction(() => {
    const need = store.needs.require(needId);
    if (!inView(identity, need)) {
      throw new GuardRefusal(
        `need ${needId} is outside the scope of ${identity.name}; claim needs whose tags meet ${[
          ...identity.scope.primary,
          ...identity.scope.peripheral,
        ].join(', ')}`,
      );
    }
    assertRunnable(store, identity.name);
    const now = store.clock.now();
    const { failures, lastFinishedAt } = store.scheduling.failures(needId);
    if (options.maxAttempts != null && failures >= options.maxAttempts) {
      // Dead-lettered: graduation no longer retries it, and neither may the round table.
      throw new NotClaimableError(
        `need ${needId} failed ${failures} attempts (the limit is ${options.maxAttempts}): it is escalated and waits for an operator, who can retry it (mlos need retry ${needId}), claim it (claim_need as operator) or drop it`,
        now + DEAD_LETTER_RECHECK_MS,
      );
    }
    const retry = retryAt(failures, lastFinishedAt, options.retryDelayMs ?? 0);
    if (retry > now) {
      // The same wait graduation keeps: a takeover must not retry a failing need sooner.
      throw new NotClaimableError(
        `need ${needId} failed its last ${failures === 1 ? 'attempt' : `${failures} attempts`}: it is tried again after a delay, at ${new Date(retry).toISOString()} (in ${((retry - now) / 1000).toFixed(1)}s)`,
        retry,
      );
    }
    const blocked = budgetBlock(store, identity, now, options.runId ?? null);
    if (blocked) {
      // Graduation gives such an identity no task; a takeover must not either: its session would
      // be refused its first model call and fail, burning an attempt of the need.
      throw new NotClaimableError(
        `${blocked.message}; leave the need to another identity`,
        now + BUDGET_RECHECK_MS,
      );
    }
    const state = store.scheduling.needState(needId, now)!;
    const verdict = claimEligibility(identity, state, now, agentId);
    if (!verdict.eligible) {
      // Held or not unmet: the store words those (which task, which dependency) best.
      if (verdict.reason === 'held' || verdict.reason === 'not_unmet') store.claims.assertClaimable(needId);
      throw new NotClaimableError(verdict.message, verdict.eligibleAt);
    }
    return store.claims.claim(needId, {
      identity: identity.name,
      leaseMs: options.leaseMs,
      ...(agentId && { agentId }),
      roundTable: true,
    });
  });
}

/** The longest wait before a failed need's next attempt. */
export const MAX_RETRY_DELAY_MS = 10 * 60_000;

/**
 * How long an identity is held after its model was unavailable, for the `holds`-th consecutive
 * hold: `baseMs` (the retry delay) doubled per hold, at most MAX_RETRY_DELAY_MS; 0 holds nothing.
 */
export function holdBackoff(holds: number, baseMs: number): number {
  if (baseMs <= 0) return 0;
  return Math.min(baseMs * 2 ** Math.min(Math.max(holds - 1, 0), 30), MAX_RETRY_DELAY_MS);
}

/**
 * When a need whose last attempts failed may be tried again: `baseMs` after its latest task
 * ended, doubled per failure since its last success, at most MAX_RETRY_DELAY_MS. Minus infinity
 * when nothing failed or there is no delay. Graduation and agents' claims keep the same wait, so
 * a model outage or a flaky tool costs a need an attempt per delay, not every attempt at once.
 */
export function retryAt(failures: number, lastFinishedAt: number | null, baseMs: number): number {
  if (baseMs <= 0 || failures === 0 || lastFinishedAt === null) return Number.NEGATIVE_INFINITY;
  return lastFinishedAt + Math.min(baseMs * 2 ** (failures - 1), MAX_RETRY_DELAY_MS);
}

/** How long a takeover loop waits before asking again about a dead-lettered need. */
const DEAD_LETTER_RECHECK_MS = 10 * 60_000;

/** How long a budget-blocked identity's takeover loop waits before asking again (a raised budget counts then). */
const BUDGET_RECHECK_MS = 60_000;

/**
 * Whether `identity`'s budget left cannot cover one more task (`budgets.per_task`): its budget of
 * today (UTC), or the token budget of the run `runId` when it has one. A task started now could be
 * cut short, and failing it would burn an attempt of its need. Then the figures and a sentence
 * saying so; else null. Graduation and claims apply the same test.
 */
export function budgetBlock(
  store: Store,
  identity: Identity,
  now: number,
  runId: string | null = null,
): BudgetBlock | null {
  const { perDay, perTask } = identity.budgets;
  const day = utcDay(now);
  const used = store.budgets.used('day', day, identity.name);
  if (perDay - used < perTask) {
    return {
      scope: 'day',
      key: day,
      message: `identity ${identity.name} is budget-blocked until the next UTC day: ${used} of its ${perDay} tokens for ${day} are used or reserved, less than one task (${perTask}) is left`,
      fix: 'raise budgets.per_day to go on today',
    };
  }
  const limit = runId === null ? null : store.budgets.runLimit(runId);
  if (runId !== null && limit !== null) {
    const spent = store.budgets.used('run', runId);
    if (limit - spent < perTask) {
      return {
        scope: 'run',
        key: runId,
        message: `identity ${identity.name} is budget-blocked for the rest of this run: ${spent} of the run's ${limit} tokens (--run-tokens) are used or reserved, less than one task of ${identity.name} (${perTask}) is left`,
        fix: 'start a run with a larger --run-tokens, or lower budgets.per_task',
      };
    }
  }
  return null;
}

export interface BudgetBlock {
  /** The budget that blocks: today's of the identity, or the run's. */
  readonly scope: 'day' | 'run';
  /** The day or the run id: a block is warned about once per key. */
  readonly key: string;
  readonly message: string;
  /** What the operator can do about it. */
  readonly fix: string;
}

/** Refuses new work for an identity that drifted from its pin, is paused or is held. */
export function assertRunnable(store: Store, name: string): void {
  const pin = store.identities.require(name);
  if (pin.driftHash)
    throw new GuardRefusal(
      `identity ${name} has drifted from its pin: no new work until the operator accepts it`,
    );
  if (pin.paused)
    throw new GuardRefusal(`identity ${name} is paused by the operator: no new work until resumed`);
  const hold = holdOf(pin, store.clock.now());
  // With when to try again (a round-table loop backs off until then instead of every second).
  if (hold)
    throw new NotClaimableError(
      `identity ${name} is held until ${new Date(hold.until).toISOString()}: its model was unavailable (${hold.reason}); no new work until then (the operator can end the hold with \`mlos identity resume ${name}\`)`,
      hold.until,
    );
}
