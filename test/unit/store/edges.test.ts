import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CycleError, EDGE_RELS, NotFoundError, UserError } from '../../../src/store/index.js';
import { openTestStore, thrown } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

function chain(length: number) {
  const { store } = openTestStore();
  const ids = Array.from({ length }, (_, i) => store.needs.create({ title: `need ${i}` }).id);
  // ids[i] depends on ids[i + 1].
  for (let i = 0; i + 1 < ids.length; i++) store.edges.link(ids[i]!, 'depends_on', ids[i + 1]!);
  return { store, ids };
}

describe('depends_on cycles', () => {
  it.each([2, 3, 5, 12])('are refused when closing a chain of %i needs, naming the whole cycle', (length) => {
    const { store, ids } = chain(length);
    const head = store.events.headSeq();
    const last = ids[length - 1]!;
    const error = thrown(() => store.edges.link(last, 'depends_on', ids[0]!));
    expect(error).toBeInstanceOf(CycleError);
    expect(error).toBeInstanceOf(UserError);
    expect((error as CycleError).cycle).toEqual([last, ...ids]);
    expect(error.message).toBe(
      `depends_on cycle refused: ${[last, ...ids].join(' → ')}; remove one of these edges first`,
    );
    expect(store.edges.get(last, 'depends_on', ids[0]!)).toBeUndefined();
    expect(store.events.headSeq()).toBe(head);
  });

  it('names the shortest cycle when several paths lead back', () => {
    const { store } = openTestStore();
    const [a, b, c, d] = ['a', 'b', 'c', 'd'].map((t) => store.needs.create({ title: t }).id) as [
      string,
      string,
      string,
      string,
    ];
    store.edges.link(a, 'depends_on', b);
    store.edges.link(b, 'depends_on', c);
    store.edges.link(c, 'depends_on', d);
    store.edges.link(a, 'depends_on', d);
    const error = thrown(() => store.edges.link(d, 'depends_on', a)) as CycleError;
    expect(error.cycle).toEqual([d, a, d]);
  });

  it('refuses a need depending on itself', () => {
    const { store } = openTestStore();
    const a = store.needs.create({ title: 'a' }).id;
    const error = thrown(() => store.edges.link(a, 'depends_on', a));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(`an edge cannot join ${a} to itself`);
  });

  it('allows diamonds and other shapes that are not cycles', () => {
    const { store } = openTestStore();
    const [top, left, right, bottom] = ['top', 'left', 'right', 'bottom'].map(
      (t) => store.needs.create({ title: t }).id,
    ) as [string, string, string, string];
    store.edges.link(top, 'depends_on', left);
    store.edges.link(top, 'depends_on', right);
    store.edges.link(left, 'depends_on', bottom);
    store.edges.link(right, 'depends_on', bottom);
    expect(store.edges.from(top, 'depends_on').map((e) => e.to)).toEqual([left, right].sort());
    expect(store.edges.to(bottom, 'depends_on').map((e) => e.from)).toEqual([left, right].sort());
  });

  it('are allowed through other relations: references may go both ways', () => {
    const { store } = openTestStore();
    const a = store.needs.create({ title: 'a' }).id;
    const b = store.needs.create({ title: 'b' }).id;
    store.edges.link(a, 'depends_on', b);
    expect(store.edges.link(b, 'references', a)).toMatchObject({ from: b, rel: 'references', to: a });
  });

  it('never enter the stored graph, whatever edges are attempted (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 8 }).chain((n) =>
          fc.record({
            n: fc.constant(n),
            attempts: fc.array(fc.tuple(fc.nat(n - 1), fc.nat(n - 1)), { maxLength: 40 }),
          }),
        ),
        ({ n, attempts }) => {
          const { store } = openTestStore();
          const ids = Array.from({ length: n }, (_, i) => store.needs.create({ title: `n${i}` }).id);
          const model = new Map<number, Set<number>>(ids.map((_, i) => [i, new Set<number>()]));
          const reaches = (from: number, goal: number): boolean => {
            const seen = new Set<number>();
            const stack = [from];
            while (stack.length) {
              const at = stack.pop()!;
              if (at === goal) return true;
              if (seen.has(at)) continue;
              seen.add(at);
              stack.push(...model.get(at)!);
            }
            return false;
          };
          for (const [f, t] of attempts) {
            const wouldCycle = f === t || reaches(t, f);
            const head = store.events.headSeq();
            let refused: Error | undefined;
            try {
              store.edges.link(ids[f]!, 'depends_on', ids[t]!);
            } catch (error) {
              refused = error as Error;
            }
            // The store refuses exactly the edges that would close a cycle, and nothing else.
            expect(refused !== undefined).toBe(wouldCycle);
            if (refused) {
              expect(refused).toBeInstanceOf(UserError);
              expect(store.events.headSeq()).toBe(head);
            } else model.get(f)!.add(t);
          }
          const stored = store.edges.allDependencies();
          expect(stored.length).toBe([...model.values()].reduce((sum, s) => sum + s.size, 0));
          // Kahn's algorithm on what the database holds: every node is removed, so no cycle.
          const indegree = new Map(ids.map((id) => [id, 0]));
          for (const e of stored) indegree.set(e.to, indegree.get(e.to)! + 1);
          const ready = ids.filter((id) => indegree.get(id) === 0);
          let removed = 0;
          while (ready.length) {
            const id = ready.pop()!;
            removed++;
            for (const e of stored.filter((x) => x.from === id)) {
              indegree.set(e.to, indegree.get(e.to)! - 1);
              if (indegree.get(e.to) === 0) ready.push(e.to);
            }
          }
          expect(removed).toBe(n);
          store.close();
        },
      ),
      { numRuns: 150 },
    );
  });
});

describe('edges', () => {
  function world() {
    const { store, clock } = openTestStore();
    store.identities.pin(IDENTITY, hex('j'), 'j');
    const need = store.needs.create({ title: 'need' }).id;
    const other = store.needs.create({ title: 'other' }).id;
    const task = store.tasks.create(need, IDENTITY).id;
    const art = store.artifacts.add({ kind: 'note', title: 'n', content: 'x' }).artifact.id;
    const art2 = store.artifacts.add({ kind: 'note', title: 'm', content: 'y' }).artifact.id;
    return { store, clock, need, other, task, art, art2 };
  }

  it('refuses an unknown relation, naming the closed set', () => {
    const { store, need, other } = world();
    const head = store.events.headSeq();
    const error = thrown(() => store.edges.link(need, 'blocks', other));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toBe(
      `invalid relation: unknown relation "blocks": use one of ${EDGE_RELS.join(', ')}`,
    );
    expect(store.events.headSeq()).toBe(head);
  });

  it('refuses an end that does not exist, naming it', () => {
    const { store, need } = world();
    const ghost = 'need_01JZZZZZZZZZZZZZZZZZZZZZZZ';
    const head = store.events.headSeq();
    const error = thrown(() => store.edges.link(need, 'depends_on', ghost));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(`need ${ghost} does not exist`);
    expect(thrown(() => store.edges.link('art_01JZZZZZZZZZZZZZZZZZZZZZZZ', 'references', need)).message).toBe(
      'artifact art_01JZZZZZZZZZZZZZZZZZZZZZZZ does not exist',
    );
    expect(store.events.headSeq()).toBe(head);
  });

  it('refuses an id that is not an id', () => {
    const { store, need } = world();
    const error = thrown(() => store.edges.link(need, 'references', "x'; DROP TABLE edges; --"));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toContain('is not a need, task or artifact id');
  });

  it.each([
    ['depends_on', 'need', 'task'],
    ['child_of', 'need', 'art'],
    ['produced_by', 'need', 'task'],
    ['produced_by', 'art', 'need'],
    ['source_transcript', 'art', 'need'],
    ['derived_from', 'task', 'art'],
    ['supersedes', 'need', 'art'],
  ] as const)('refuses %s from a %s to a %s, saying what it joins', (rel, fromKind, toKind) => {
    const w = world();
    const from = w[fromKind];
    const to = w[toKind];
    const head = w.store.events.headSeq();
    const error = thrown(() => w.store.edges.link(from, rel, to));
    expect(error).toBeInstanceOf(UserError);
    expect(error.message).toMatch(new RegExp(`^${rel} joins .*, but ${from} is a \\w+ and ${to} is a \\w+$`));
    expect(w.store.events.headSeq()).toBe(head);
  });

  it.each([
    ['depends_on', 'need', 'other'],
    ['child_of', 'need', 'other'],
    ['references', 'need', 'art'],
    ['references', 'task', 'need'],
    ['produced_by', 'art', 'task'],
    ['source_transcript', 'art', 'art2'],
    ['derived_from', 'art2', 'art'],
    ['supersedes', 'other', 'need'],
  ] as const)('links %s from %s to %s once, with one event; linking again changes nothing', (rel, f, t) => {
    const w = world();
    const head = w.store.events.headSeq();
    const edge = w.store.edges.link(w[f], rel, w[t]);
    expect(edge).toEqual({ from: w[f], rel, to: w[t], createdAt: w.clock.now() });
    const events = w.store.events.since(head);
    expect(events.map((e) => e.kind)).toEqual(['edge.added']);
    expect(events[0]?.payload).toEqual({ from: w[f], rel, to: w[t] });
    w.store.edges.link(w[f], rel, w[t]);
    expect(w.store.events.headSeq()).toBe(head + 1);
    expect(w.store.edges.from(w[f])).toHaveLength(1);
  });

  it('unlinks an edge with one event, and refuses to unlink one that is not there', () => {
    const { store, need, other } = world();
    store.edges.link(need, 'depends_on', other);
    const head = store.events.headSeq();
    store.edges.unlink(need, 'depends_on', other);
    expect(store.edges.get(need, 'depends_on', other)).toBeUndefined();
    expect(store.events.since(head).map((e) => e.kind)).toEqual(['edge.removed']);
    const error = thrown(() => store.edges.unlink(need, 'depends_on', other));
    expect(error).toBeInstanceOf(NotFoundError);
    expect(error.message).toBe(`edge ${need} depends_on ${other} does not exist`);
    expect(store.events.headSeq()).toBe(head + 1);
  });
});
