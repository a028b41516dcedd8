import { availableParallelism } from 'node:os';
import { expect } from 'vitest';
import { runSeeds } from '../../src/scheduler/simulation/batch.js';
import { parseFaults } from '../../src/scheduler/simulation/faults.js';
import type { SimScheduler } from '../../src/scheduler/simulation/run.js';

/** The CI scenario: small enough for a thousand seeds, with every kind of fault turned on. */
export const CI_SCENARIO = {
  agents: 3,
  needs: 8,
  faults: parseFaults(
    'crash=0.1,agent_crash=0.1,hang=0.05,slow=0.1,server=0.05,rate_limit=0.02,timeout=0.01,malformed=0.02,bus_loss=0.05,bus_dup=0.05,bus_reorder=0.05,supervisor_restart=0.05,worker_restart=0.03,outage=0.02',
  ),
} as const;

/**
 * Runs seeds `first … first + count − 1` of the CI scenario, one worker thread per CPU (vitest
 * runs one test file at a time on a 2-core machine), and expects every one to drain with no
 * invariant violation; a failing seed is reported with its violations and the tail of its trace
 * (rerun it with `mlos sim --agents 3 --needs 8 --faults … --seed <it>`). Prints the count, and
 * returns what the faults did, so a caller can check they really happened.
 */
export async function expectSeedsClean(first: number, count: number, scheduler: SimScheduler = 'roundtable') {
  const failing: string[] = [];
  let violations = 0;
  let runs = 0;
  const seen = {
    crashes: 0,
    hangs: 0,
    slow: 0,
    supervisorRestarts: 0,
    workerRestarts: 0,
    busLost: 0,
    stale: 0,
    holds: 0,
  };
  const started = Date.now();
  await runSeeds({
    options: { ...CI_SCENARIO, scheduler },
    first,
    count,
    jobs: availableParallelism(),
    onReport: (report) => {
      runs++;
      violations += report.violations.length;
      seen.crashes += report.crashes;
      seen.hangs += report.hangs;
      seen.slow += report.slowSessions;
      seen.supervisorRestarts += report.supervisorRestarts;
      seen.workerRestarts += report.workerRestarts;
      seen.busLost += report.bus?.lost ?? 0;
      seen.stale += report.refusedStaleWrites;
      seen.holds += report.holds;
      if (report.violations.length > 0 || !report.drained || report.duplicateEffects > 0)
        failing.push(
          `seed ${report.seed} (${scheduler}): drained ${report.drained}, ${JSON.stringify(report.violations)}\n${report.tail?.join('\n') ?? ''}`,
        );
    },
  });
  console.log(
    `simulation ${scheduler}: seeds ${first}-${first + count - 1}: ${runs} seeds, ${violations} invariant violations, ${failing.length} failing, ${((Date.now() - started) / 1000).toFixed(1)} s; ${JSON.stringify(seen)}`,
  );
  expect(runs).toBe(count);
  expect(failing).toEqual([]);
  return seen;
}
