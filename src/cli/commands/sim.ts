import type { Command } from 'commander';
import { runSimulation, type SimReport, type SimScheduler } from '../../scheduler/simulation/run.js';
import { parseFaults } from '../../scheduler/simulation/scenario.js';
import { UserError } from '../../store/index.js';
import { parseIntFlag } from '../context.js';

interface SimFlags {
  agents: number;
  needs: number;
  seed: number;
  seeds: number;
  faults?: string;
  scheduler: string;
  json?: boolean;
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
    .option('--faults <list>', 'fault rates, e.g. crash=0.1,server=0.05,rate_limit,timeout,malformed')
    .option('--scheduler <kind>', 'roundtable (takeover loops on) or central (supervisor only)', 'roundtable')
    .option('--json', 'print one JSON report per seed')
    .action(async (flags: SimFlags) => {
      if (flags.scheduler !== 'roundtable' && flags.scheduler !== 'central')
        throw new UserError(`--scheduler must be roundtable or central, not ${flags.scheduler}`);
      if (flags.agents < 1 || flags.needs < 1 || flags.seeds < 1)
        throw new UserError('--agents, --needs and --seeds must be at least 1');
      let faults: ReturnType<typeof parseFaults>;
      try {
        faults = parseFaults(flags.faults);
      } catch (error) {
        throw new UserError(`--faults: ${(error as Error).message}`);
      }
      let failing = 0;
      for (let i = 0; i < flags.seeds; i++) {
        const report = await runSimulation({
          agents: flags.agents,
          needs: flags.needs,
          seed: flags.seed + i,
          faults,
          scheduler: flags.scheduler as SimScheduler,
        });
        if (report.violations.length > 0 || !report.drained) failing++;
        process.stdout.write(flags.json ? `${JSON.stringify(report)}\n` : describe(report));
      }
      if (!flags.json && flags.seeds > 1)
        process.stdout.write(`${flags.seeds} seeds, ${failing} with invariant violations\n`);
      if (failing > 0) process.exitCode = 1;
    });
}

function describe(r: SimReport): string {
  const lines = [
    `seed ${r.seed} (${r.scheduler}, ${r.agents} agents, ${r.needs} needs): ${r.drained ? 'drained' : 'NOT drained'} in ${(r.drainMs / 1000).toFixed(1)} s virtual`,
    `  owners per need ${r.ownersPerNeed.mean} mean, ${r.ownersPerNeed.max} max; takeovers ${r.takeovers}; crashes ${r.crashes}; sessions ${r.sessions}`,
    `  refused stale writes ${r.refusedStaleWrites}; duplicate effects ${r.duplicateEffects}; tokens ${r.tokens}`,
  ];
  for (const v of r.violations)
    lines.push(
      `  VIOLATION ${v.invariant} at +${v.atMs} ms${v.needId ? ` on ${v.needId}` : ''}: ${v.detail}`,
    );
  if (r.tail) lines.push('  last events:', ...r.tail.map((l) => `    ${l}`));
  return `${lines.join('\n')}\n`;
}
