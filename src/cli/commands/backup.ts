import { resolve } from 'node:path';
import type { Command } from 'commander';
import { withStore } from '../context.js';

export function registerBackupCommand(program: Command): void {
  program
    .command('backup')
    .description('write a consistent copy of the database (safe while others write)')
    .argument('<path>', 'the new file')
    .action(async (path: string, _flags: unknown, command: Command) => {
      await withStore(command, (store) => {
        const target = resolve(path);
        store.backup(target);
        process.stdout.write(`backup written to ${target} (events up to seq ${store.events.headSeq()})\n`);
      });
    });
}
