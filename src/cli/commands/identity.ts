import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, Option } from 'commander';
import {
  acceptIdentity,
  displayPath,
  type Identity,
  IdentityWatcher,
  identityFromPin,
  identityStatus,
  identityStatuses,
  loadIdentityDir,
  loadIdentityFile,
  safeParseIdentity,
  syncIdentities,
} from '../../kernel/identity/index.js';
import { NameSchema, NotFoundError, type Store, UserError } from '../../store/index.js';
import { output, withStore } from '../context.js';
import { callGuardAsOperator } from '../operator.js';
import {
  acceptText,
  changeLines,
  plural,
  showText,
  statusJson,
  syncJson,
  syncText,
  table,
} from './identity-text.js';

const DEFAULT_DIR = 'identities';

/** `--identities DIR`, as `mlos init` and `mlos run` name it; `--dir` still works, unlisted. */
interface DirFlags {
  readonly identities?: string;
  readonly dir?: string;
}

const DIR_ALIAS = () =>
  new Option('--dir <dir>', 'the identities folder (old name of --identities)').hideHelp();

function dirOf(flags: DirFlags): string {
  return flags.identities ?? flags.dir ?? DEFAULT_DIR;
}

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
    .argument('[dir]', 'the identities folder (default ./identities)')
    .option('--identities <dir>', 'the identities folder, as the other commands name it')
    .option('--json', 'print JSON')
    .action((dir: string | undefined, flags: { identities?: string; json?: boolean }) => {
      const loaded = loadIdentityDir(dir ?? flags.identities ?? DEFAULT_DIR);
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
    .option('--identities <dir>', 'the identities folder (default ./identities)')
    .addOption(DIR_ALIAS())
    .option('--json', 'print JSON')
    .action(async (flags: DirFlags & { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const dir = resolve(dirOf(flags));
        const statuses = identityStatuses(store, dir);
        const note = existsSync(dir)
          ? ''
          : `\n\n${displayPath(dir)}/ does not exist, so only the pins are listed: name the folder that holds your identity files with --identities DIR\n`;
        output(flags.json, statuses.map(statusJson), () =>
          statuses.length === 0
            ? `no identities: add files to ${displayPath(dir)}/ or run \`mlos init\``
            : table(statuses) + note,
        );
      });
    });

  identity
    .command('show')
    .description('an identity with every value resolved (defaults applied and marked)')
    .argument('<name>', 'identity name')
    .option('--identities <dir>', 'the identities folder (default ./identities)')
    .addOption(DIR_ALIAS())
    .option('--pinned', 'show the pinned bytes (what agents run) instead of the file')
    .option('--json', 'print JSON')
    .action(
      async (name: string, flags: DirFlags & { pinned?: boolean; json?: boolean }, command: Command) => {
        checkName(name);
        await withStore(command, (store) => {
          const { identity, explicit, origin } = resolveShown(
            store,
            dirOf(flags),
            name,
            flags.pinned ?? false,
          );
          const status = identityStatus(store, dirOf(flags), name);
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
    .option('--identities <dir>', 'the identities folder (default ./identities)')
    .addOption(DIR_ALIAS())
    .option('--json', 'print JSON')
    .action(async (name: string, flags: DirFlags & { json?: boolean }, command: Command) => {
      checkName(name);
      await withStore(
        command,
        (store) => {
          const result = acceptIdentity(store, dirOf(flags), name);
          output(flags.json, result, () => acceptText(result));
        },
        { create: true },
      );
    });

  identity
    .command('sync')
    .description(
      'pin new identity files and mark changed ones drifted; exit 1 when any is drifted or does not lint',
    )
    .option('--identities <dir>', 'the identities folder (default ./identities)')
    .addOption(DIR_ALIAS())
    .option('--json', 'print JSON')
    .action(async (flags: DirFlags & { json?: boolean }, command: Command) => {
      await withStore(
        command,
        (store) => {
          const report = syncIdentities(store, dirOf(flags));
          output(flags.json, syncJson(report), () => syncText(report).join('\n'));
          const problems = [
            ...(report.drift.length
              ? [`${plural(report.drift.length, 'identity', 'identities')} drifted`]
              : []),
            ...(report.errors.length ? [`${plural(report.errors.length, 'file')} failing lint`] : []),
          ];
          if (problems.length > 0) {
            throw new IdentityCheckFailedError(
              `${problems.join(' and ')}: see above, and mlos identity list`,
            );
          }
        },
        { create: true },
      );
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
    .option('--identities <dir>', 'the identities folder (default ./identities)')
    .addOption(DIR_ALIAS())
    .action(async (flags: DirFlags, command: Command) => {
      await withStore(
        command,
        async (store) => {
          for (const line of syncText(syncIdentities(store, dirOf(flags)))) process.stdout.write(`${line}\n`);
          await watchUntilSignal(store, dirOf(flags));
        },
        { create: true },
      );
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
