import type { Command } from 'commander';
import { MlosError } from '../../store/index.js';
import { output, withStore } from '../context.js';

export function registerAuditCommands(program: Command): void {
  const audit = program.command('audit').description('check the integrity of the event log');
  audit
    .command('verify')
    .description('walk the hash chain of events; names the first broken seq')
    .option('--json', 'print JSON')
    .action(async (flags: { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const result = store.events.verify();
        output(flags.json, result, () =>
          result.ok
            ? `ok: ${result.checked} events, chain head ${result.headHash.slice(0, 16)}…`
            : `BROKEN at seq ${result.brokenSeq}: ${result.reason} (${result.checked} events before it verified)`,
        );
        if (!result.ok) throw new ChainBrokenError(result.brokenSeq);
      });
    });
}

class ChainBrokenError extends MlosError {
  constructor(seq: number) {
    super(
      'chain_broken',
      `the event chain is broken at seq ${seq}: restore from a backup (mlos backup) or investigate`,
    );
  }
}
