import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Identity } from '../../../src/kernel/identity/schema.js';
import type { NeedState } from '../../../src/roundtable/need-bus.js';
import {
  type ClaimEligibility,
  claimEligibility,
  claimJitter,
  escalation,
  escalationFor,
  JITTER_MAX_MS,
  liveLease,
  scopeClass,
  unmet,
} from '../../../src/roundtable/protocol.js';

type Claimant = Pick<Identity, 'name' | 'scope' | 'takeover'>;

const T0 = Date.UTC(2026, 0, 1, 12);
const S = 1000;
const TAKEOVER = { grace: 30 * S, peripheralDelay: 60 * S, cooldown: 120 * S, escalation: 600 * S };

function claimant(name: string, primary: string[], peripheral: string[] = [], takeover = TAKEOVER): Claimant {
  return { name, scope: { primary, peripheral }, takeover };
}

const kernelist = claimant('kernelist', ['kernel'], ['schema']);
const schemer = claimant('schemer', ['schema'], ['kernel']);
const stranger = claimant('stranger', ['cleanup']);

function need(overrides: Partial<NeedState> = {}): NeedState {
  return {
    id: 'need_01TEST',
    title: 'A need',
    status: 'open',
    priority: 2,
    scope: 'Sprint_X',
    tags: ['kernel'],
    actionable: true,
    leaseTask: null,
    leaseExpiresAt: null,
    fencingToken: 0,
    unmetSince: T0,
    orphaned: false,
    lastTakeoverAt: null,
    dueAt: null,
    ...overrides,
  };
}

const jitterOf = (c: Claimant, needId = 'need_01TEST', agentId?: string) =>
  claimJitter(agentId ?? c.name, needId, scopeClass(c, ['kernel']) === 'primary' ? 250 : JITTER_MAX_MS);

function refusal(v: ClaimEligibility) {
  if (v.eligible) throw new Error('expected a refusal');
  return v;
}

describe('unmet', () => {
  it.each([
    ['open and actionable, never claimed', need(), true],
    ['open, not actionable', need({ actionable: false }), false],
    ['resolved', need({ status: 'resolved', actionable: false }), false],
    [
      'active under a live lease',
      need({ status: 'active', actionable: false, leaseTask: 't', leaseExpiresAt: T0 + 1 }),
      false,
    ],
    [
      'active, lease expired exactly now',
      need({ status: 'active', actionable: false, leaseTask: 't', leaseExpiresAt: T0 }),
      true,
    ],
    [
      'released after a failure (no holder)',
      need({ leaseTask: null, leaseExpiresAt: null, fencingToken: 4 }),
      true,
    ],
    ['standing, next cadence later', need({ dueAt: T0 + 1 }), false],
    ['standing, next cadence due', need({ dueAt: T0 }), true],
  ])('%s → %s', (_label, state, expected) => {
    expect(unmet(state, T0)).toBe(expected);
  });
});

describe('claimEligibility, by case', () => {
  const jK = jitterOf(kernelist);
  const jS = claimJitter('schemer', 'need_01TEST', JITTER_MAX_MS);

  it.each<
    [
      string,
      Claimant,
      NeedState,
      number,
      Partial<Extract<ClaimEligibility, { eligible: false }>> | 'eligible',
    ]
  >([
    ['out of scope: never', stranger, need(), T0 + 3_600 * S, { reason: 'out_of_scope', eligibleAt: null }],
    [
      'a live lease: held until it expires',
      kernelist,
      need({ status: 'active', actionable: false, leaseTask: 'task_x', leaseExpiresAt: T0 + 999 * S }),
      T0 + 900 * S,
      { reason: 'held', eligibleAt: T0 + 999 * S },
    ],
    [
      'resolved: not unmet',
      kernelist,
      need({ status: 'resolved', actionable: false }),
      T0,
      { reason: 'not_unmet', eligibleAt: null },
    ],
    [
      'waits for a dependency: not unmet',
      kernelist,
      need({ actionable: false }),
      T0,
      { reason: 'not_unmet', eligibleAt: null },
    ],
    [
      'standing before its cadence: not unmet until due',
      kernelist,
      need({ dueAt: T0 + 5 * S }),
      T0,
      { reason: 'not_unmet', eligibleAt: T0 + 5 * S },
    ],
    [
      'primary within the grace',
      kernelist,
      need(),
      T0 + 10 * S,
      { reason: 'grace', eligibleAt: T0 + 30 * S + jK },
    ],
    ['primary after the grace and its jitter', kernelist, need(), T0 + 30 * S + jK, 'eligible'],
    [
      'peripheral after the grace only',
      schemer,
      need(),
      T0 + 31 * S,
      { reason: 'peripheral', eligibleAt: T0 + 90 * S + jS },
    ],
    ['peripheral after grace + delay + jitter', schemer, need(), T0 + 90 * S + jS, 'eligible'],
    ['brand-new (not marked): primary at once', kernelist, need({ unmetSince: null }), T0, 'eligible'],
    [
      'brand-new (not marked): peripheral waits for the mark',
      schemer,
      need({ unmetSince: null }),
      T0 + 3_600 * S,
      { reason: 'peripheral', eligibleAt: null },
    ],
    [
      'taken over recently: cooldown',
      kernelist,
      need({ lastTakeoverAt: T0 - 10 * S }),
      T0 + 60 * S,
      { reason: 'cooldown', eligibleAt: T0 + 110 * S },
    ],
    ['cooldown over, grace over', kernelist, need({ lastTakeoverAt: T0 - 10 * S }), T0 + 110 * S, 'eligible'],
    [
      'cooldown binds a brand-new mark too',
      kernelist,
      need({ unmetSince: null, lastTakeoverAt: T0 }),
      T0 + 1,
      { reason: 'cooldown', eligibleAt: T0 + 120 * S },
    ],
    ['orphaned: peripheral without the class delays', schemer, need({ orphaned: true }), T0 + jS, 'eligible'],
    [
      'a tag in both scopes counts as primary',
      claimant('both', ['kernel'], ['kernel']),
      need(),
      T0 + 30 * S + claimJitter('both', 'need_01TEST', 250),
      'eligible',
    ],
  ])('%s', (_label, who, state, now, expected) => {
    const verdict = claimEligibility(who, state, now);
    if (expected === 'eligible')
      expect(verdict).toEqual({ eligible: true, scope: scopeClass(who, state.tags) });
    else expect(refusal(verdict)).toMatchObject(expected);
  });

  it('says why and when, with the ISO time, in words a model can act on', () => {
    const v = refusal(claimEligibility(kernelist, need(), T0 + 10 * S));
    const at = new Date(T0 + 30 * S + jK).toISOString();
    expect(v.message).toBe(
      `need need_01TEST is within its grace: it has been unmet since ${new Date(T0).toISOString()}, and kernelist (primary scope) may take it over after 30s plus a jitter of ${jK}ms, at ${at} (in ${+((20 * S + jK) / 1000).toFixed(1)}s)`,
    );
    const held = refusal(
      claimEligibility(kernelist, need({ leaseTask: 'task_x', leaseExpiresAt: T0 + 60 * S }), T0),
    );
    expect(held.message).toMatch(/is held by task task_x until .* \(a live lease is never displaced\)/);
    expect(refusal(claimEligibility(stranger, need(), T0)).message).toContain(
      'outside the scope of stranger: its tags (kernel) meet neither scope.primary (cleanup) nor scope.peripheral (none)',
    );
    expect(refusal(claimEligibility(schemer, need(), T0)).message).toContain('primary-scope agents go first');
  });

  it('orders claimants of one class by their agent ids, deterministically', () => {
    const ids = Array.from({ length: 20 }, (_, i) => `agent_${i}`);
    const times = ids.map((id) => refusal(claimEligibility(kernelist, need(), T0, id)).eligibleAt!);
    expect(new Set(times).size).toBeGreaterThan(10);
    for (const [i, id] of ids.entries()) {
      expect(times[i]).toBe(T0 + 30 * S + claimJitter(id, 'need_01TEST', 250));
      expect(claimEligibility(kernelist, need(), times[i]!, id).eligible).toBe(true);
      expect(claimEligibility(kernelist, need(), times[i]! - 1, id).eligible).toBe(false);
    }
  });
});

// ---- properties ----

const TAGS = ['kernel', 'schema', 'cleanup', 'context'] as const;
const tagSet = fc.uniqueArray(fc.constantFrom(...TAGS), { minLength: 0, maxLength: 3 });
// Short durations too: the jitter (under 250 ms) must never reorder classes, even when P is tiny.
const duration = fc.oneof(fc.integer({ min: 0, max: 500 }), fc.integer({ min: 0, max: 300 * S }));
const arbTakeover = fc
  .record({
    grace: duration,
    peripheralDelay: duration,
    cooldown: duration,
    extra: fc.integer({ min: 1, max: 600 * S }),
  })
  .map(({ extra, ...t }) => ({ ...t, escalation: t.grace + t.peripheralDelay + extra }));
const arbClaimant = fc.record({
  name: fc.constantFrom('alpha', 'beta', 'gamma'),
  scope: fc.record({ primary: tagSet, peripheral: tagSet }),
  takeover: arbTakeover,
});
const offset = fc.integer({ min: -3_600 * S, max: 3_600 * S });
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: null });
const arbNeed = fc
  .record({
    id: fc.constantFrom('need_a', 'need_b', 'need_01XYZ'),
    status: fc.constantFrom('open', 'active', 'resolved', 'dropped'),
    tags: tagSet,
    actionable: fc.boolean(),
    leaseTask: maybe(fc.constantFrom('task_1', 'task_2')),
    leaseExpiresAt: maybe(offset),
    unmetSince: maybe(offset),
    orphaned: fc.boolean(),
    lastTakeoverAt: maybe(offset),
    dueAt: maybe(offset),
  })
  .map((r) =>
    need({
      ...r,
      leaseExpiresAt: r.leaseExpiresAt === null ? null : T0 + r.leaseExpiresAt,
      unmetSince: r.unmetSince === null ? null : T0 + r.unmetSince,
      lastTakeoverAt: r.lastTakeoverAt === null ? null : T0 + r.lastTakeoverAt,
      dueAt: r.dueAt === null ? null : T0 + r.dueAt,
    }),
  );
const arbAgent = fc.option(fc.string({ minLength: 1, maxLength: 12 }), { nil: undefined });
const arbNow = offset.map((o) => T0 + o);

describe('claimEligibility, properties', () => {
  it('a live lease is never claimable', () => {
    fc.assert(
      fc.property(arbClaimant, arbNeed, arbNow, arbAgent, (who, state, now, agent) => {
        fc.pre(liveLease(state, now));
        const v = claimEligibility(who, state, now, agent);
        expect(v.eligible).toBe(false);
      }),
    );
  });

  it('is monotone in time: once eligible, eligible later too (same state)', () => {
    fc.assert(
      fc.property(
        arbClaimant,
        arbNeed,
        arbNow,
        fc.integer({ min: 0, max: 7_200 * S }),
        arbAgent,
        (who, state, now, later, agent) => {
          if (claimEligibility(who, state, now, agent).eligible) {
            expect(claimEligibility(who, state, now + later, agent).eligible).toBe(true);
          }
        },
      ),
    );
  });

  it('a timed refusal is eligible exactly at its eligibleAt, and not a millisecond before', () => {
    fc.assert(
      fc.property(arbClaimant, arbNeed, arbNow, arbAgent, (who, state, now, agent) => {
        const v = claimEligibility(who, state, now, agent);
        fc.pre(
          !v.eligible && ['grace', 'peripheral', 'cooldown'].includes(v.reason) && v.eligibleAt !== null,
        );
        const at = (v as { eligibleAt: number }).eligibleAt;
        expect(at).toBeGreaterThan(now);
        expect(claimEligibility(who, state, at, agent).eligible).toBe(true);
        expect(claimEligibility(who, state, at - 1, agent).eligible).toBe(false);
      }),
    );
  });

  it('out of scope is never eligible, at any time', () => {
    fc.assert(
      fc.property(arbClaimant, arbNeed, arbNow, arbAgent, (who, state, now, agent) => {
        fc.pre(scopeClass(who, state.tags) === null);
        const v = claimEligibility(who, state, now, agent);
        expect(v).toMatchObject({ eligible: false, reason: 'out_of_scope', eligibleAt: null });
      }),
    );
  });

  it('with equal settings, no peripheral claimant is eligible while a primary one is not', () => {
    fc.assert(
      fc.property(
        arbTakeover,
        arbNeed,
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        arbNow,
        (takeover, state, a, b, now) => {
          fc.pre(!state.orphaned && state.tags.includes('kernel') && !state.tags.includes('cleanup'));
          const primary = claimant('p', ['kernel'], [], takeover);
          const peripheral = claimant('q', ['cleanup'], ['kernel'], takeover);
          if (claimEligibility(peripheral, state, now, b).eligible) {
            expect(claimEligibility(primary, state, now, a).eligible).toBe(true);
          }
        },
      ),
    );
  });

  it('with equal settings, every primary claimant comes before every peripheral one', () => {
    fc.assert(
      fc.property(
        arbTakeover,
        fc.string({ minLength: 1 }),
        fc.string({ minLength: 1 }),
        maybe(offset),
        (takeover, a, b, lastTakeover) => {
          const state = need({ lastTakeoverAt: lastTakeover === null ? null : T0 + lastTakeover });
          const before = T0 - 7_200 * S;
          const p = refusal(claimEligibility(claimant('p', ['kernel'], [], takeover), state, before, a));
          const q = refusal(claimEligibility(claimant('q', [], ['kernel'], takeover), state, before, b));
          expect(p.eligibleAt!).toBeLessThanOrEqual(q.eligibleAt!);
        },
      ),
    );
  });

  it('the jitter is deterministic and within [0, span)', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), fc.integer({ min: 0, max: 10_000 }), (key, needId, span) => {
        const j = claimJitter(key, needId, span);
        expect(claimJitter(key, needId, span)).toBe(j);
        expect(Number.isInteger(j)).toBe(true);
        expect(j).toBeGreaterThanOrEqual(0);
        if (span > 0) expect(j).toBeLessThan(span);
        else expect(j).toBe(0);
        expect(claimJitter(key, needId)).toBeLessThan(JITTER_MAX_MS);
      }),
    );
  });

  it('the jitter spreads agents over its span', () => {
    const values = Array.from({ length: 2_000 }, (_, i) => claimJitter(`agent_${i}`, 'need_x'));
    const buckets = new Array(5).fill(0) as number[];
    for (const v of values) buckets[Math.floor(v / 50)]!++;
    for (const b of buckets) expect(b).toBeGreaterThan(300);
  });
});

describe('escalation', () => {
  const params = { escalation: 600 * S };

  it.each([
    ['unmet past E', need(), T0 + 600 * S, true],
    ['unmet, not yet past E', need(), T0 + 600 * S - 1, false],
    ['never marked unmet', need({ unmetSince: null }), T0 + 3_600 * S, false],
    ['already orphaned', need({ orphaned: true }), T0 + 3_600 * S, false],
    [
      'held under a live lease',
      need({ leaseTask: 't', leaseExpiresAt: T0 + 7_200 * S }),
      T0 + 3_600 * S,
      false,
    ],
    ['blocked by a dependency', need({ actionable: false }), T0 + 3_600 * S, false],
    [
      'active with an expired lease',
      need({ status: 'active', actionable: false, leaseTask: 't', leaseExpiresAt: T0 }),
      T0 + 600 * S,
      true,
    ],
  ])('%s → %s', (_label, state, now, expected) => {
    expect(escalation(state, params, now)).toBe(expected);
  });

  it('is monotone in time and never fires under a live lease', () => {
    fc.assert(
      fc.property(
        arbNeed,
        arbNow,
        fc.integer({ min: 0, max: 7_200 * S }),
        arbTakeover,
        (state, now, later, t) => {
          if (escalation(state, t, now)) expect(escalation(state, t, now + later)).toBe(true);
          if (liveLease(state, now)) expect(escalation(state, t, now)).toBe(false);
        },
      ),
    );
  });

  it('uses the shortest escalation of the identities that watch the tags', () => {
    const quick = claimant('quick', ['schema'], [], { ...TAKEOVER, escalation: 120 * S });
    const slow = claimant('slow', ['cleanup'], ['kernel'], { ...TAKEOVER, escalation: 900 * S });
    expect(escalationFor([quick, slow], ['kernel'])).toEqual({ escalation: 900 * S });
    expect(escalationFor([quick, slow], ['kernel', 'schema'])).toEqual({ escalation: 120 * S });
    expect(escalationFor([quick, slow], ['context'])).toBeNull();
  });
});
