import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import {
  type AcceptResult,
  acceptIdentity,
  displayPath,
  formatDurationMs,
  type Identity,
  type IdentityStatus,
  IdentityWatcher,
  identityFromPin,
  identityStatus,
  identityStatuses,
  loadIdentityDir,
  loadIdentityFile,
  type SyncReport,
  safeParseIdentity,
  shortHash,
  syncIdentities,
} from '../../kernel/identity/index.js';
import { NameSchema, NotFoundError, type Store, UserError } from '../../store/index.js';
import { output, withStore } from '../context.js';
import { callGuardAsOperator } from '../operator.js';

const DEFAULT_DIR = 'identities';

/** `mlos identity lint` found problems; the issues were printed one per line. */
class IdentityCheckFailedError extends UserError {
  constructor(message: string) {
    super(message, { code: 'identity_check_failed' });
  }
}

export function registerIdentityCommands(program: Command): void {
  const identity = program
    .command('identity')
    .description('identity files (Layer 1): lint, pin, detect drift, accept changes');

  identity
    .command('lint')
    .description('check every identity file; exit 1 listing every error, one per line')
    .argument('[dir]', 'the identities folder', DEFAULT_DIR)
    .option('--json', 'print JSON')
    .action((dir: string, flags: { json?: boolean }) => {
      const loaded = loadIdentityDir(dir);
      if (loaded.files.length === 0) {
        throw new UserError(
          `${displayPath(loaded.dir)} holds no identity files (*.md): add one, or run \`mlos init\``,
        );
      }
      const issues = loaded.errors.flatMap((e) => e.issues.map((i) => i.message));
      const names = loaded.identities.map((i) => i.name);
      output(flags.json, { ok: issues.length === 0, identities: names, errors: issues }, () =>
        issues.length === 0 ? `ok: ${names.length} identities (${names.join(', ')})` : issues.join('\n'),
      );
      if (issues.length > 0) {
        throw new IdentityCheckFailedError(
          `${plural(issues.length, 'error')} in ${loaded.errors.length} of ${plural(loaded.files.length, 'identity file')}`,
        );
      }
    });

  identity
    .command('list')
    .description(
      'every identity with its pinned hash and state (pinned, new, drifted, paused, missing-file); writes nothing',
    )
    .option('--dir <dir>', 'the identities folder', DEFAULT_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dir: string; json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const statuses = identityStatuses(store, flags.dir);
        output(flags.json, statuses.map(statusJson), () =>
          statuses.length === 0
            ? `no identities: add files to ${displayPath(resolve(flags.dir))}/ or run \`mlos init\``
            : table(statuses),
        );
      });
    });

  identity
    .command('show')
    .description('an identity with every value resolved (defaults applied and marked)')
    .argument('<name>', 'identity name')
    .option('--dir <dir>', 'the identities folder', DEFAULT_DIR)
    .option('--pinned', 'show the pinned bytes (what agents run) instead of the file')
    .option('--json', 'print JSON')
    .action(
      async (name: string, flags: { dir: string; pinned?: boolean; json?: boolean }, command: Command) => {
        checkName(name);
        await withStore(command, (store) => {
          const { identity, explicit, origin } = resolveShown(store, flags.dir, name, flags.pinned ?? false);
          const status = identityStatus(store, flags.dir, name);
          const defaults = DEFAULTABLE.filter((f) => !explicit.has(f));
          output(flags.json, { ...identity, origin, status: statusJson(status), defaults }, () =>
            showText(identity, status, origin, explicit),
          );
        });
      },
    );

  identity
    .command('accept')
    .description('re-pin an identity to the current bytes of its file (refused when the file does not lint)')
    .argument('<name>', 'identity name')
    .option('--dir <dir>', 'the identities folder', DEFAULT_DIR)
    .option('--json', 'print JSON')
    .action(async (name: string, flags: { dir: string; json?: boolean }, command: Command) => {
      checkName(name);
      await withStore(command, (store) => {
        const result = acceptIdentity(store, flags.dir, name);
        output(flags.json, result, () => acceptText(result));
      });
    });

  identity
    .command('sync')
    .description(
      'pin new identity files and mark changed ones drifted; exit 1 when any is drifted or does not lint',
    )
    .option('--dir <dir>', 'the identities folder', DEFAULT_DIR)
    .option('--json', 'print JSON')
    .action(async (flags: { dir: string; json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const report = syncIdentities(store, flags.dir);
        output(flags.json, syncJson(report), () => syncText(report).join('\n'));
        const problems = [
          ...(report.drift.length
            ? [`${plural(report.drift.length, 'identity', 'identities')} drifted`]
            : []),
          ...(report.errors.length ? [`${plural(report.errors.length, 'file')} failing lint`] : []),
        ];
        if (problems.length > 0) {
          throw new IdentityCheckFailedError(`${problems.join(' and ')}: see above, and mlos identity list`);
        }
      });
    });

  for (const [verb, paused] of [
    ['pause', true],
    ['resume', false],
  ] as const) {
    identity
      .command(verb)
      .description(
        paused
          ? 'give an identity no new work until resumed'
          : 'give a paused identity work again, or end the hold of one whose model was unavailable',
      )
      .argument('<name>', 'identity name')
      .action(async (name: string, _flags: unknown, command: Command) => {
        checkName(name);
        await withStore(command, async (store) => {
          // Through the guard, like every operator transition.
          const { data } = await callGuardAsOperator(store, paused ? 'pause_identity' : 'resume_identity', {
            name,
          });
          process.stdout.write(
            data['paused']
              ? `paused ${name}: it gets no new work until \`mlos identity resume ${name}\`\n`
              : `resumed ${name}${data['holdEnded'] ? ': its hold ended, it gets work again now' : ''}\n`,
          );
        });
      });
  }

  identity
    .command('watch')
    .description('sync, then keep watching the folder and mark changed identities drifted until interrupted')
    .option('--dir <dir>', 'the identities folder', DEFAULT_DIR)
    .action(async (flags: { dir: string }, command: Command) => {
      await withStore(command, async (store) => {
        for (const line of syncText(syncIdentities(store, flags.dir))) process.stdout.write(`${line}\n`);
        await watchUntilSignal(store, flags.dir);
      });
    });
}

async function watchUntilSignal(store: Store, dir: string): Promise<void> {
  const watcher = new IdentityWatcher({
    store,
    dir,
    onChange: (report) => {
      for (const line of changeLines(report)) process.stdout.write(`${line}\n`);
    },
    onError: (error) =>
      process.stderr.write(`mlos: ${error instanceof Error ? error.message : String(error)}\n`),
  });
  watcher.start();
  process.stdout.write(`watching ${displayPath(resolve(dir))}/ (Ctrl-C to stop)\n`);
  await new Promise<void>((done) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      done();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  watcher.close();
}

const DEFAULTABLE = [
  'invariants',
  'scope.peripheral',
  'tools',
  'model',
  'capacity',
  'budgets.per_task',
  'budgets.per_day',
  'takeover.grace',
  'takeover.peripheral_delay',
  'takeover.cooldown',
  'takeover.escalation',
] as const;

function checkName(name: string): void {
  if (!NameSchema.safeParse(name).success) {
    throw new UserError(
      `${JSON.stringify(name)} is not an identity name: list them with \`mlos identity list\``,
    );
  }
}

function resolveShown(
  store: Store,
  dir: string,
  name: string,
  pinned: boolean,
): { identity: Identity; explicit: ReadonlySet<string>; origin: 'file' | 'pin' } {
  const pin = store.identities.get(name);
  const path = join(dir, `${name}.md`);
  if (!pinned && existsSync(path)) {
    const f = loadIdentityFile(path);
    if (f.error || !f.identity) {
      const hint = pin ? `\n(the pinned version, which agents run: mlos identity show ${name} --pinned)` : '';
      throw new UserError(`${f.error?.message ?? `${f.file} does not lint`}${hint}`, {
        code: 'identity_invalid',
      });
    }
    return { identity: f.identity, explicit: f.explicit, origin: 'file' };
  }
  if (!pin) {
    throw new NotFoundError(
      'identity',
      name,
      pinned
        ? 'it has never been pinned (mlos identity sync)'
        : `no pin and no ${displayPath(resolve(path))}`,
    );
  }
  const identity = identityFromPin(pin);
  const parsed = safeParseIdentity(pin.content, { file: `${name}.md (pinned)`, name });
  return { identity, explicit: parsed.ok ? parsed.explicit : new Set(), origin: 'pin' };
}

function showText(
  i: Identity,
  s: IdentityStatus,
  origin: 'file' | 'pin',
  explicit: ReadonlySet<string>,
): string {
  const d = (field: string) => (explicit.has(field) ? '' : ' (default)');
  const t = i.takeover;
  const lines = [
    `${i.name} — ${origin === 'file' ? (s.file ?? '') : 'pinned bytes'}`,
    row('state', `${stateText(s)}; ${s.runnable ? 'runnable' : 'not runnable'}`),
    row('hash', i.hash),
    row('objective', i.objective),
    row('model', `${i.model.spec}${d('model')}`),
    row(
      'capacity',
      `${i.capacity} concurrent ${i.capacity === 1 ? 'task' : 'tasks'} per worker${d('capacity')}`,
    ),
    row('scope', `primary: ${i.scope.primary.join(', ')}`),
    row('', `peripheral: ${i.scope.peripheral.join(', ') || '(none)'}${d('scope.peripheral')}`),
    row('tools', `${i.tools.join(', ')}${d('tools')}`),
    row(
      'budgets',
      `${tokens(i.budgets.perTask)} tokens per task${d('budgets.per_task')}, ${tokens(i.budgets.perDay)} per day${d('budgets.per_day')}`,
    ),
    row(
      'takeover',
      `grace ${formatDurationMs(t.grace)}${d('takeover.grace')}, peripheral delay ${formatDurationMs(t.peripheralDelay)}${d('takeover.peripheral_delay')}`,
    ),
    row(
      '',
      `cooldown ${formatDurationMs(t.cooldown)}${d('takeover.cooldown')}, escalation ${formatDurationMs(t.escalation)}${d('takeover.escalation')}`,
    ),
    ...(i.invariants.length === 0
      ? [row('invariants', '(none)')]
      : i.invariants.map((inv, n) => row(n === 0 ? 'invariants' : '', `- ${inv}`))),
    row('prompt', `${i.prompt.split('\n').length} lines, ${tokens(Buffer.byteLength(i.prompt))} bytes`),
  ];
  return lines.join('\n');
}

function row(label: string, value: string): string {
  return `${label.padEnd(12)} ${value}`;
}

function tokens(n: number): string {
  return n.toLocaleString('en-US');
}

function stateText(s: IdentityStatus): string {
  switch (s.state) {
    case 'new':
      return 'new: not pinned yet (mlos identity sync)';
    case 'invalid':
      return 'invalid: does not lint, cannot be pinned (mlos identity lint)';
    case 'pinned':
      return 'pinned';
    case 'paused':
      return `paused (mlos identity resume ${s.name})`;
    case 'held':
      return `held until ${new Date(s.heldUntil ?? 0).toISOString()}: its model was unavailable (mlos identity resume ${s.name} ends the hold)`;
    case 'missing-file':
      return 'missing-file: the file is gone; the pin stays in force';
    case 'drifted':
      if (s.fileHash === s.pinnedHash)
        return 'drifted: the file is back to its pin (mlos identity sync clears it)';
      return `drifted: file ${shortHash(s.fileHash ?? '')} ≠ pin (review, then mlos identity accept ${s.name})${s.driftRecorded ? '' : '; not recorded yet (mlos identity sync)'}`;
  }
}

function table(statuses: readonly IdentityStatus[]): string {
  const head = ['NAME', 'STATE', 'HASH', 'RUNNABLE', 'FILE'];
  const rows = statuses.map((s) => [
    s.name,
    s.state,
    shortHash(s.pinnedHash ?? s.fileHash ?? ''),
    s.runnable ? 'yes' : 'no',
    s.file ?? '-',
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const fmt = (r: readonly string[]) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd();
  const notes = statuses.filter((s) => s.state !== 'pinned').map((s) => `  ${s.name}: ${stateText(s)}`);
  return [fmt(head), ...rows.map(fmt), ...(notes.length ? ['', ...notes] : [])].join('\n');
}

function statusJson(s: IdentityStatus): Record<string, unknown> {
  return { ...s, error: s.error ? s.error.issues.map((i) => i.message) : null };
}

function changeLines(report: SyncReport): string[] {
  return report.changes.map((c) => {
    if (c.kind === 'pinned') return `pinned    ${c.name} ${shortHash(c.fileHash)}`;
    if (c.kind === 'restored')
      return `restored  ${c.name}: the file is back to its pinned bytes ${shortHash(c.fileHash)}`;
    const drift = report.drift.find((d) => d.name === c.name);
    return `drifted   ${c.name}: ${drift?.error.message ?? `file ${shortHash(c.fileHash)} ≠ pin ${shortHash(c.pinnedHash ?? '')}`}`;
  });
}

function syncText(report: SyncReport): string[] {
  const changed = new Set(report.changes.map((c) => c.name));
  const lines = changeLines(report);
  for (const d of report.drift)
    if (!changed.has(d.name)) lines.push(`drifted   ${d.name}: ${d.error.message}`);
  for (const name of report.missing) {
    lines.push(
      `missing   ${name}: its file is gone; the pin stays in force (mlos identity pause ${name} to stop it)`,
    );
  }
  for (const e of report.errors) for (const i of e.issues) lines.push(`invalid   ${i.message}`);
  const pinned = report.statuses.filter((s) => s.state === 'pinned' || s.state === 'paused').length;
  if (report.drift.length === 0 && report.errors.length === 0) {
    lines.push(`ok: ${plural(pinned, 'identity', 'identities')} pinned`);
  }
  return lines;
}

function syncJson(report: SyncReport): Record<string, unknown> {
  return {
    changes: report.changes,
    drift: report.drift.map((d) => ({ ...d, error: d.error.message })),
    errors: report.errors.flatMap((e) => e.issues.map((i) => i.message)),
    missing: report.missing,
    statuses: report.statuses.map(statusJson),
  };
}

function acceptText(r: AcceptResult): string {
  switch (r.outcome) {
    case 'pinned':
      return `pinned ${r.name} at ${shortHash(r.newHash)} (first pin)`;
    case 'accepted':
      return `accepted ${r.name}: ${shortHash(r.oldHash ?? '')} → ${shortHash(r.newHash)}${r.changedFields.length ? ` (changed: ${r.changedFields.join(', ')})` : ''}`;
    case 'restored':
      return `${r.name}: the file is back to its pinned bytes ${shortHash(r.newHash)}; drift cleared`;
    case 'unchanged':
      return `${r.name} is already pinned at ${shortHash(r.newHash)}: nothing to accept`;
  }
}

function plural(n: number, word: string, many = `${word}s`): string {
  return `${n} ${n === 1 ? word : many}`;
}
