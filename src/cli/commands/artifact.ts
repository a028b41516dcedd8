import { readFileSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { Command } from 'commander';
import { ARTIFACT_KINDS, type ArtifactKind, LIMITS, UserError } from '../../store/index.js';
import { output, withStore } from '../context.js';

export function registerArtifactCommands(program: Command): void {
  const artifact = program.command('artifact').description('register and inspect artifacts');

  artifact
    .command('add')
    .description('register a file (its content is stored) or a URL; idempotent by content')
    .argument('<path-or-url>', 'a file path or an http(s) URL')
    .option('--title <text>', 'a title (default: the file name or URL)')
    .option('--kind <kind>', `one of ${ARTIFACT_KINDS.join(', ')} (default: file or url)`)
    .option('--summary <text>', 'a short summary, shown when the content does not fit a context pack')
    .option('--need <id>', 'the need that references this artifact')
    .option('--json', 'print the artifact as JSON')
    .action(
      async (
        target: string,
        flags: { title?: string; kind?: string; summary?: string; need?: string; json?: boolean },
        command: Command,
      ) => {
        const isUrl = /^https?:\/\//i.test(target);
        const kind = (flags.kind ?? (isUrl ? 'url' : 'file')) as ArtifactKind;
        let content: string | null = null;
        let uri: string | null = target;
        if (!isUrl) {
          const path = resolve(target);
          let size: number;
          try {
            size = statSync(path).size;
          } catch {
            throw new UserError(
              `${target}: no such file (give a path to an existing file, or an http(s) URL)`,
            );
          }
          if (size > LIMITS.artifactBytes) {
            throw new UserError(
              `${target} is ${size} bytes; the limit for stored content is ${LIMITS.artifactBytes} bytes (16 MiB)`,
            );
          }
          content = readFileSync(path, 'utf8');
          uri = kind === 'file' ? path : null;
        }
        await withStore(
          command,
          (store) => {
            const { artifact: a, created } = store.artifacts.add(
              {
                kind,
                uri,
                title: flags.title ?? (isUrl ? target : basename(target)),
                content,
                summary: flags.summary ?? null,
              },
              flags.need ? { needId: flags.need } : {},
            );
            const { content: _omit, ...shown } = a;
            output(flags.json, { ...shown, created }, () =>
              created ? a.id : `${a.id} (already registered${flags.need ? `; linked to ${flags.need}` : ''})`,
            );
          },
          { create: true },
        );
      },
    );

  artifact
    .command('list')
    .description('list artifacts')
    .option('--need <id>', 'only those this need references')
    .option('--json', 'print JSON')
    .action(async (flags: { need?: string; json?: boolean }, command: Command) => {
      await withStore(command, (store) => {
        const list = (flags.need ? store.artifacts.forNeed(flags.need) : store.artifacts.list()).map(
          ({ content: _c, ...a }) => a,
        );
        output(flags.json, list, () =>
          list.length
            ? list.map((a) => `${a.id}  ${a.kind.padEnd(10)}  ${a.title}`).join('\n')
            : 'no artifacts',
        );
      });
    });
}
