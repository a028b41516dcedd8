import { describe, expect, it } from 'vitest';
import type { Store } from '../../../src/store/index.js';
import { openTestStore } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

const HOUR = 3_600_000;

function graph() {
  const { store, clock } = openTestStore();
  store.identities.pin(IDENTITY, hex('janitor'), 'janitor');
  const make = (title: string, extra: Parameters<Store['needs']['create']>[0] = { title }) => {
    clock.advance(1);
    return store.needs.create({ ...extra, title }).id;
  };
  const free = make('free');
  const blocked = make('blocked by free', { title: '', dependsOn: [free] });
  const dropped = store.needs.drop(make('dropped')).id;
  const blockedByDropped = make('blocked by a dropped need', { title: '', dependsOn: [dropped] });
  const later = make('not before an hour from now', { title: '', notBefore: clock.now() + HOUR });
  const urgent = make('urgent', { title: '', priority: 0 });
  const active = make('being worked on');
  const task = store.tasks.start(store.tasks.create(active, IDENTITY).id, { leaseUntil: clock.now() + 1000 });
  const resolved = store.needs.resolve(make('resolved')).id;
  const standing = make('standing', { title: '', mode: 'standing', cadenceMs: HOUR });
  return {
    store,
    clock,
    free,
    blocked,
    dropped,
    blockedByDropped,
    later,
    urgent,
    active,
    task,
    resolved,
    standing,
  };
}

describe('actionable needs', () => {
  it('are the open needs whose dependencies are resolved and whose not_before has passed, by priority then age', () => {
    const g = graph();
    expect(g.store.needs.actionable(g.clock.now()).map((n) => n.title)).toEqual([
      'urgent',
      'free',
      'standing',
    ]);
  });

  it('include a need once its dependency is resolved', () => {
    const g = graph();
    g.store.needs.resolve(g.free);
    const ids = g.store.needs.actionable(g.clock.now()).map((n) => n.id);
    expect(ids).toContain(g.blocked);
    expect(ids).not.toContain(g.free);
  });

  it('leave out a need blocked by a dropped dependency: only resolved unblocks', () => {
    const g = graph();
    expect(g.store.needs.actionable(g.clock.now()).map((n) => n.id)).not.toContain(g.blockedByDropped);
    g.store.edges.unlink(g.blockedByDropped, 'depends_on', g.dropped);
    expect(g.store.needs.actionable(g.clock.now()).map((n) => n.id)).toContain(g.blockedByDropped);
  });

  it('include a need from its not_before on, and not a millisecond earlier', () => {
    const g = graph();
    const notBefore = g.store.needs.require(g.later).notBefore!;
    expect(g.store.needs.actionable(notBefore - 1).map((n) => n.id)).not.toContain(g.later);
    expect(g.store.needs.actionable(notBefore).map((n) => n.id)).toContain(g.later);
  });

  it('honour the limit', () => {
    const g = graph();
    expect(g.store.needs.actionable(g.clock.now(), 1).map((n) => n.title)).toEqual(['urgent']);
  });

  it('leave out a need again once it is reopened behind a new dependency', () => {
    const g = graph();
    g.store.edges.link(g.free, 'depends_on', g.urgent);
    expect(g.store.needs.actionable(g.clock.now()).map((n) => n.title)).toEqual(['urgent', 'standing']);
  });
});

describe('unmet candidates', () => {
  it('are actionable needs plus active needs whose lease is not live', () => {
    const g = graph();
    const now = g.clock.now();
    expect(g.store.needs.unmetCandidates(now).map((n) => n.title)).toEqual(['urgent', 'free', 'standing']);
    const expiry = g.store.leases.require(g.active).expiresAt!;
    // At the expiry instant the lease is no longer live.
    expect(g.store.needs.unmetCandidates(expiry - 1).map((n) => n.id)).not.toContain(g.active);
    expect(g.store.needs.unmetCandidates(expiry).map((n) => n.id)).toContain(g.active);
  });

  it('leave out a need while a live lease is held on it, and take it back when the task is lost', () => {
    const g = graph();
    const t = g.store.tasks.start(g.store.tasks.create(g.free, IDENTITY).id, {
      leaseUntil: g.clock.now() + HOUR,
    });
    expect(g.store.needs.unmetCandidates(g.clock.now()).map((n) => n.id)).not.toContain(g.free);
    g.store.tasks.transition(t.id, 'lost');
    expect(g.store.needs.unmetCandidates(g.clock.now()).map((n) => n.id)).toContain(g.free);
  });

  it('never include blocked, future, resolved or dropped needs', () => {
    const g = graph();
    const ids = g.store.needs.unmetCandidates(g.clock.now()).map((n) => n.id);
    for (const id of [g.blocked, g.blockedByDropped, g.later, g.resolved, g.dropped])
      expect(ids).not.toContain(id);
  });
});

describe('listing needs', () => {
  it('filters by status, scope, tags and text, ordered by priority then age', () => {
    const { store, clock } = openTestStore();
    const mk = (title: string, tags: string[], scope = 'default', priority = 2) => {
      clock.advance(1);
      return store.needs.create({ title, tags, scope, priority }).id;
    };
    const a = mk('alpha', ['kernel', 'store'], 'Sprint_X');
    const b = mk('beta', ['kernel'], 'Sprint_X', 0);
    const c = mk('gamma', ['cli']);
    store.needs.drop(c);
    expect(store.needs.list().map((n) => n.id)).toEqual([b, a, c]);
    expect(store.needs.list({ status: ['open'] }).map((n) => n.id)).toEqual([b, a]);
    expect(store.needs.list({ scope: 'Sprint_X' }).map((n) => n.id)).toEqual([b, a]);
    expect(store.needs.list({ tagsAny: ['store', 'cli'] }).map((n) => n.id)).toEqual([a, c]);
    expect(store.needs.list({ tagsAll: ['kernel', 'store'] }).map((n) => n.id)).toEqual([a]);
    expect(store.needs.list({ text: 'ALP' }).map((n) => n.id)).toEqual([a]);
    expect(store.needs.list({ limit: 1, offset: 1 }).map((n) => n.id)).toEqual([a]);
    expect(store.needs.require(a).tags).toEqual(['kernel', 'store']);
    // Ordered by scope, then status, in binary collation ('S' sorts before 'd').
    expect(store.needs.counts()).toEqual([
      { status: 'open', scope: 'Sprint_X', count: 2 },
      { status: 'dropped', scope: 'default', count: 1 },
    ]);
  });
});
