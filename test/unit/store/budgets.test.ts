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
