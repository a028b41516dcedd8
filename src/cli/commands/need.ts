import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { formatDurationMs } from '../../kernel/identity/index.js';
import {
  NEED_STATUSES,
  type Need,
  NeedIdSchema,
  type NeedStatus,
  UsageError,
  UserError,
} from '../../store/index.js';
import {
  collectList,
  output,
  parseDuration,
  parseIntFlag,
  parsePositiveIntFlag,
  withStore,
} from '../context.js';

interface NeedFlags {
  body?: string;
  bodyFile?: string;
  tags?: string[];
  priority?: number;
  scope?: string;
  dependsOn?: string[];
  acceptance?: string;
  standing?: boolean;
  cadence?: string;
  notBefore?: string;
  json?: boolean;
}

export function registerNeedCommands(program: Command): void {
  const need = program.command('need').description('create, inspect and change needs');

  need
    .command('add')
    .description('add a need (open); prints its id')
    .argument('<title>', 'what is needed, in a few words')
    .option('--body <text>', 'the detail')
    .option('--body-file <path>', 'read the body from a file ("-" for stdin)')
    .option('--tags <a,b>', 'tags (lowercase); repeatable', collectList)
    .option('--priority <0-4>', '0 highest … 4 lowest (default 2)', parsePriorityFlag)
    .option('--scope <scope>', 'grouping label, e.g. Sprint_X (default "default")')
    .option('--depends-on <id>', 'a need this one waits for; repeatable', collectNeedId('--depends-on'))
    .option('--acceptance <text>', 'what "met" means')
    .option('--standing', 'a standing need: never resolved, graduates again on its cadence')
    .option('--cadence <duration>', 'how often a standing need graduates (e.g. 1h)')
    .option('--not-before <iso>', 'not actionable before this time (ISO 8601)')
    .option('--json', 'print the need as JSON')
    .action(async (title: string, flags: NeedFlags, command: Command) => {
      if (flags.cadence && !flags.standing)
        throw new UsageError('--cadence needs --standing (only standing needs recur)');
      if (flags.standing && !flags.cadence)
        throw new UsageError('--standing needs --cadence (e.g. --cadence 1h)');
      const cadenceMs = flags.cadence === undefined ? undefined : parseDuration(flags.cadence, '--cadence');
      const notBefore = flags.notBefore === undefined ? undefined : parseTime(flags.notBefore);
      readBodyFile(flags);
      await withStore(
        command,
        (store) => {
          const created = store.needs.create({
            title,
            ...(flags.body !== undefined && { body: flags.body }),
            ...(flags.acceptance !== undefined && { acceptance: flags.acceptance }),
            ...(flags.tags && { tags: flags.tags }),
            ...(flags.priority !== undefined && { priority: flags.priority }),
            ...(flags.scope !== undefined && { scope: flags.scope }),
            ...(flags.dependsOn && { dependsOn: flags.dependsOn }),
            ...(cadenceMs !== undefined && { mode: 'standing' as const, cadenceMs }),
            ...(notBefore !== undefined && { notBefore }),
          });
          output(flags.json, created, () => created.id);
        },
        { create: true },
      );
    });

  need
    .command('list')
    .description('list needs, by priority then age')
    .option('--status <s,…>', `filter by status (${NEED_STATUSES.join(', ')})`, collectList)
    .option('--tag <tag>', 'needs carrying any of these tags; repeatable', collectList)
    .option('--scope <scope>', 'needs in this scope')
    .option('--text <text>', 'needs whose title or body contains this text')
    .option('--limit <n>', 'at most n needs', parsePositiveIntFlag('--limit'))
    .option('--json', 'print JSON')
    .action(
      async (
        flags: {
          status?: string[];
          tag?: string[];
          scope?: string;
          text?: string;
          limit?: number;
          json?: boolean;
        },
        command: Command,
      ) => {
        await withStore(command, (store) => {
          const needs = store.needs.list({
            ...(flags.status && { status: flags.status.map(checkStatus) }),
            ...(flags.tag && { tagsAny: flags.tag }),
            ...(flags.scope && { scope: flags.scope }),
            ...(flags.text && { text: flags.text }),
            ...(flags.limit !== undefined && { limit: flags.limit }),
          });
          output(flags.json, needs, () => (needs.length ? needLines(needs) : 'no needs match'));
        });
      },
    );

  need
    .command('show')
    .description('show one need with its edges, tasks and artifacts')
    .argument('<id>', 'need id')
    .option('--json', 'print JSON')
    .action(async (id: string, flags: { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const n = store.needs.require(id);
        const detail = {
          ...n,
          lease: store.leases.get(id),
          dependsOn: store.edges.from(id, 'depends_on').map((e) => e.to),
          dependents: store.edges.to(id, 'depends_on').map((e) => e.from),
          edges: { out: store.edges.from(id), in: store.edges.to(id) },
          tasks: store.tasks.forNeed(id),
          artifacts: store.artifacts.forNeed(id).map(({ content: _c, ...a }) => a),
        };
        output(flags.json, detail, () => {
          const lines = [
            `${n.id}  ${n.title}`,
            `status ${n.status} · priority ${n.priority} · scope ${n.scope} · version ${n.version}` +
              (n.mode === 'standing' ? ` · standing every ${formatDurationMs(n.cadenceMs ?? 0)}` : ''),
          ];
          if (n.tags.length) lines.push(`tags ${n.tags.join(', ')}`);
          if (n.notBefore !== null) lines.push(`not before ${new Date(n.notBefore).toISOString()}`);
          if (n.body) lines.push('', n.body);
          if (n.acceptance) lines.push('', `acceptance: ${n.acceptance}`);
          for (const e of detail.edges.out) lines.push(`→ ${e.rel} ${e.to}`);
          for (const e of detail.edges.in) lines.push(`← ${e.rel} ${e.from}`);
          for (const t of detail.tasks) {
            lines.push(
              `task ${t.id} attempt ${t.attempt} ${t.status}${t.outcome ? ` (${t.outcome})` : ''} by ${t.identity}`,
            );
          }
          for (const a of detail.artifacts) lines.push(`artifact ${a.id} ${a.kind} ${a.title}`);
          return lines.join('\n');
        });
      });
    });

  need
    .command('update')
    .description('change fields of a need (optimistic: --expect-version refuses if someone changed it)')
    .argument('<id>', 'need id')
    .option('--title <text>', 'new title')
    .option('--body <text>', 'new body')
    .option('--body-file <path>', 'read the new body from a file ("-" for stdin)')
    .option('--tags <a,b>', 'replace the tags', collectList)
    .option('--priority <0-4>', 'new priority', parsePriorityFlag)
    .option('--scope <scope>', 'new scope')
    .option('--acceptance <text>', 'new acceptance')
    .option('--cadence <duration>', 'new cadence (standing needs)')
    .option('--not-before <iso>', 'new not-before time (ISO 8601), or "none"')
    .option(
      '--expect-version <n>',
      'refuse unless the need is at this version',
      parseIntFlag('--expect-version'),
    )
    .option('--json', 'print the need as JSON')
    .action(
      async (id: string, flags: NeedFlags & { title?: string; expectVersion?: number }, command: Command) => {
        await withStore(command, (store) => {
          const patch = {
            ...(flags.title !== undefined && { title: flags.title }),
            ...(flags.body !== undefined && { body: flags.body }),
            ...(flags.acceptance !== undefined && { acceptance: flags.acceptance }),
            ...(flags.tags && { tags: flags.tags }),
            ...(flags.priority !== undefined && { priority: flags.priority }),
            ...(flags.scope !== undefined && { scope: flags.scope }),
            ...(flags.cadence !== undefined && { cadenceMs: parseDuration(flags.cadence, '--cadence') }),
            ...(flags.notBefore !== undefined && {
              notBefore: flags.notBefore === 'none' ? null : parseTime(flags.notBefore),
            }),
          };
          if (Object.keys(patch).length === 0) {
            throw new UserError(
              'nothing to update: pass at least one of --title, --body, --tags, --priority, …',
            );
          }
          const updated = store.needs.update(
            id,
            patch,
            flags.expectVersion !== undefined ? { expectedVersion: flags.expectVersion } : {},
          );
          output(flags.json, updated, () => `${updated.id} now at version ${updated.version}`);
        });
      },
    );

  registerRetry(need);
  for (const [name, to, what] of [
    ['resolve', 'resolved', 'mark a need met'],
    ['drop', 'dropped', 'give up on a need'],
    ['reopen', 'open', 'open a resolved or dropped need again'],
  ] as const) {
    need
      .command(name)
      .description(`${what} (an operator transition: any running task is cancelled and its lease revoked)`)
      .argument('<id>', 'need id')
      .option('--reason <text>', 'why, recorded in the event log')
      .option('--json', 'print the need as JSON')
      .action(async (id: string, flags: { reason?: string; json?: boolean }, command: Command) => {
        await withStore(command, (store) => {
          const n = store.needs.transition(id, to, flags.reason ? { reason: flags.reason } : {});
          output(flags.json, n, () => `${n.id} ${n.status}`);
        });
      });
  }
}

/** `mlos need retry`: an operator's fresh start for needs whose attempts failed. */
function registerRetry(need: Command): void {
  need
    .command('retry')
    .description(
      'try failed needs again: their failed attempts stop counting (towards --max-attempts and the retry delay) and an escalated one is no longer orphaned',
    )
    .argument('[ids...]', 'need ids')
    .option('--all-failed', 'every open need with a failed attempt since its last success or retry')
    .option('--reason <text>', 'why, recorded in the event log')
    .option('--json', 'print the needs as JSON')
    .action(
      async (
        ids: string[],
        flags: { allFailed?: boolean; reason?: string; json?: boolean },
        command: Command,
      ) => {
        await withStore(command, (store) => {
          if (flags.allFailed && ids.length > 0)
            throw new UsageError('give need ids or --all-failed, not both');
          const targets = flags.allFailed ? store.scheduling.failedNeeds() : ids;
          if (targets.length === 0) {
            if (!flags.allFailed) throw new UsageError('name the needs to retry, or pass --all-failed');
            output(flags.json, [], () => 'no open need has a failed attempt: nothing to retry');
            return;
          }
          // All or none: a typo in the third id leaves the first two as they were.
          const retried = store.transaction(() =>
            targets.map((id) => store.needs.retry(id, flags.reason ? { reason: flags.reason } : {})),
          );
          output(flags.json, retried, () =>
            retried.map((n) => `${n.id} retried: its failed attempts no longer count`).join('\n'),
          );
        });
      },
    );
}

/** One line per need, the status and scope columns padded to the widest in the list. */
function needLines(needs: readonly Need[]): string {
  const statusWidth = Math.max(...needs.map((n) => n.status.length));
  const scopeWidth = Math.max(...needs.map((n) => n.scope.length));
  return needs
    .map((n) => {
      const tags = n.tags.length ? ` [${n.tags.join(', ')}]` : '';
      return `${n.id}  P${n.priority}  ${n.status.padEnd(statusWidth)}  ${n.scope.padEnd(scopeWidth)}  ${n.title}${tags}`;
    })
    .join('\n');
}

function checkStatus(s: string): NeedStatus {
  if (!(NEED_STATUSES as readonly string[]).includes(s)) {
    throw new UsageError(`unknown status ${JSON.stringify(s)}: use one of ${NEED_STATUSES.join(', ')}`);
  }
  return s as NeedStatus;
}

function readBodyFile(flags: NeedFlags): void {
  if (flags.bodyFile === undefined) return;
  if (flags.body !== undefined) throw new UsageError('give the body with --body or --body-file, not both');
  try {
    flags.body = readFileSync(flags.bodyFile === '-' ? 0 : flags.bodyFile, 'utf8');
  } catch (error) {
    throw new UserError(`cannot read --body-file ${flags.bodyFile}: ${(error as Error).message}`);
  }
}

/** --priority: 0 (highest) to 4 (lowest), checked before anything is opened. */
function parsePriorityFlag(value: string): number {
  const n = parseIntFlag('--priority')(value);
  if (n < 0 || n > 4) throw new UsageError(`--priority ${n} is out of range: use 0 (highest) to 4 (lowest)`);
  return n;
}

/** A repeatable flag naming need ids, each checked before anything is opened. */
function collectNeedId(flag: string): (value: string, previous?: string[]) => string[] {
  return (value, previous = []) => {
    const id = value.trim();
    if (!NeedIdSchema.safeParse(id).success)
      throw new UsageError(
        `${flag} ${JSON.stringify(value)} is not a need id: they look like need_01J… (26 characters after the prefix); find them with \`mlos need list\``,
      );
    return [...previous, id];
  };
}

function parseTime(text: string): number {
  const ms = Date.parse(text);
  if (Number.isNaN(ms))
    throw new UsageError(`${JSON.stringify(text)} is not a time: use ISO 8601, e.g. 2026-12-01T09:00:00Z`);
  return ms;
}
