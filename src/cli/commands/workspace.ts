import type { Command } from 'commander';
import { NEED_STATUSES, type NeedStatus, UsageError, type Workspace } from '../../store/index.js';
import { collectList, output, withStore } from '../context.js';

export function registerWorkspaceCommands(program: Command): void {
  const workspace = program
    .command('workspace')
    .description('named filters over needs, each compiled to a folder');

  workspace
    .command('add')
    .description('add a workspace (a filter plus an output folder)')
    .argument('<name>', 'lowercase name')
    .requiredOption('--out <dir>', 'where its views are compiled (relative to the database folder)')
    .option('--tags <a,b>', 'needs carrying any of these tags', collectList)
    .option('--all-tags <a,b>', 'needs carrying all of these tags', collectList)
    .option('--scope <scope>', 'needs in this scope')
    .option('--status <s,…>', `needs in these statuses (${NEED_STATUSES.join(', ')})`, collectList)
    .option('--replace', 'change an existing workspace')
    .option('--json', 'print the workspace as JSON')
    .action(
      async (
        name: string,
        flags: {
          out: string;
          tags?: string[];
          allTags?: string[];
          scope?: string;
          status?: string[];
          replace?: boolean;
          json?: boolean;
        },
        command: Command,
      ) => {
        for (const s of flags.status ?? []) {
          if (!(NEED_STATUSES as readonly string[]).includes(s)) {
            throw new UsageError(
              `unknown status ${JSON.stringify(s)}: use one of ${NEED_STATUSES.join(', ')}`,
            );
          }
        }
        await withStore(
          command,
          (store) => {
            const w = store.workspaces.add(
              {
                name,
                outDir: flags.out,
                tagsAny: flags.tags ?? [],
                tagsAll: flags.allTags ?? [],
                scope: flags.scope ?? null,
                statuses: (flags.status ?? []) as NeedStatus[],
              },
              { replace: flags.replace ?? false },
            );
            output(flags.json, w, () => `workspace ${w.name} → ${store.resolvePath(w.outDir)}`);
          },
          { create: true },
        );
      },
    );

  workspace
    .command('list')
    .description('list workspaces')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const list = store.workspaces.list();
        output(flags.json, list, () =>
          list.map((w) => `${w.name.padEnd(16)} ${describeFilter(w)} → ${w.outDir}`).join('\n'),
        );
      });
    });
}

export function describeFilter(w: Workspace): string {
  const parts: string[] = [];
  if (w.tagsAny.length) parts.push(`tags any of ${w.tagsAny.join(', ')}`);
  if (w.tagsAll.length) parts.push(`tags all of ${w.tagsAll.join(', ')}`);
  if (w.scope) parts.push(`scope ${w.scope}`);
  if (w.statuses.length) parts.push(`status ${w.statuses.join(', ')}`);
  return parts.length ? parts.join('; ') : 'every need';
}
