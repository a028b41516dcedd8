import type { Command } from 'commander';
import { EDGE_RELS } from '../../store/index.js';
import { output, withStore } from '../context.js';

export function registerLinkCommands(program: Command): void {
  program
    .command('link')
    .description(`add an edge FROM REL TO (REL: ${EDGE_RELS.join(', ')})`)
    .argument('<from>', 'need, task or artifact id')
    .argument('<rel>', 'relation')
    .argument('<to>', 'need, task or artifact id')
    .option('--json', 'print the edge as JSON')
    .action(async (from: string, rel: string, to: string, flags: { json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const edge = store.edges.link(from, rel, to);
        output(flags.json, edge, () => `${edge.from} ${edge.rel} ${edge.to}`);
      });
    });

  program
    .command('unlink')
    .description('remove the edge FROM REL TO')
    .argument('<from>', 'need, task or artifact id')
    .argument('<rel>', 'relation')
    .argument('<to>', 'need, task or artifact id')
    .action(async (from: string, rel: string, to: string, _flags: unknown, command: Command) => {
      await withStore(command, (store) => {
        store.edges.unlink(from, rel, to);
        process.stdout.write(`removed ${from} ${rel} ${to}\n`);
      });
    });
}
