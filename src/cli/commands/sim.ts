import { availableParallelism } from 'node:os';
import type { Command } from 'commander';
import { FAULT_HELP, parseFaults, type SimFaults } from '../../scheduler/simulation/faults.js';
import type { SimProgress, SimReport, SimScheduler } from '../../scheduler/simulation/run.js';
import { MlosError, UsageError } from '../../store/index.js';
import { parseIntFlag } from '../context.js';

interface SimFlags {
  agents: number;
  needs: number;
  seed: number;
  seeds: number;
  faults?: string;
  scheduler: string;
  json?: boolean;
  summary?: boolean;
  jobs: number;
  maxVirtualMinutes: number;
}

/** `mlos sim`: the deterministic simulator (issue #7), seeds `seed … seed+seeds-1`. */
export function registerSimCommand(program: Command): void {
  program
    .command('sim')
    .description('run the deterministic simulator on virtual time and check its invariants')
    .option('--agents <n>', 'agents (spread over three identities)', parseIntFlag('--agents'), 5)
    .option('--needs <n>', 'needs (about a third with dependencies)', parseIntFlag('--needs'), 20)
    .option('--seed <n>', 'the first seed', parseIntFlag('--seed'), 1)
    .option('--seeds <n>', 'how many seeds to run from --seed', parseIntFlag('--seeds'), 1)
    .option('--faults <list>', 'fault probabilities, e.g. crash=0.1,hang=0.05,bus_loss=0.02 (see below)')
    .option(
      '--scheduler <kind>',
      'roundtable (supervisor graduation plus the agents’ takeover loops) or central (an omniscient central scheduler assigns every need)',
      'roundtable',
    )
    .option('--json', 'print one JSON report per seed')
    .option('--summary', 'print progress and failing seeds only, then the count of seeds with violations')
    .option('--jobs <n>', 'seeds run at once in worker threads (0: one per CPU)', parseIntFlag('--jobs'), 1)
    .option(
      '--max-virtual-minutes <n>',
      'give a seed up (not drained) after this much virtual time',
      parseIntFlag('--max-virtual-minutes'),
      24 * 60,
    )
    .addHelpText(
      'after',
      `\nFaults (each a probability in [0, 1]):\n${FAULT_HELP.map(([k, v]) => `  ${k.padEnd(19)} ${v}`).join('\n')}\n\nExits 1 when a seed breaks an invariant or does not drain; a failing seed reproduces with --seed <it> --seeds 1.`,
    )
    .action(async (flags: SimFlags) => {
      // Loaded here, not at the CLI's start (see mlos run).
      const { runSeeds } = await import('../../scheduler/simulation/batch.js');
      if (flags.scheduler !== 'roundtable' && flags.scheduler !== 'central')
        throw new UsageError(`--scheduler must be roundtable or central, not ${flags.scheduler}`);
      for (const [flag, value] of [
        ['--agents', flags.agents],
        ['--needs', flags.needs],
        ['--seeds', flags.seeds],
        ['--max-virtual-minutes', flags.maxVirtualMinutes],
      ] as const)
        if (value < 1) throw new UsageError(`${flag} must be at least 1, not ${value}`);
      if (flags.jobs < 0) throw new UsageError('--jobs must be 0 (one per CPU) or more');
      // Seeds are 32-bit: a larger one would run the same faults as a smaller one.
      if (flags.seed < 0 || flags.seed + flags.seeds > 2 ** 32)
        throw new UsageError(`--seed and --seeds must keep every seed within 0 … ${2 ** 32 - 1}`);
      let faults: SimFaults;
      try {
        faults = parseFaults(flags.faults);
      } catch (error) {
        throw new UsageError(`--faults: ${(error as Error).message}`);
      }
      const jobs = flags.jobs === 0 ? availableParallelism() : flags.jobs;
      const progressEvery = Math.max(1, Math.ceil(flags.seeds / 20));
      const started = Date.now();
      let done = 0;
      let failing = 0;
      let violations = 0;
      // On a terminal, a long seed shows how far it is (on stderr, wiped before its report).
      let shown = 0;
      const progress =
        process.stderr.isTTY && !flags.json && jobs === 1
          ? (p: SimProgress) => {
              if (Date.now() - shown < 250) return;
              shown = Date.now();
              process.stderr.write(
                `\r\x1b[Kseed ${p.seed}: ${p.resolved}/${p.needs} needs resolved, ${(p.virtualMs / 1000).toFixed(1)} s virtual`,
              );
            }
          : undefined;
      await runSeeds({
        ...(progress && { onProgress: progress }),
        options: {
          agents: flags.agents,
          needs: flags.needs,
          faults,
          scheduler: flags.scheduler as SimScheduler,
          maxVirtualMs: flags.maxVirtualMinutes * 60_000,
        },
        first: flags.seed,
        count: flags.seeds,
        jobs,
        onReport: (report) => {
          if (shown > 0) process.stderr.write('\r\x1b[K');
          shown = 0;
          done++;
          violations += report.violations.length;
          const failed = report.violations.length > 0 || !report.drained;
          if (failed) failing++;
          if (flags.json) process.stdout.write(`${JSON.stringify(report)}\n`);
          else if (!flags.summary || failed) process.stdout.write(describe(report));
          if (flags.summary && (done % progressEvery === 0 || done === flags.seeds))
            process.stdout.write(
              `${done}/${flags.seeds} seeds, ${failing} failing, ${violations} invariant violations (${((Date.now() - started) / 1000).toFixed(0)} s)\n`,
            );
        },
      });
      if (!flags.json && (flags.seeds > 1 || flags.summary))
        process.stdout.write(
          `${flags.seeds} seeds, ${failing} with invariant violations or not drained, ${violations} violations\n`,
        );
      // Exit 1 with one line that says how to reproduce a failing seed.
      if (failing > 0)
        throw new MlosError(
          'sim_failed',
          `${failing} of ${flags.seeds} seeds broke an invariant or did not drain: rerun one with --seed <it> --seeds 1`,
        );
    });
}

function describe(r: SimReport): string {
  const o = r.ownersPerNeed;
  const lines = [
    `seed ${r.seed} (${r.scheduler}, ${r.agents} agents, ${r.needs} needs): ${r.drained ? 'drained' : 'NOT drained'} in ${(r.drainMs / 1000).toFixed(1)} s virtual`,
    `  owners per need ${o.mean} mean (${o.netOfFaults} net of fault handoffs), ${o.max} max; attempts per need ${o.attemptsPerNeed}`,
    `  lost attempts retried ${r.recovery.count}, ${r.recovery.meanMs} ms mean (${r.recovery.maxMs} max) from lease expiry to the next start`,
    `  takeovers ${r.takeovers}; dispatches ${r.dispatches}; sessions ${r.sessions}; crashes ${r.crashes}; hangs ${r.hangs}; slow ${r.slowSessions}; restarts ${r.supervisorRestarts} supervisor, ${r.workerRestarts} worker`,
    `  sessions stopped by a refused stale write ${r.refusedStaleWrites}; duplicate effects ${r.duplicateEffects}; escalations (orphaned) ${r.orphanings}; tokens ${r.tokens}; events ${r.events}`,
  ];
  if (r.outageCalls > 0 || r.holds > 0)
    lines.push(`  model outages: ${r.outageCalls} calls answered 429; identities held ${r.holds} times`);
  if (r.bus)
    lines.push(
      `  bus: ${r.bus.lost} lost, ${r.bus.duplicated} duplicated, ${r.bus.reordered} reordered; ${r.bus.resyncs} resyncs`,
    );
  for (const v of r.violations)
    lines.push(
      `  VIOLATION ${v.invariant} at +${v.atMs} ms${v.needId ? ` on ${v.needId}` : ''}: ${v.detail}`,
    );
  if (r.tail) lines.push('  last events:', ...r.tail.map((l) => `    ${l}`));
  return `${lines.join('\n')}\n`;
}
