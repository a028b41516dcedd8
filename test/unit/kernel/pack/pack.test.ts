import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { buildCandidates } from '../../../../src/kernel/pack/candidates.js';
import { compilePack } from '../../../../src/kernel/pack/compile.js';
import { expandPointer } from '../../../../src/kernel/pack/expand.js';
import { countRawTokens, tokenCounterFor } from '../../../../src/kernel/tokens.js';
import {
  BudgetExceededError,
  type ManualClock,
  NotFoundError,
  type Store,
  UserError,
} from '../../../../src/store/index.js';
import { makeIdentity } from '../../../helpers/identity.js';
import { openTestStore, thrown } from '../../../helpers/store.js';
import { buildPackWorld, headerNumbers, type PackWorld, pointerLines } from './fixtures.js';

describe('compilePack', () => {
  let store: Store;
  let clock: ManualClock;
  let world: PackWorld;
  const identity = makeIdentity();

  beforeEach(() => {
    ({ store, clock } = openTestStore());
    world = buildPackWorld(store, clock);
  });
  afterEach(() => store.close());

  const pack = (budget: number, id = identity) => compilePack(store.packReads, world.need.id, id, budget);

  it('ranks the need, its dependency chain, earlier attempts, artifacts, neighbours and events, in that order', () => {
    const p = pack(8000);
    const at = (s: string) => p.text.indexOf(s);
    expect(p.text.startsWith(`# Context pack: ${world.need.id} (budget 8,000 tokens, o200k_base)\n`)).toBe(
      true,
    );
    const order = [
      '## Need',
      '## Dependency chain',
      '## Notes and outcomes of earlier tasks',
      '## Referenced artifacts',
      '## Neighbours',
      '## Recent events',
      '## Pointers',
    ].map(at);
    expect(order.every((i) => i > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // The need in full, with its body and acceptance.
    expect(p.text).toContain('Keep the history auditable.');
    expect(p.text).toContain('No duplicate needs remain.');
    // The chain, transitively, with statuses.
    expect(p.text).toContain(`- ${world.dep.id} [resolved p2] Schema exists (depth 1)`);
    expect(p.text).toContain(`- ${world.deep.id} [open p3] Deep dependency (depth 2 via ${world.dep.id})`);
    // The memory of the failed attempt: its record, the note it produced, its transcript as a pointer.
    expect(p.text).toContain(
      `### ${world.failedTask} — attempt 1, failed (outcome failed), identity janitor`,
    );
    expect(p.text).toContain('error: ran out of budget before the third');
    expect(p.text).toContain(`produced by ${world.failedTask}`);
    expect(p.text).toContain('the third one is referenced by an open task');
    expect(p.text).toContain(`[pointer ptr:${world.transcript}] transcript "session transcript"`);
    // Artifacts: small in full, large by summary, large without summary as a pointer.
    expect(p.text).toContain('echo cleaning');
    expect(p.text).toContain('summary: The schema reference: tables, constraints and triggers.');
    expect(p.text).not.toContain('The schema has tables for needs');
    expect(p.text).toContain(`[pointer ptr:${world.bigBare}] artifact "raw dump"`);
    // Neighbours share tags; the dependencies are not repeated as neighbours.
    for (const n of world.neighbours) expect(p.text).toContain(`- ${n.id} [open p2] ${n.title}`);
    const neighbours = p.text.slice(p.text.indexOf('## Neighbours'), p.text.indexOf('## Recent events'));
    expect(neighbours).not.toContain(world.dep.id);
    expect(neighbours).not.toContain(world.need.id);
    expect(p.tokens).toBeLessThanOrEqual(8000);
  });

  it('ranks what a taking-over agent needs first: direct dependencies, then the memory of earlier attempts', () => {
    const { candidates } = buildCandidates(
      store.packReads,
      world.need,
      8000,
      tokenCounterFor(identity.model),
    );
    const rank = (ref: string) => candidates.findIndex((c) => c.ref === ref);
    const order = [
      world.need.id,
      world.dep.id,
      world.failedTask,
      world.taskNote,
      world.note,
      world.transcript,
      world.small,
      world.deep.id,
      world.neighbours[3]!.id,
    ].map(rank);
    expect(order.every((i) => i >= 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Neighbours sharing more tags come first; events come last.
    expect(rank(world.neighbours[3]!.id)).toBeLessThan(rank(world.neighbours[2]!.id));
    expect(candidates.at(-1)!.kind).toBe('event');
  });

  it('counts exactly what it prints: tokens are the real tokenizer count of the text, header included', () => {
    for (const budget of [8000, 2000, 900, 400]) {
      const p = pack(budget);
      expect(p.tokens).toBe(countRawTokens(p.text));
      expect(p.tokens).toBeLessThanOrEqual(budget);
      const h = headerNumbers(p.text);
      expect(h.budget).toBe(budget);
      expect(h.included).toBe(p.items.length);
      expect(h.includedTokens).toBe(p.items.reduce((s, i) => s + i.tokens, 0));
      for (const item of p.items) expect(item.tokens).toBe(countRawTokens(`${blockOf(p.text, item.ref)}\n`));
    }
  });

  it('states the size of every left-out item truthfully: pointer sizes are what expand_pointer returns', () => {
    const p = pack(900);
    const h = headerNumbers(p.text);
    const lines = pointerLines(p.text);
    const listed = p.omitted.items.filter((i) => i.as === 'pointer');
    expect(lines.map((l) => l.id)).toEqual(listed.map((i) => `ptr:${i.ref}`));
    expect(h.pointers).toBe(listed.length);
    expect(h.pointerTokens).toBe(listed.reduce((s, i) => s + i.tokens, 0));
    expect(h.dropped).toBe(p.omitted.dropped);
    expect(h.leftOut).toBe(p.omitted.count);
    expect(h.leftOutTokens).toBe(p.omitted.tokens);
    for (const line of lines) {
      const expanded = expandPointer(store.packReads, line.id, 1_000_000);
      expect(expanded.truncated).toBe(false);
      expect(expanded.fullTokens).toBe(line.tokens);
      expect(countRawTokens(expanded.text)).toBe(line.tokens);
    }
    // Dropped items carry their real size too.
    for (const d of p.omitted.items.filter((i) => i.as === 'dropped')) expect(d.tokens).toBeGreaterThan(0);
  });

  it('names the pointer of an abridged item with the full size', () => {
    const p = pack(8000);
    const abridged = p.pointers.find((x) => x.ref === world.bigWithSummary)!;
    expect(abridged.abridged).toBe(true);
    const full = expandPointer(store.packReads, abridged.id, 1_000_000);
    expect(full.text).toContain('The schema has tables for needs');
    expect(abridged.tokens).toBe(full.tokens);
    expect(p.text).toContain(
      `content: ${abridged.tokens.toLocaleString('en-US')} tokens, not shown; expand ${abridged.id}`,
    );
  });

  it('drops the lowest-ranked pointers when even they do not fit, and says how many', () => {
    const p = pack(500);
    expect(p.tokens).toBeLessThanOrEqual(500);
    expect(p.omitted.dropped).toBeGreaterThan(0);
    expect(p.text).toMatch(/dropped without a pointer \([\d,]+ tokens: .*\)/);
    // Rank order: whatever kept a pointer ranks above everything dropped among pointer-able items.
    const refs = p.omitted.items.map((i) => i.ref);
    const lastPointer = Math.max(...p.omitted.items.map((i, n) => (i.as === 'pointer' ? n : -1)));
    const firstDroppedPointerable = p.omitted.items.findIndex(
      (i) => i.as === 'dropped' && ['note', 'artifact', 'transcript', 'task', 'need'].includes(i.kind),
    );
    if (lastPointer >= 0 && firstDroppedPointerable >= 0)
      expect(lastPointer).toBeLessThan(firstDroppedPointerable);
    expect(new Set(refs).size).toBe(refs.length);
  });

  it('shows a need too large for the budget without its body, behind a pointer', () => {
    const big = store.needs.create({ title: 'Huge', body: 'word '.repeat(20_000), tags: ['cleanup'] });
    const p = compilePack(store.packReads, big.id, identity, 1000);
    expect(p.tokens).toBeLessThanOrEqual(1000);
    expect(p.text).toMatch(
      new RegExp(`body: not shown — the need in full is [\\d,]+ tokens; expand ptr:${big.id}`),
    );
    expect(p.items[0]).toMatchObject({ kind: 'need', abridged: true });
    const cut = expandPointer(store.packReads, `ptr:${big.id}`, 300);
    expect(cut.truncated).toBe(true);
    expect(cut.tokens).toBeLessThanOrEqual(300);
    expect(countRawTokens(cut.text)).toBe(cut.tokens);
    expect(cut.text).toMatch(/\[truncated: showing [\d,]+ of [\d,]+ tokens of ptr:need_\w+; expand again/);
    expect(cut.text.startsWith(`### ${big.id} — Huge`)).toBe(true);
  });

  it('is deterministic: the same state gives the same bytes and sha256, in another database too', () => {
    const a = pack(3000);
    const b = pack(3000);
    expect(b.text).toBe(a.text);
    expect(b.sha256).toBe(a.sha256);
    const other = openTestStore();
    try {
      const w = buildPackWorld(other.store, other.clock);
      const c = compilePack(other.store.packReads, w.need.id, identity, 3000);
      expect(c.text).toBe(a.text);
      expect(c.sha256).toBe(a.sha256);
    } finally {
      other.store.close();
    }
    // A change of state changes the pack.
    store.needs.update(world.need.id, { body: 'Something else.' });
    expect(pack(3000).sha256).not.toBe(a.sha256);
  });

  it('scales counts by 1.2 for Anthropic models and stays within the budget', () => {
    const claude = makeIdentity({ model: 'anthropic:claude-sonnet-4-5' });
    const p = pack(2000, claude);
    const counter = tokenCounterFor(claude.model);
    expect(p.factor).toBe(1.2);
    expect(p.text).toContain('(budget 2,000 tokens, o200k_base ×1.2)');
    expect(p.tokens).toBe(Math.ceil((countRawTokens(p.text) * 6) / 5));
    expect(p.tokens).toBeLessThanOrEqual(2000);
    const ptr = p.pointers.find((x) => !x.abridged)!;
    expect(expandPointer(store.packReads, ptr.id, 100_000, { identity: claude }).fullTokens).toBe(ptr.tokens);
    expect(counter.count(expandPointer(store.packReads, ptr.id, 100_000, { identity: claude }).text)).toBe(
      ptr.tokens,
    );
  });

  it('looks for neighbours among the newest needs of each tag and says what it did not rank', () => {
    const target = store.needs.create({ title: 'Crowded', tags: ['crowded', 'packed'] });
    store.transaction(() => {
      for (let i = 0; i < 210; i++) store.needs.create({ title: `Crowd ${i}`, tags: ['crowded'] });
      for (let i = 0; i < 2_100; i++) store.needs.create({ title: `Pack ${i}`, tags: ['packed'] });
    });
    const p = compilePack(store.packReads, target.id, identity, 8000);
    expect(p.items.filter((i) => i.kind === 'neighbour').length).toBeGreaterThan(0);
    // Newest first: the last one created leads.
    expect(p.text).toContain('Pack 2099 (1 shared tag)');
    expect(p.text).not.toContain('Crowd 0 ');
    expect(p.text).toContain(
      'Not ranked: 360 more needs sharing tags; older needs sharing tags (only the newest 200 per tag were looked at; crowded is on 210 other needs, packed is on more than 2,000 other needs)',
    );
  });

  it('counts special-token strings in content as plain text', () => {
    const n = store.needs.create({ title: 'Tokens', body: 'a <|endoftext|> b <|im_start|>', tags: ['x'] });
    const p = compilePack(store.packReads, n.id, identity, 1000);
    expect(p.text).toContain('<|endoftext|>');
    expect(p.tokens).toBe(countRawTokens(p.text));
  });

  it('refuses an unknown need, a bad budget and a budget below the header', () => {
    expect(
      thrown(() => compilePack(store.packReads, 'need_01JAAAAAAAAAAAAAAAAAAAAAAA', identity, 8000)),
    ).toBeInstanceOf(NotFoundError);
    for (const bad of [0, -5, 1.5, Number.NaN]) {
      const error = thrown(() => pack(bad));
      expect(error).toBeInstanceOf(UserError);
      expect(error.message).toContain('positive whole number');
    }
    const small = thrown(() => pack(20));
    expect(small).toBeInstanceOf(BudgetExceededError);
    expect(small.message).toMatch(
      /a budget of 20 tokens is too small for the context pack of need_\w+: its header alone takes \d+ tokens/,
    );
  });
});

describe('expandPointer', () => {
  it('refuses a malformed pointer and an unknown entity with actionable messages', () => {
    const { store } = openTestStore();
    try {
      const bad = thrown(() => expandPointer(store.packReads, 'ptr:ev_12', 100));
      expect(bad).toBeInstanceOf(UserError);
      expect(bad.message).toContain('is not a pointer: use one a pack lists');
      expect(
        thrown(() => expandPointer(store.packReads, 'ptr:art_01JAAAAAAAAAAAAAAAAAAAAAAA', 100)),
      ).toBeInstanceOf(NotFoundError);
      expect(
        thrown(() => expandPointer(store.packReads, 'ptr:task_01JAAAAAAAAAAAAAAAAAAAAAAA', 100)),
      ).toBeInstanceOf(NotFoundError);
    } finally {
      store.close();
    }
  });
});

/** The block of the pack that shows `ref`: from its first line to the line before the next block. */
function blockOf(text: string, ref: string): string {
  const lines = text.split('\n');
  const start = lines.findIndex(
    (l) => l.startsWith(`### ${ref} `) || l.startsWith(`- ${ref} `) || l.startsWith(`- #${ref.slice(3)} `),
  );
  let end = start + 1;
  while (end < lines.length && !/^(### |## |- |\[pointer )/.test(lines[end]!)) end++;
  // A fenced artifact may contain lines that look like block starts: extend to its closing fence.
  const block = lines.slice(start, end);
  const fence = block.find((l) => /^`{3,}$/.test(l));
  if (fence && block.filter((l) => l === fence).length < 2) {
    while (end < lines.length && lines[end] !== fence) end++;
    end++;
  }
  return lines.slice(start, end).join('\n');
}
