import { isAbsolute, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { compileWorkspace, ViewsOutOfDateError, type WorkspaceReport } from '../../kernel/views/index.js';
import { UsageError } from '../../store/index.js';
import { output, withStore } from '../context.js';

interface CompileFlags {
  workspace?: string;
  out?: string;
  check?: boolean;
  force?: boolean;
  json?: boolean;
}

export function registerCompileCommand(program: Command): void {
  program
    .command('compile')
    .description('compile the views (PROBLEM.md, README.md, graph.md, needs/<id>.md) of every workspace')
    .option('--workspace <name>', 'only this workspace')
    .option(
      '--out <dir>',
      'write into this folder (relative to the working folder) instead of the workspace folder; one workspace only',
    )
    .option('--check', 'write nothing; fail naming every file that is missing, stale or edited by hand')
    .option('--force', 'overwrite files that exist without an mlos header')
    .option('--json', 'print the report as JSON')
    .action(async (flags: CompileFlags, command: Command) => {
      await withStore(command, (store) => {
        const workspaces = flags.workspace
          ? [store.workspaces.require(flags.workspace)]
          : store.workspaces.list();
        if (flags.out !== undefined && workspaces.length > 1) {
          throw new UsageError(
            `--out names one folder but there are ${workspaces.length} workspaces (${workspaces.map((w) => w.name).join(', ')}): add --workspace NAME`,
          );
        }
        const reports = workspaces.map((w) =>
          compileWorkspace(store, w, {
            ...(flags.out !== undefined && { outDir: resolve(flags.out) }),
            check: flags.check ?? false,
            force: flags.force ?? false,
          }),
        );
        const problems = reports.reduce((n, r) => n + r.problems.length, 0);
        output(flags.json, summary(reports), () =>
          reports.map((r) => (flags.check ? checkText(r) : compileText(r))).join('\n'),
        );
        if (flags.check && problems > 0) throw new ViewsOutOfDateError(problems);
      });
    });
}

function summary(reports: readonly WorkspaceReport[]) {
  return {
    written: reports.reduce((n, r) => n + r.written.length, 0),
    unchanged: reports.reduce((n, r) => n + r.unchanged, 0),
    removed: reports.reduce((n, r) => n + r.removed.length, 0),
    problems: reports.reduce((n, r) => n + r.problems.length, 0),
    workspaces: reports,
  };
}

function compileText(r: WorkspaceReport): string {
  const lines = [
    `${r.workspace} → ${display(r.outDir)}: ${r.written.length} written, ${r.unchanged} unchanged, ${r.removed.length} removed`,
  ];
  for (const p of r.problems) {
    if (p.kind === 'edited') lines.push(`  overwrote ${display(resolve(r.outDir, p.path))}: ${p.detail}`);
  }
  return lines.join('\n');
}

function checkText(r: WorkspaceReport): string {
  if (r.problems.length === 0) return `${r.workspace} → ${display(r.outDir)}: up to date (${r.files} files)`;
  return r.problems.map((p) => `${display(resolve(r.outDir, p.path))}: ${p.detail}`).join('\n');
}

/** A path relative to the working folder when it lies inside it, else absolute. */
function display(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}
