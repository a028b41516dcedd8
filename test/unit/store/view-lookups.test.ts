import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { movesOutOf, VIEW_LOOKUPS } from '../../../src/store/repos/views.js';
import { makeTempDir, openTestStore } from '../../helpers/store.js';

/**
 * The views' lookups in the event log (the seq a header names, a need page's latest events) and
 * in the edges (the dependencies). A long run grows both without bound, so each lookup must go
 * through an index, never read all of them: these tests check the answers and, through SQLite's
 * query plans, the way.
 */
describe('view lookups over the event log and the edges', () => {
  const temp = makeTempDir('mlos-lookups-');
  afterAll(temp.cleanup);

  function world() {
    const { store, clock } = openTestStore();
    const a = store.needs.create({ title: 'a', tags: ['kernel'] }).id;
    clock.advance(1);
    const b = store.needs.create({ title: 'b', tags: ['kernel'] }).id;
    clock.advance(1);
    const quiet = store.needs.create({ title: 'quiet' }).id;
    for (let i = 0; i < 8; i++) store.needs.update(a, { title: `a v${i}` });
    return { store, a, b, quiet };
  }

  it('needSeqs gives each need its latest event, edge events naming it as target included', () => {
    const { store, a, b, quiet } = world();
    const quietSeq = store.views.needSeqs([quiet]).get(quiet)!;
    const aOwn = store.events.headSeq();
    // b's event comes last, but as the edge's source it carries b's id; a is named only as its target.
    store.edges.link(b, 'depends_on', a);
    const head = store.events.headSeq();
    const seqs = store.views.needSeqs([a, b, quiet, 'need_unknown']);
    expect(seqs.get(a)).toBe(head);
    expect(seqs.get(b)).toBe(head);
    expect(seqs.get(quiet)).toBe(quietSeq);
    // A need with no event at all is left out.
    expect(seqs.has('need_unknown')).toBe(false);
    // maxSeq counts only the events that carry the ids.
    expect(store.views.maxSeq([quiet])).toBe(quietSeq);
    expect(store.views.maxSeq([a, quiet])).toBe(aOwn);
    expect(store.views.maxSeq([b, quiet])).toBe(head);
    expect(store.views.maxSeq([])).toBe(0);
  });

  it('recentEvents gives the newest events of each need, newest first, whatever other needs logged', () => {
    const { store, a, b } = world();
    const events = store.views.recentEvents([a, b], 3);
    const ofA = events.filter((e) => e.needId === a);
    const ofB = events.filter((e) => e.needId === b);
    const all = store.events.since(0, 1000);
    const expected = (id: string, n: number) =>
      all
        .filter((e) => e.needId === id)
        .map((e) => e.seq)
        .sort((x, y) => y - x)
        .slice(0, n);
    expect(ofA.map((e) => e.seq)).toEqual(expected(a, 3));
    expect(ofB.map((e) => e.seq)).toEqual(expected(b, 3));
    expect(ofB).toHaveLength(1);
    // Grouped by need, then newest first.
    const needOrder = events.map((e) => e.needId);
    expect(needOrder).toEqual([...needOrder].sort());
  });

  it('latestSeq is the latest event about a need of the tags and scope, whatever its status', () => {
    const { store, b } = world();
    const other = store.needs.create({ title: 'other', tags: ['docs'], scope: 'sprint' }).id;
    const all = { tagsAny: [], tagsAll: [], scope: null };
    expect(store.views.latestSeq(all)).toBe(store.events.headSeq());
    const kernel = { ...all, tagsAny: ['kernel'] };
    const kernelHead = store.events.headSeq() - 1;
    expect(store.views.latestSeq(kernel)).toBe(kernelHead);
    store.needs.resolve(b);
    expect(store.views.latestSeq(kernel)).toBe(store.events.headSeq());
    store.needs.drop(other);
    expect(store.views.latestSeq({ ...all, scope: 'sprint' })).toBe(store.events.headSeq());
    expect(store.views.latestSeq({ ...all, tagsAny: ['none'] })).toBe(0);
    // A non-need event at the end of the log is not counted.
    const needHead = store.events.headSeq();
    store.workspaces.add({ name: 'w', outDir: 'w' });
    expect(store.views.latestSeq(all)).toBe(needHead);
  });

  it('latestSeq still counts a need that a change of its tags or scope took out of the selection', () => {
    const { store, a, b, quiet } = world();
    const none = { tagsAny: [], tagsAll: [], scope: null };
    const kernel = { ...none, tagsAny: ['kernel'] };
    const kernelAndOps = { ...none, tagsAll: ['kernel', 'ops'] };
    store.needs.update(a, { tags: ['kernel', 'ops'] });
    expect(store.views.latestSeq(kernelAndOps)).toBe(store.events.headSeq());
    // Retagged out of both: the retag is the latest event about a need they showed.
    store.needs.update(a, { tags: ['docs'] });
    const retag = store.events.headSeq();
    expect(store.views.latestSeq(kernel)).toBe(retag);
    expect(store.views.latestSeq(kernelAndOps)).toBe(retag);
    // b leaves kernel later, but never matched kernel and ops: the newest move out of kernel is
    // not one out of both, and the walk goes back to a's.
    store.needs.update(b, { tags: ['docs'] });
    expect(store.views.latestSeq(kernelAndOps)).toBe(retag);
    expect(store.views.latestSeq(kernel)).toBe(store.events.headSeq());
    // Its later events belong to the selections it matches now.
    const bLeft = store.events.headSeq();
    store.needs.update(a, { title: 'a, in docs' });
    expect(store.views.latestSeq(kernel)).toBe(bLeft);
    expect(store.views.latestSeq({ ...none, tagsAny: ['docs'] })).toBe(store.events.headSeq());
    // A move to another scope counts for the one it left; an update of other fields moves nothing.
    store.needs.update(quiet, { scope: 'sprint' });
    const moved = store.events.headSeq();
    store.needs.update(quiet, { priority: 0 });
    expect(store.views.latestSeq({ ...none, scope: 'default' })).toBe(moved);
    expect(store.views.latestSeq({ ...none, scope: 'sprint' })).toBe(store.events.headSeq());
    // The payload keeps the tags and scope before the change.
    const event = store.events.since(moved - 1, 1)[0]!;
    expect(event.payload).toMatchObject({
      changed: { scope: 'sprint' },
      previous: { tags: [], scope: 'default' },
    });
  });

  it('workspaceSeq is the latest event about the workspace', () => {
    const { store } = world();
    expect(store.views.workspaceSeq('docs')).toBe(0);
    store.workspaces.add({ name: 'docs', outDir: 'docs-views', tagsAny: ['kernel'] });
    expect(store.views.workspaceSeq('docs')).toBe(store.events.headSeq());
  });

  it('every lookup uses an index: none reads the whole event log or every edge', () => {
    const path = `${temp.dir}/plans.db`;
    openTestStore(path).store.close();
    const db = new Database(path, { readonly: true });
    try {
      // Parameters are bound to sample values: the plan does not depend on them.
      const plan = (sql: string, params: unknown[]) =>
        db
          .prepare(`EXPLAIN QUERY PLAN ${sql}`)
          .all(...params)
          .map((r) => (r as { detail: string }).detail);
      const params: Record<keyof typeof VIEW_LOOKUPS, unknown[]> = {
        needSeqs: ['["need_a"]'],
        maxSeq: ['["need_a"]'],
        workspaceSeq: ['default'],
        recentEvents: ['["need_a"]', 5],
        dependencies: [],
      };
      // A scan of events or edges is a read of the run's history; the one allowed goes through
      // the index that holds the depends_on edges alone.
      const history = /^SCAN (events|edges|e|m)\b/;
      const narrow = /INDEX edges_depends_on$/;
      const moves = movesOutOf({ tagsAny: ['kernel', 'docs'], tagsAll: ['ops'], scope: 'default' });
      const lookups: [string, string, unknown[]][] = [
        ...Object.entries(VIEW_LOOKUPS).map(
          ([name, sql]) =>
            [name, sql, params[name as keyof typeof VIEW_LOOKUPS]] as [string, string, unknown[]],
        ),
        ['movesOutOf', moves.sql, moves.params],
      ];
      for (const [name, sql, bound] of lookups) {
        const steps = plan(sql, bound);
        const reads = steps.filter((s) => history.test(s) && !narrow.test(s));
        expect(reads, `${name}: ${steps.join(' | ')}`).toEqual([]);
        expect(
          steps.some((s) => /^SEARCH (events|e) /.test(s) || narrow.test(s)),
          name,
        ).toBe(true);
      }
    } finally {
      db.close();
    }
  });
});
