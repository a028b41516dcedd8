import type { Command } from 'commander';
import { type BootPayload, compileBootPayload, DEFAULT_BOOT_BUDGET } from '../../kernel/boot.js';
import { identityFromPin } from '../../kernel/identity/index.js';
import type { Identity } from '../../kernel/identity/schema.js';
import { type ContextPack, compilePack, DEFAULT_PACK_BUDGET } from '../../kernel/pack/compile.js';
import { formatCount } from '../../kernel/tokens.js';
import { type Store, UsageError, UserError } from '../../store/index.js';
import { output, parseIntFlag, withStore } from '../context.js';

/** The identity as pinned in the database: packs and boot payloads never read identity files. */
function pinnedIdentity(store: Store, name: string): Identity {
  const pin = store.identities.get(name);
  if (!pin) {
    const pinned = store.identities.list().map((p) => p.name);
    throw new UserError(
      pinned.length
        ? `identity ${name} has no pin in this database: use one of ${pinned.join(', ')}, or pin a new identity file with \`mlos identity sync\``
        : `identity ${name} has no pin, and this database pins no identity yet: pin the identity files with \`mlos identity sync\``,
      { code: 'not_found' },
    );
  }
  return identityFromPin(pin);
}

function positiveBudget(flag: string): (value: string) => number {
  const parse = parseIntFlag(flag);
  return (value) => {
    const n = parse(value);
    if (n <= 0) throw new UsageError(`${flag} must be a positive number of tokens, not ${n}`);
    return n;
  };
}

function packSummary(pack: ContextPack): string {
  return `${formatCount(pack.tokens)} of ${formatCount(pack.budget)} tokens · ${pack.items.length} items · ${pack.pointers.length} pointers · ${pack.omitted.dropped} dropped · sha256 ${pack.sha256}`;
}

function renderBoot(boot: BootPayload): string {
  const out: string[] = [];
  const section = (where: string, block: BootPayload['system'][number]) => {
    const cache = block.cacheBreakpoint ? ' · cache breakpoint after' : '';
    out.push(`=== ${where} ${block.section} · ${formatCount(block.tokens)} tokens${cache} ===`);
    out.push(block.text.replace(/\n$/, ''));
  };
  for (const [i, block] of boot.system.entries()) section(`system[${i}]`, block);
  for (const [i, block] of boot.messages[0]!.content.entries()) section(`user[${i}]`, block);
  out.push(`=== tools (${boot.tools.length}): ${boot.tools.join(', ')} ===`);
  out.push(
    `=== total ${formatCount(boot.tokens)} of ${formatCount(boot.budget)} tokens · identity ${boot.identity} ${boot.identityHash.slice(0, 12)} · pack sha256 ${boot.pack.sha256} · payload sha256 ${boot.sha256} ===`,
  );
  return `${out.join('\n')}\n`;
}

export function registerPackCommands(program: Command): void {
  program
    .command('pack')
    .description('compile the context pack of a need for an identity (Layer 3) and print it')
    .argument('<need-id>', 'the need')
    .requiredOption('--identity <name>', 'the identity whose session would get the pack (as pinned)')
    .option(
      '--budget <tokens>',
      `token budget, header included (default ${DEFAULT_PACK_BUDGET})`,
      positiveBudget('--budget'),
    )
    .option('--json', 'print the pack and its accounting as JSON')
    .action(
      async (
        needId: string,
        flags: { identity: string; budget?: number; json?: boolean },
        command: Command,
      ) => {
        await withStore(command, (store) => {
          const identity = pinnedIdentity(store, flags.identity);
          const pack = compilePack(store.packReads, needId, identity, flags.budget ?? DEFAULT_PACK_BUDGET);
          output(flags.json, pack, () => pack.text);
          if (!flags.json) process.stderr.write(`pack: ${packSummary(pack)}\n`);
        });
      },
    );

  program
    .command('boot')
    .description(
      'compile the boot payload of a session (L1 identity, L2 awareness, L3 pack, task) and print it',
    )
    .argument('<identity>', 'the identity (as pinned)')
    .requiredOption('--need <id>', 'the need the session works on')
    .option(
      '--budget <tokens>',
      `token budget of system blocks and first message (default ${DEFAULT_BOOT_BUDGET})`,
      positiveBudget('--budget'),
    )
    .option('--json', 'print the payload as JSON')
    .action(
      async (name: string, flags: { need: string; budget?: number; json?: boolean }, command: Command) => {
        await withStore(command, (store) => {
          const identity = pinnedIdentity(store, name);
          const boot = compileBootPayload(
            store.packReads,
            identity,
            flags.need,
            flags.budget ?? DEFAULT_BOOT_BUDGET,
          );
          // The pack's text is the L3 block already: do not print it twice.
          const { text: _text, ...pack } = boot.pack;
          output(flags.json, { ...boot, pack }, () => renderBoot(boot));
        });
      },
    );
}
