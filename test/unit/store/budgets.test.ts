import { describe, expect, it } from 'vitest';
import { BudgetExceededError, RESERVATION_HOLD_MS, utcDay } from '../../../src/store/index.js';
import { openTestStore } from '../../helpers/store.js';
import { hex, IDENTITY } from '../../helpers/world.js';

const LIMITS = { task: null, day: 1000, run: null } as const;
const usage = (tokens: number) => ({
  inputTokens: tokens,
  outputTokens: 0,
  cacheReadTokens: 0,
  cacheWriteTokens: 0,
  costUsd: 0,
});

function running() {
  const { store, clock } = openTestStore();
  store.identities.pin(IDENTITY, hex('janitor'), 'janitor');
  const start = () => {
    const need = store.needs.create({ title: 'Spend' });
    return store.tasks.start(store.tasks.create(need.id, IDENTITY).id, { leaseUntil: clock.now() + 60_000 });
  };
  return { store, clock, start, day: () => utcDay(clock.now()) };
}

describe('budget reservations of ended tasks', () => {
  it('stay reserved while a call of a lost task may be in flight, so nobody else spends the same tokens', () => {
    const { store, start, day } = running();
    const lost = start();
    store.budgets.reserve(lost.id, 800, LIMITS);
    store.tasks.transition(lost.id, 'lost', { error: 'dead' });
    // The lost session's call is still running somewhere: its 800 tokens still count today.
    expect(store.budgets.used('day', day(), IDENTITY)).toBe(800);
    const next = start();
    expect(() => store.budgets.reserve(next.id, 300, LIMITS)).toThrow(BudgetExceededError);
    store.close();
  });

  it('count what the late call settles, not what it reserved', () => {
    const { store, start, day } = running();
    const lost = start();
    const reservation = store.budgets.reserve(lost.id, 800, LIMITS);
    store.tasks.transition(lost.id, 'lost', { error: 'dead' });
    store.budgets.settle(reservation.id, usage(120));
    expect(store.budgets.used('day', day(), IDENTITY)).toBe(120);
    store.close();
  });

  it('are released by the sweep once their hold has passed (a call that never settles)', () => {
    const { store, clock, start, day } = running();
    const lost = start();
    store.budgets.reserve(lost.id, 800, LIMITS);
    const live = start();
    store.budgets.reserve(live.id, 100, LIMITS);
    store.tasks.transition(lost.id, 'lost', { error: 'dead' });
    expect(store.budgets.releaseStale()).toBe(0);
    clock.advance(RESERVATION_HOLD_MS);
    // The ended task's reservation is released; the running task's stays.
    expect(store.budgets.releaseStale()).toBe(1);
    expect(store.budgets.used('day', day(), IDENTITY)).toBe(100);
    store.close();
  });

  it('are released at once when the task ends after the hold (nothing can be in flight)', () => {
    const { store, clock, start, day } = running();
    const task = start();
    store.budgets.reserve(task.id, 500, LIMITS);
    clock.advance(RESERVATION_HOLD_MS + 1);
    store.tasks.transition(task.id, 'failed', { error: 'gave up' });
    expect(store.budgets.used('day', day(), IDENTITY)).toBe(0);
    store.close();
  });
});

describe('budget totals of a day and a run', () => {
  it('equal the sum over their entries after every kind of write, across UTC days', () => {
    const { store, clock, start } = running();
    const runId = store.budgets.startRun();
    const limits = { task: null, day: null, run: null };
    // The model: what each entry counts (reserved: its reservation; settled: its use; released: 0).
    const entries = new Map<number, { day: string; counts: number }>();
    const expectTotals = () => {
      const days = new Set([...entries.values()].map((e) => e.day));
      for (const day of days) {
        const sum = [...entries.values()].filter((e) => e.day === day).reduce((n, e) => n + e.counts, 0);
        expect(store.budgets.used('day', day, IDENTITY)).toBe(sum);
      }
      expect(store.budgets.used('run', runId)).toBe([...entries.values()].reduce((n, e) => n + e.counts, 0));
    };
    let seed = 11;
    const next = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let round = 0; round < 12; round++) {
      const task = start();
      const open: number[] = [];
      for (let i = 0; i < 3; i++) {
        const tokens = 100 + next(900);
        const r = store.budgets.reserve(task.id, tokens, limits, runId);
        entries.set(r.id, { day: utcDay(clock.now()), counts: tokens });
        open.push(r.id);
      }
      const settled = open.shift()!;
      const used = next(100);
      store.budgets.settle(settled, usage(used));
      entries.get(settled)!.counts = used;
      expectTotals();
      // The task ends after the hold: its open reservations are released (they count nothing).
      clock.advance(RESERVATION_HOLD_MS + 1);
      store.tasks.transition(task.id, next(2) ? 'failed' : 'lost', { error: 'ended' });
      for (const id of open) entries.get(id)!.counts = 0;
      expectTotals();
      clock.advance(next(3) * 8 * 3600_000);
    }
    expect(new Set([...entries.values()].map((e) => e.day)).size).toBeGreaterThan(1);
    store.close();
  });
});
