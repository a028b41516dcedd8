import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { compileAwareness, loadAwarenessState } from '../../../src/kernel/awareness.js';
import { compileBootPayload, renderIdentityBlock } from '../../../src/kernel/boot.js';
import { countRawTokens } from '../../../src/kernel/tokens.js';
import { KERNEL_INVARIANTS } from '../../../src/kernel/tools.js';
import { BudgetExceededError, type ManualClock, type Store } from '../../../src/store/index.js';
import { makeIdentity } from '../../helpers/identity.js';
import { openTestStore, thrown } from '../../helpers/store.js';
import { buildPackWorld, type PackWorld } from './pack/fixtures.js';

describe('compileBootPayload', () => {
  let store: Store;
  let clock: ManualClock;
  let world: PackWorld;
  const identity = makeIdentity({ tools: ['get_need', 'expand_pointer', 'add_note'] });

  beforeEach(() => {
    ({ store, clock } = openTestStore());
    world = buildPackWorld(store, clock);
  });
  afterEach(() => store.close());

  const boot = (needId = world.need.id, budget = 12_000, id = identity) =>
    compileBootPayload(store.packReads, id, needId, budget);

  it('lays out L1 and L2 as system blocks with breakpoints, then the pack and the task as the first message', () => {
    const b = boot();
    expect(b.system.map((s) => [s.section, s.cacheBreakpoint])).toEqual([
      ['l1-identity', true],
      ['l2-awareness', true],
    ]);
    expect(b.messages).toHaveLength(1);
    expect(b.messages[0]!.role).toBe('user');
    expect(b.messages[0]!.content.map((c) => [c.section, c.cacheBreakpoint])).toEqual([
      ['l3-pack', false],
      ['task', false],
    ]);
    expect(b.breakpoints).toEqual(['l1-identity', 'l2-awareness']);
    expect(b.sections.map((s) => s.section)).toEqual(['l1-identity', 'l2-awareness', 'l3-pack', 'task']);
    // The allowed tools are the identity's, which always include the required ones.
    expect(b.tools).toEqual([
      'add_note',
      'expand_pointer',
      'finish',
      'get_need',
      'heartbeat',
      'reserve_budget',
      'settle_budget',
    ]);
    // Sizes: each section is counted with the tokenizer, and the whole stays within the budget.
    for (const block of [...b.system, ...b.messages[0]!.content])
      expect(block.tokens).toBe(countRawTokens(block.text));
    expect(b.tokens).toBe(b.sections.reduce((s, x) => s + x.tokens, 0));
    expect(b.tokens).toBeLessThanOrEqual(12_000);
    // L3 is the pack, whose hash is the provenance the task records.
    expect(b.messages[0]!.content[0]!.text).toBe(b.pack.text);
    expect(b.pack.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(b.messages[0]!.content[1]!.text).toContain(`Work on need ${world.need.id}: "Clean the workspace"`);
  });

  it('renders L1 from the identity alone: objective, kernel invariants and the pinned bytes', () => {
    const l1 = boot().system[0]!.text;
    expect(l1).toBe(renderIdentityBlock(identity));
    expect(l1).toContain(identity.objective);
    for (const rule of KERNEL_INVARIANTS) expect(l1).toContain(rule);
    expect(l1).toContain(identity.source.trim());
    expect(l1).toContain(identity.hash);
  });

  it('keeps L1 byte-identical across needs, tasks and state changes of one identity', () => {
    const first = boot().system[0]!.text;
    const others = [boot(world.dep.id), boot(world.neighbours[0]!.id, 6000)];
    const task = store.tasks.create(world.neighbours[1]!.id, 'janitor');
    store.tasks.start(task.id, { leaseUntil: clock.now() + 60_000 });
    store.needs.create({ title: 'New work', tags: ['cleanup'] });
    clock.advance(3_600_000);
    others.push(boot(world.neighbours[1]!.id), boot());
    for (const b of others) expect(b.system[0]!.text).toBe(first);
    // Another identity gets another L1.
    expect(boot(world.need.id, 12_000, makeIdentity({ name: 'architect' })).system[0]!.text).not.toBe(first);
  });

  it('keeps L2 identical across the needs of one identity at one state', () => {
    const a = boot(world.need.id);
    const b = boot(world.dep.id);
    expect(b.system[1]!.text).toBe(a.system[1]!.text);
    const expected = compileAwareness(
      identity,
      loadAwarenessState(store.packReads, identity, clock.now()),
      2000,
    );
    expect(a.system[1]!.text).toBe(expected.text);
    expect(b.messages[0]!.content[0]!.text).not.toBe(a.messages[0]!.content[0]!.text);
  });

  it('compiles the same state to the same bytes, and a changed state to others', () => {
    const a = boot();
    expect(boot().sha256).toBe(a.sha256);
    const other = openTestStore();
    try {
      const w = buildPackWorld(other.store, other.clock);
      expect(compileBootPayload(other.store.packReads, identity, w.need.id, 12_000).sha256).toBe(a.sha256);
    } finally {
      other.store.close();
    }
    store.needs.create({ title: 'A new cleanup need', tags: ['cleanup'] });
    const changed = boot();
    expect(changed.sha256).not.toBe(a.sha256);
    expect(changed.system[0]!.text).toBe(a.system[0]!.text);
  });

  it('gives the pack what the budget leaves after L1, L2 and the task statement', () => {
    const b = boot(world.need.id, 3000);
    const fixed = b.system[0]!.tokens + b.system[1]!.tokens + b.messages[0]!.content[1]!.tokens;
    expect(b.pack.budget).toBe(3000 - fixed);
    expect(b.tokens).toBeLessThanOrEqual(3000);
    expect(b.pack.text).toContain(`(budget ${(3000 - fixed).toLocaleString('en-US')} tokens`);
  });

  it('refuses a budget that leaves no room for a pack, naming the sizes', () => {
    const error = thrown(() => boot(world.need.id, 400));
    expect(error).toBeInstanceOf(BudgetExceededError);
    expect(error.message).toMatch(
      /a boot budget of 400 tokens leaves .*context pack of need_\w+ \(identity \d+, awareness \d+, task statement \d+ tokens\)/,
    );
  });

  it('counts for Anthropic with the safety factor and tells a standing need it is never resolved', () => {
    const claude = makeIdentity({ model: 'anthropic:claude-sonnet-4-5' });
    const standing = store.needs.create({
      title: 'Sweep',
      mode: 'standing',
      cadenceMs: 3_600_000,
      tags: ['cleanup'],
    });
    const b = boot(standing.id, 12_000, claude);
    expect(b.factor).toBe(1.2);
    expect(b.system[0]!.tokens).toBe(Math.ceil((countRawTokens(b.system[0]!.text) * 6) / 5));
    expect(b.tokens).toBeLessThanOrEqual(12_000);
    expect(b.messages[0]!.content[1]!.text).toContain('This need is standing: it is never resolved.');
  });
});
