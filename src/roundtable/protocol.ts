import type { Identity } from '../kernel/identity/schema.js';
import type { NeedState } from './need-bus.js';

/**
 * The round-table protocol (DESIGN §6): which agent may take over which need, and when. Pure
 * functions of (identity, need state, now), shared by the agents' takeover loops and by the guard,
 * which applies them to every agent's `claim_need` with its own clock. No I/O, no clock, no
 * randomness: the same inputs always give the same answer.
 *
 * The timeline of an unmet need, from its origin `unmetSince` (when the supervisor marked it
 * unmet), with G, P, C, E from the claimant's identity (`takeover.grace`, `.peripheral_delay`,
 * `.cooldown`, `.escalation`):
 *
 * - origin + G + j: agents whose `scope.primary` meets the need's tags may claim it;
 * - origin + G + P + j: agents whose `scope.peripheral` meets them (primary-scope ones go first);
 * - origin + E: the supervisor escalates it (see `escalation`);
 * - never before the last takeover + C (the cooldown), and never while a lease is live.
 *
 * j is a deterministic jitter in whole ms from a hash of (agent id, or identity name without one,
 * need id): it spreads the claimants of one class over [0, JITTER_MAX_MS), and within the primary
 * class over [0, min(JITTER_MAX_MS, P)), so that with equal takeover settings every primary-scope
 * claimant comes before every peripheral one.
 *
 * A need the supervisor has not marked (`unmetSince` null: brand-new, or released a moment ago) is
 * an ordinary graduation candidate: a primary-scope agent may claim it at once, which is what
 * graduation would do (route it to an identity whose primary scope meets its tags); the grace
 * protects a need's normal path (its graduated task, its retry) and starts at the mark. The
 * supervisor marks every unmet need in the tick that first sees it, before it graduates and
 * publishes, so a watcher of the bus normally sees needs already marked. Peripheral-scope agents
 * wait for the mark. An orphaned need (escalated) waives the class delays: any agent in whose view
 * it is may take it, after its jitter.
 */

/** The takeover section of an identity, in ms. */
export type TakeoverParams = Identity['takeover'];

export type ScopeClass = 'primary' | 'peripheral';

/** The upper bound (exclusive) of the claim jitter, in ms. */
export const JITTER_MAX_MS = 250;

export type IneligibleReason =
  /** The need's tags meet neither scope of the identity: never. */
  | 'out_of_scope'
  /** A lease is live: its holder is never displaced. */
  | 'held'
  /** Not actionable, resolved or dropped, or a standing need whose cadence is not due. */
  | 'not_unmet'
  /** Primary scope, within the grace. */
  | 'grace'
  /** Peripheral scope, within the grace plus the peripheral delay (or not marked unmet yet). */
  | 'peripheral'
  /** Taken over recently: within the cooldown. */
  | 'cooldown';

export type ClaimEligibility =
  | { readonly eligible: true; readonly scope: ScopeClass }
  | {
      readonly eligible: false;
      readonly reason: IneligibleReason;
      /** What to tell the claimant: why, and from when it may claim (ISO time) when known. */
      readonly message: string;
      /**
       * When the claim becomes eligible if nothing else changes (ms since the epoch), or null when
       * that is unknown or never. For a held need, the lease's expiry: the earliest possible time.
       */
      readonly eligibleAt: number | null;
    };

/** True when a task holds the need's lease and it has not expired at `now`. */
export function liveLease(need: NeedState, now: number): boolean {
  return need.leaseTask !== null && need.leaseExpiresAt !== null && need.leaseExpiresAt > now;
}

/**
 * Unmet at `now`: actionable (open, dependencies resolved, not_before passed) or active, with no
 * live lease — never claimed, its lease expired, or its last task failed or was lost — and, for a
 * standing need, its next cadence due.
 */
export function unmet(need: NeedState, now: number): boolean {
  if (!need.actionable && need.status !== 'active') return false;
  if (liveLease(need, now)) return false;
  return need.dueAt == null || need.dueAt <= now;
}

/** Which of the identity's scopes the tags meet: primary wins over peripheral; null for neither. */
export function scopeClass(identity: Pick<Identity, 'scope'>, tags: readonly string[]): ScopeClass | null {
  if (tags.some((t) => identity.scope.primary.includes(t))) return 'primary';
  if (tags.some((t) => identity.scope.peripheral.includes(t))) return 'peripheral';
  return null;
}

/**
 * The claim jitter of `key` (an agent id, or an identity name) for a need: a whole number of ms in
 * [0, spanMs), from a 32-bit FNV-1a hash of the pair with a final mix. Deterministic.
 */
export function claimJitter(key: string, needId: string, spanMs = JITTER_MAX_MS): number {
  const span = Math.floor(spanMs);
  if (span <= 0) return 0;
  return hash32(`${key}\u0000${needId}`) % span;
}

/** A 32-bit FNV-1a hash of `text` from `basis`, with a final avalanche mix: uniform, deterministic. */
export function hash32(text: string, basis = 0x811c9dc5): number {
  let h = basis >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The jitter span of a class: the primary class never reaches into the peripheral one. */
function jitterSpan(cls: ScopeClass, params: TakeoverParams): number {
  return cls === 'primary' ? Math.min(JITTER_MAX_MS, params.peripheralDelay) : JITTER_MAX_MS;
}

/**
 * Whether `identity` (as agent `agentId`, when known) may claim `need` at `now`, and if not, why
 * and from when. Checks in order: scope, live lease, unmet, then the time of its class (see the
 * module comment) and the cooldown. Monotone in `now` for a given need state: once eligible, it
 * stays eligible until the state changes.
 */
export function claimEligibility(
  identity: Pick<Identity, 'name' | 'scope' | 'takeover'>,
  need: NeedState,
  now: number,
  agentId?: string,
): ClaimEligibility {
  const cls = scopeClass(identity, need.tags);
  if (cls === null) {
    return refuse(
      'out_of_scope',
      () =>
        `need ${need.id} is outside the scope of ${identity.name}: its tags (${list(need.tags)}) meet neither scope.primary (${list(identity.scope.primary)}) nor scope.peripheral (${list(identity.scope.peripheral)})`,
      null,
    );
  }
  if (liveLease(need, now)) {
    return refuse(
      'held',
      () =>
        `need ${need.id} is held by task ${need.leaseTask} until ${iso(need.leaseExpiresAt!)} (a live lease is never displaced); pick another need`,
      need.leaseExpiresAt,
    );
  }
  if (!unmet(need, now)) return notUnmet(need);
  const t = identity.takeover;
  const cooldownEnd = need.lastTakeoverAt == null ? null : need.lastTakeoverAt + t.cooldown;
  const jitter = claimJitter(agentId ?? identity.name, need.id, jitterSpan(cls, t));
  let classAt: number | null;
  if (need.orphaned) classAt = need.unmetSince === null ? null : need.unmetSince + jitter;
  else if (need.unmetSince === null) {
    if (cls === 'peripheral') {
      return refuse(
        'peripheral',
        () =>
          `need ${need.id} is in the peripheral scope of ${identity.name} and the supervisor has not marked it unmet yet: ${identity.name} may take it over ${duration(t.grace + t.peripheralDelay)} (grace plus peripheral delay) after the mark; primary-scope agents go first`,
        null,
      );
    }
    classAt = null;
  } else {
    classAt = need.unmetSince + t.grace + (cls === 'peripheral' ? t.peripheralDelay : 0) + jitter;
  }
  const at = Math.max(classAt ?? Number.NEGATIVE_INFINITY, cooldownEnd ?? Number.NEGATIVE_INFINITY);
  if (now >= at) return { eligible: true, scope: cls };
  const when = () => `at ${iso(at)} (in ${duration(at - now)})`;
  if (cooldownEnd !== null && cooldownEnd === at) {
    return refuse(
      'cooldown',
      () =>
        `need ${need.id} was taken over at ${iso(need.lastTakeoverAt!)}: it cannot be taken over again before its cooldown of ${duration(t.cooldown)} ends, ${when()}`,
      at,
    );
  }
  if (need.orphaned) {
    return refuse(
      'grace',
      () =>
        `need ${need.id} is orphaned: any agent in whose view it is may take it over after a jitter of ${jitter}ms, ${when()}`,
      at,
    );
  }
  const since = () => `it has been unmet since ${iso(need.unmetSince!)}`;
  if (cls === 'primary') {
    return refuse(
      'grace',
      () =>
        `need ${need.id} is within its grace: ${since()}, and ${identity.name} (primary scope) may take it over after ${duration(t.grace)} plus a jitter of ${jitter}ms, ${when()}`,
      at,
    );
  }
  return refuse(
    'peripheral',
    () =>
      `need ${need.id} is in the peripheral scope of ${identity.name}: ${since()}, and ${identity.name} may take it over after the grace plus the peripheral delay (${duration(t.grace + t.peripheralDelay)}) plus a jitter of ${jitter}ms, ${when()}; primary-scope agents go first`,
    at,
  );
}

/**
 * The supervisor's escalation (against deadlock): true when the need is unmet at `now`, was
 * marked unmet at least `params.escalation` ms ago with no claimant since (a claim clears the
 * mark), and is not orphaned yet. The supervisor then flags it orphaned and raises its priority.
 */
export function escalation(
  need: NeedState,
  params: Pick<TakeoverParams, 'escalation'>,
  now: number,
): boolean {
  if (need.orphaned || need.unmetSince === null) return false;
  return unmet(need, now) && now - need.unmetSince >= params.escalation;
}

/**
 * The escalation time that applies to a need: the shortest of the identities in whose view its
 * tags are (any of them could have taken it), or null when it is in nobody's view.
 */
export function escalationFor(
  identities: readonly Pick<Identity, 'scope' | 'takeover'>[],
  tags: readonly string[],
): Pick<TakeoverParams, 'escalation'> | null {
  let shortest: number | null = null;
  for (const identity of identities) {
    if (scopeClass(identity, tags) === null) continue;
    if (shortest === null || identity.takeover.escalation < shortest) shortest = identity.takeover.escalation;
  }
  return shortest === null ? null : { escalation: shortest };
}

function notUnmet(need: NeedState): ClaimEligibility {
  if (need.status === 'resolved' || need.status === 'dropped') {
    return refuse(
      'not_unmet',
      () => `need ${need.id} is ${need.status}: nothing is unmet; pick another need`,
      null,
    );
  }
  const dueAt = need.dueAt;
  if (dueAt != null && (need.actionable || need.status === 'active')) {
    return refuse(
      'not_unmet',
      () =>
        `need ${need.id} is standing and its next cadence is due at ${iso(dueAt)}: it is not unmet before then`,
      dueAt,
    );
  }
  return refuse(
    'not_unmet',
    () =>
      `need ${need.id} is not actionable (it waits for a dependency or its not_before): it is not unmet; pick another need`,
    null,
  );
}

/** The message is written only when read: the takeover loops evaluate every need in view often. */
function refuse(
  reason: IneligibleReason,
  message: () => string,
  eligibleAt: number | null,
): ClaimEligibility {
  return {
    eligible: false,
    reason,
    get message() {
      return message();
    },
    eligibleAt,
  };
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}

function list(tags: readonly string[]): string {
  return tags.length ? tags.join(', ') : 'none';
}

/** A duration as identity files write them: 250ms, 30s, 1.5m, 2h. */
function duration(ms: number): string {
  if (ms < 1000) return `${Math.ceil(ms)}ms`;
  if (ms < 60_000) return `${+(ms / 1000).toFixed(1)}s`;
  if (ms < 3_600_000) return `${+(ms / 60_000).toFixed(2)}m`;
  return `${+(ms / 3_600_000).toFixed(2)}h`;
}
