import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { compilePack } from '../../../../src/kernel/pack/compile.js';
import { expandPointer } from '../../../../src/kernel/pack/expand.js';
import { countRawTokens, tokenCounterFor } from '../../../../src/kernel/tokens.js';
import { BudgetExceededError, type Store } from '../../../../src/store/index.js';
import { makeIdentity } from '../../../helpers/identity.js';
import { openTestStore } from '../../../helpers/store.js';
import { hex } from '../../../helpers/world.js';
import { headerNumbers, pointerLines } from './fixtures.js';

const TAGS = ['cleanup', 'schema', 'kernel', 'docs', 'ops'] as const;
const WORDS = ['need', 'graph', 'token', 'pack', 'budget', 'agent', 'schema', 'lease', 'fence', 'view'];

/** Text of every shape the tokenizer can meet: prose, code fences, unicode, special tokens, edge whitespace. */
const content = fc.oneof(
  fc.array(fc.constantFrom(...WORDS), { maxLength: 40 }).map((w) => w.join(' ')),
  fc.array(fc.constantFrom(...WORDS), { minLength: 400, maxLength: 3000 }).map((w) => w.join(' ')),
  fc.string({ unit: 'binary', maxLength: 120 }),
  fc.string({ unit: 'grapheme', maxLength: 120 }),
  fc.constantFrom(
    '<|endoftext|> and <|im_start|>',
    '```ts\nconst x = 1;\n```\n````',
    '/leading/slash\n\n/and more/',
    '   leading and trailing whitespace \n\n\t',
    'line.\n\n\n- item\n- item.',
    '',
  ),
);

const title = fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }).map((t) => `T ${t}`.slice(0, 300));

const graph = fc.record({
  needs: fc.array(
    fc.record({
      title,
      body: content,
      tags: fc.subarray([...TAGS]),
      priority: fc.integer({ min: 0, max: 4 }),
      resolved: fc.boolean(),
    }),
    { minLength: 1, maxLength: 20 },
  ),
  deps: fc.array(fc.tuple(fc.nat(), fc.nat()), { maxLength: 30 }),
  artifacts: fc.array(
    fc.record({
      owner: fc.nat(),
      kind: fc.constantFrom('note', 'file', 'result'),
      title,
      content,
      summary: fc.option(fc.string({ minLength: 1, maxLength: 80 }), { nil: null }),
      byTask: fc.boolean(),
    }),
    { maxLength: 10 },
  ),
  tasks: fc.array(fc.record({ owner: fc.nat(), summary: content, error: content }), { maxLength: 4 }),
  target: fc.nat(),
  // Tight, middling and roomy budgets alike: fast-check alone would favour the smallest.
  budget: fc.oneof(
    fc.integer({ min: 40, max: 600 }),
    fc.integer({ min: 600, max: 3000 }),
    fc.integer({ min: 3000, max: 12_000 }),
  ),
  anthropic: fc.boolean(),
});

type Graph = typeof graph extends fc.Arbitrary<infer T> ? T : never;

function build(store: Store, g: Graph): string[] {
  store.identities.pin('janitor', hex('janitor'), 'janitor');
  const ids = g.needs.map(
    (n) => store.needs.create({ title: n.title, body: n.body, tags: n.tags, priority: n.priority }).id,
  );
  for (const [a, b] of g.deps) {
    const i = a % ids.length;
    const j = b % ids.length;
    if (i !== j) store.edges.link(ids[Math.max(i, j)]!, 'depends_on', ids[Math.min(i, j)]!);
  }
  const tasks: string[] = [];
  for (const t of g.tasks) {
    const needId = ids[t.owner % ids.length]!;
    const task = store.tasks.create(needId, 'janitor');
    store.tasks.start(task.id, { leaseUntil: store.clock.now() + 1000 });
    store.tasks.transition(task.id, 'failed', { outcome: 'failed', summary: t.summary, error: t.error });
    tasks.push(task.id);
  }
  g.artifacts.forEach((a, i) => {
    const needId = ids[a.owner % ids.length]!;
    const { artifact } = store.artifacts.add(
      {
        kind: a.kind,
        uri: a.kind === 'file' ? `/f/${i}` : null,
        title: a.title,
        content: a.content || 'x',
        summary: a.summary,
      },
      { needId },
    );
    const task = tasks[a.owner % Math.max(1, tasks.length)];
    if (a.byTask && task) store.edges.link(artifact.id, 'produced_by', task);
  });
  g.needs.forEach((n, i) => {
    if (n.resolved) store.needs.resolve(ids[i]!);
  });
  return ids;
}

describe('context pack properties', () => {
  it('never exceeds its budget, counts exactly what it prints, and states left-out sizes truthfully', () => {
    fc.assert(
      fc.property(graph, (g) => {
        const { store } = openTestStore();
        try {
          const ids = build(store, g);
          const identity = makeIdentity({ model: g.anthropic ? 'anthropic:claude' : 'openai:gpt' });
          const counter = tokenCounterFor(identity.model);
          const needId = ids[g.target % ids.length]!;
          let pack: ReturnType<typeof compilePack>;
          try {
            pack = compilePack(store.packReads, needId, identity, g.budget);
          } catch (error) {
            // Only a budget below the bare header may be refused, and the message says so.
            expect(error).toBeInstanceOf(BudgetExceededError);
            const takes = Number(
              /header alone takes ([\d,]+) tokens/.exec((error as Error).message)![1]!.replace(/,/g, ''),
            );
            expect(takes).toBeGreaterThan(g.budget);
            return;
          }
          expect(pack.tokens).toBeLessThanOrEqual(g.budget);
          expect(pack.tokens).toBe(counter.scale(countRawTokens(pack.text)));

          const h = headerNumbers(pack.text);
          expect(h.included).toBe(pack.items.length);
          expect(h.includedTokens).toBe(pack.items.reduce((s, i) => s + i.tokens, 0));
          expect(h.leftOut).toBe(pack.omitted.count);
          expect(h.leftOutTokens).toBe(pack.omitted.tokens);
          expect(h.dropped).toBe(pack.omitted.dropped);
          const listed = pack.omitted.items.filter((i) => i.as === 'pointer');
          const lines = pointerLines(pack.text);
          expect(lines.map((l) => l.id)).toEqual(listed.map((i) => `ptr:${i.ref}`));
          for (const line of lines) {
            const expanded = expandPointer(store.packReads, line.id, 10_000_000, { identity });
            expect(expanded.fullTokens).toBe(line.tokens);
          }

          const again = compilePack(store.packReads, needId, identity, g.budget);
          expect(again.sha256).toBe(pack.sha256);
        } finally {
          store.close();
        }
      }),
      { numRuns: 100, seed: 20_260_101 },
    );
  });

  it('cuts an expansion to any budget it can honour, never over it', () => {
    const { store } = openTestStore();
    try {
      const need = store.needs.create({
        title: 'Long',
        body: `${'unicode ✓ 🎉 text '.repeat(800)}end`,
        tags: ['x'],
      });
      fc.assert(
        fc.property(fc.integer({ min: 60, max: 8000 }), fc.boolean(), (budget, anthropic) => {
          const identity = makeIdentity({ model: anthropic ? 'anthropic:claude' : 'openai:gpt' });
          const counter = tokenCounterFor(identity.model);
          const out = expandPointer(store.packReads, `ptr:${need.id}`, budget, { identity });
          expect(out.tokens).toBeLessThanOrEqual(budget);
          expect(out.tokens).toBe(counter.count(out.text));
          if (out.truncated)
            expect(out.text).toMatch(/\n\[truncated: showing [\d,]+ of [\d,]+ tokens of ptr:need_/);
          else expect(out.tokens).toBe(out.fullTokens);
        }),
        { numRuns: 40, seed: 7 },
      );
    } finally {
      store.close();
    }
  });
});
