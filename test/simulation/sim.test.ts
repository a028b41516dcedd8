import { describe, expect, it } from 'vitest';
import { InvariantChecker } from '../../src/scheduler/simulation/invariants.js';
import { runSimulation, type SimScheduler } from '../../src/scheduler/simulation/run.js';
import { parseFaults } from '../../src/scheduler/simulation/scenario.js';
import { createSeededPrng, ManualClock, Store } from '../../src/store/index.js';

const SEEDS = 30;
const faults = parseFaults('crash=0.1,server=0.05,malformed=0.02');

describe('deterministic simulator', () => {
  for (const scheduler of ['roundtable', 'central'] as SimScheduler[]) {
    it(`runs ${SEEDS} seeds of 5 agents / 20 needs (${scheduler}) with no invariant violation`, async () => {
      let violations = 0;
      const failing: string[] = [];
      for (let seed = 1; seed <= SEEDS; seed++) {
        const report = await runSimulation({ agents: 5, needs: 20, seed, faults, scheduler });
        violations += report.violations.length;
        if (report.violations.length > 0 || !report.drained)
          failing.push(
            `seed ${seed}: ${JSON.stringify(report.violations)}\n${report.tail?.join('\n') ?? ''}`,
          );
        expect(report.duplicateEffects).toBe(0);
      }
      console.log(`${scheduler}: ${SEEDS} seeds, ${violations} invariant violations`);
      expect(failing).toEqual([]);
    }, 60_000);
  }

  it('gives the same report for the same seed', async () => {
    const options = { agents: 5, needs: 20, seed: 42, faults, scheduler: 'roundtable' as const };
    const a = await runSimulation(options);
    const b = await runSimulation(options);
    expect(a.crashes + a.takeovers).toBeGreaterThan(0);
    expect(b).toEqual(a);
  });
});

describe('invariant checker', () => {
  it('reports a need resolved twice, with the tail of the trace', () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const store = Store.open(':memory:', { clock, prng: createSeededPrng(3) });
    const checker = new InvariantChecker(store, clock.now());
    const need = store.needs.create({ title: 'Twice' });
    store.needs.resolve(need.id);
    checker.step();
    expect(checker.violations).toEqual([]);
    store.needs.transition(need.id, 'open');
    store.needs.resolve(need.id);
    checker.step();
    expect(checker.violations).toMatchObject([{ invariant: 'need resolved once', needId: need.id }]);
    expect(checker.duplicateEffects).toBe(1);
    expect(checker.tail(2).join('\n')).toMatch(/need\.resolved/);
    store.close();
  });
});
