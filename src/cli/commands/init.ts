import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { Store } from '../../store/index.js';
import { globalOptions } from '../context.js';
import { PACKAGE_ROOT } from '../version.js';

export function registerInitCommand(program: Command): void {
  program
    .command('init')
    .description('create the database and, if absent, an identities/ folder with the example identities')
    .option('--identities <dir>', 'where to put the example identities', 'identities')
    .action(async (flags: { identities: string }, command: Command) => {
      const { db, durable } = globalOptions(command);
      const existed = existsSync(db);
      Store.open(db, { durable }).close();
      const lines = [existed ? `database ${db} is ready (already existed)` : `created database ${db}`];
      const target = resolve(flags.identities);
      if (existsSync(target)) {
        lines.push(`${relative(process.cwd(), target) || '.'}/ exists: left as it is`);
      } else {
        const files = writeExampleIdentities(target);
        lines.push(
          `wrote ${files.length} example identities to ${relative(process.cwd(), target)}/: ${files.join(', ')}`,
        );
      }
      lines.push('next: mlos need add "…" --tags kernel, then mlos compile');
      process.stdout.write(`${lines.join('\n')}\n`);
    });
}

/** Copies the example identities shipped with mlos into `target` (created); returns their file names. */
export function writeExampleIdentities(target: string): string[] {
  const source = join(PACKAGE_ROOT, 'identities');
  mkdirSync(target, { recursive: true });
  const files = readdirSync(source).filter((f) => f.endsWith('.md'));
  for (const file of files) copyFileSync(join(source, file), join(target, file));
  return files;
}
