import { describe, expect, it } from 'vitest';
import {
  type AwarenessState,
  compareScopeNeeds,
  compileAwareness,
  loadAwarenessState,
} from '../../../src/kernel/awareness.js';
import type { ScopeNeed, ScopeView } from '../../../src/kernel/pack/source.js';
import { countRawTokens } from '../../../src/kernel/tokens.js';
import { BudgetExceededError } from '../../../src/store/index.js';
import { makeIdentity } from '../../helpers/identity.js';
import { openTestStore, thrown } from '../../helpers/store.js';
import { hex } from '../../helpers/world.js';

const identity = makeIdentity({ primary: ['cleanup'], peripheral: ['docs'] });

function scopeNeed(n: number, flags: Partial<ScopeNeed> = {}): ScopeNeed {
  return {
    id: `need_01JAAAAAAAAAAAAAAAAAAAA${String(n).padStart(3, '0')}`,
    title: `Need number ${n}`,
    status: 'open',
    priority: 2,
    unmet: false,
    orphaned: false,
    blocked: false,
    leased: false,
    deferred: false,
    ...flags,
  };
}

function view(needs: ScopeNeed[], extra: { resolved?: number; dropped?: number } = {}): ScopeView {
  return {
    counts: {
      open: needs.filter((n) => n.status === 'open').length,
      active: needs.filter((n) => n.status === 'active').length,
      resolved: extra.resolved ?? 0,
      dropped: extra.dropped ?? 0,
    },
    unmet: needs.filter((n) => n.unmet).length,
    needs,
  };
}

const needLines = (text: string) => text.split('\n').filter((l) => l.startsWith('- need_'));

describe('compileAwareness', () => {
  it('lists unmet needs first (orphaned first among them), then by priority and id, never bodies', () => {
    const needs = [
      scopeNeed(1, { priority: 0 }),
      scopeNeed(2, { unmet: true, priority: 3 }),
      scopeNeed(3, { unmet: true, orphaned: true, priority: 4 }),
      scopeNeed(4, { unmet: true, priority: 1 }),
      scopeNeed(5, { status: 'active', leased: true, priority: 0 }),
      scopeNeed(6, { blocked: true, priority: 1 }),
    ];
    const state: AwarenessState = {
      primary: view([...needs].reverse(), { resolved: 7 }),
      peripheral: view([]),
    };
    const a = compileAwareness(identity, state, 2000);
    expect(needLines(a.text).map((l) => l.split(' ')[1])).toEqual(
      [3, 4, 2, 1, 5, 6].map((n) => scopeNeed(n).id),
    );
    expect(a.text).toContain(`- ${scopeNeed(3).id} p4 open [unmet, orphaned] Need number 3`);
    expect(a.text).toContain(`- ${scopeNeed(5).id} p0 active [leased] Need number 5`);
    expect(a.text).toContain(`- ${scopeNeed(6).id} p1 open [blocked] Need number 6`);
    expect(a.text).toContain(
      'Primary scope [cleanup]: 13 needs (5 open, 1 active, 7 resolved, 0 dropped); 3 unmet.',
    );
    expect(a.text).toContain(
      'Peripheral scope [docs]: 0 needs (0 open, 0 active, 0 resolved, 0 dropped); 0 unmet.',
    );
    expect(a.text).not.toContain('… and');
    expect([...needs].sort(compareScopeNeeds).map((n) => n.id)).toEqual(
      [3, 4, 2, 1, 5, 6].map((n) => scopeNeed(n).id),
    );
  });

  it('stays under its cap and counts what it leaves out truthfully', () => {
    const primary = Array.from({ length: 120 }, (_, i) =>
      scopeNeed(i, { unmet: i % 3 === 0, priority: i % 5 }),
    );
    const state: AwarenessState = {
      primary: view(primary),
      peripheral: view([scopeNeed(500), scopeNeed(501)]),
    };
    for (const cap of [200, 400, 900, 3000]) {
      const a = compileAwareness(identity, state, cap);
      expect(a.tokens).toBeLessThanOrEqual(cap);
      expect(a.tokens).toBe(countRawTokens(a.text));
      const peripheralIds = [scopeNeed(500).id, scopeNeed(501).id];
      const shown = needLines(a.text).filter((l) => !peripheralIds.includes(l.split(' ')[1]!)).length;
      expect(shown).toBe(a.shown.primary);
      expect(a.more.primary).toBe(120 - a.shown.primary);
      if (a.more.primary > 0) expect(a.text).toContain(`… and ${a.more.primary} more primary needs`);
      // Unmet needs are granted space before the rest.
      const flags = needLines(a.text).slice(0, a.shown.primary);
      const firstMet = flags.findIndex((l) => !l.includes('[unmet'));
      if (firstMet >= 0) expect(flags.slice(firstMet).every((l) => !l.includes('[unmet'))).toBe(true);
    }
  });

  it('gives unmet peripheral needs space before met primary ones', () => {
    const primary = Array.from({ length: 80 }, (_, i) => scopeNeed(i));
    const peripheral = [scopeNeed(900, { unmet: true }), scopeNeed(901, { unmet: true })];
    const a = compileAwareness(identity, { primary: view(primary), peripheral: view(peripheral) }, 500);
    expect(a.shown.peripheral).toBe(2);
    expect(a.more.primary).toBeGreaterThan(0);
    expect(a.text.indexOf('Peripheral scope')).toBeLessThan(a.text.indexOf(scopeNeed(900).id));
  });

  it('renders the same bytes for the same state, whatever order the needs come in', () => {
    const needs = Array.from({ length: 30 }, (_, i) =>
      scopeNeed(i, { unmet: i % 2 === 0, priority: (i * 7) % 5 }),
    );
    const a = compileAwareness(identity, { primary: view(needs), peripheral: view([]) }, 600);
    const b = compileAwareness(identity, { primary: view([...needs].reverse()), peripheral: view([]) }, 600);
    expect(b.text).toBe(a.text);
  });

  it('refuses a cap that cannot hold its headings', () => {
    const error = thrown(() => compileAwareness(identity, { primary: view([]), peripheral: view([]) }, 10));
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.message).toMatch(
      /an awareness cap of 10 tokens is too small for janitor: its headings alone take \d+ tokens/,
    );
  });
});

describe('loadAwarenessState', () => {
  it("reads an identity's slices from the store: unmet, blocked, leased, deferred; one slice per need", () => {
    const { store, clock } = openTestStore();
    try {
      store.identities.pin('janitor', hex('janitor'), 'janitor');
      const outside = store.needs.create({ title: 'Outside', tags: ['ops'] });
      const open = store.needs.create({ title: 'Open and actionable', tags: ['cleanup'] });
      const both = store.needs.create({ title: 'Tagged both', tags: ['cleanup', 'docs'], priority: 3 });
      const docs = store.needs.create({ title: 'Docs only', tags: ['docs'] });
      const blocked = store.needs.create({ title: 'Blocked', tags: ['cleanup'], dependsOn: [outside.id] });
      const leased = store.needs.create({ title: 'Leased', tags: ['cleanup'] });
      const later = store.needs.create({
        title: 'Later',
        tags: ['cleanup'],
        notBefore: clock.now() + 3_600_000,
      });
      const done = store.needs.create({ title: 'Done', tags: ['cleanup'] });
      store.needs.resolve(done.id);
      const orphan = store.needs.create({ title: 'Orphan', tags: ['cleanup'], priority: 4 });
      store.needs.setFlags(orphan.id, { orphaned: true, unmetSince: clock.now() });
      const task = store.tasks.create(leased.id, 'janitor');
      store.tasks.start(task.id, { leaseUntil: clock.now() + 60_000 });

      const state = loadAwarenessState(store.packReads, identity, clock.now());
      expect(state.primary.counts).toEqual({ open: 5, active: 1, resolved: 1, dropped: 0 });
      expect(state.peripheral.needs.map((n) => n.id)).toEqual([docs.id]);
      const byId = new Map(state.primary.needs.map((n) => [n.id, n]));
      expect(byId.has(both.id)).toBe(true);
      expect(byId.get(open.id)).toMatchObject({ unmet: true, blocked: false });
      expect(byId.get(blocked.id)).toMatchObject({ unmet: false, blocked: true });
      expect(byId.get(leased.id)).toMatchObject({ status: 'active', unmet: false, leased: true });
      expect(byId.get(later.id)).toMatchObject({ unmet: false, deferred: true });
      expect(byId.get(orphan.id)).toMatchObject({ unmet: true, orphaned: true });
      expect(byId.has(done.id)).toBe(false);
      expect(state.primary.needs[0]!.id).toBe(orphan.id);
      expect(state.primary.unmet).toBe(3);

      // The lease runs out: the active need is unmet now.
      clock.advance(120_000);
      const after = loadAwarenessState(store.packReads, identity, clock.now());
      expect(after.primary.needs.find((n) => n.id === leased.id)).toMatchObject({
        unmet: true,
        leased: false,
      });
      expect(after.primary.unmet).toBe(4);

      // A fetch limit below the slice still counts the unmet ones truthfully.
      const limited = loadAwarenessState(store.packReads, identity, clock.now(), 2);
      expect(limited.primary.needs).toHaveLength(2);
      expect(limited.primary.unmet).toBe(4);
      const a = compileAwareness(identity, limited, 2000);
      expect(a.text).toContain('… and 4 more primary needs');
    } finally {
      store.close();
    }
  });

  it("counts a scope's needs by status as a walk over every need does, with excluded tags", () => {
    const { store } = openTestStore();
    try {
      store.identities.pin('janitor', hex('janitor'), 'janitor');
      const tags = ['a', 'b', 'c', 'd'];
      // A fixed spread of tag sets and ends: every status, needs in two scopes, untagged ones.
      for (let i = 0; i < 120; i++) {
        const mine = tags.filter((_, k) => (i >> k) % 2 === 1 || (i * 7 + k) % 11 === 0);
        const need = store.needs.create({ title: `n${i}`, tags: mine });
        if (i % 3 === 0) store.needs.resolve(need.id);
        else if (i % 5 === 0) store.needs.drop(need.id);
        else if (i % 7 === 0)
          store.tasks.start(store.tasks.create(need.id, 'janitor').id, { leaseUntil: 1e15 });
      }
      const all = store.needs.list({ limit: 1000 });
      for (const query of [
        { tags: ['a'], excludeTags: [] },
        { tags: ['a', 'b'], excludeTags: ['c'] },
        { tags: ['d'], excludeTags: ['a', 'b'] },
        { tags: ['b', 'c', 'd'], excludeTags: ['a'] },
        { tags: ['z'], excludeTags: [] },
      ]) {
        const inScope = all.filter(
          (n) =>
            n.tags.some((t) => query.tags.includes(t)) && !n.tags.some((t) => query.excludeTags.includes(t)),
        );
        const expected = { open: 0, active: 0, resolved: 0, dropped: 0 };
        for (const n of inScope) expected[n.status]++;
        const view = store.packReads.scopeView(query, store.clock.now(), 500);
        expect(view.counts, JSON.stringify(query)).toEqual(expected);
        expect(view.needs.map((n) => n.id).sort()).toEqual(
          inScope
            .filter((n) => n.status === 'open' || n.status === 'active')
            .map((n) => n.id)
            .sort(),
        );
      }
    } finally {
      store.close();
    }
  });
});
