import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { Store, UsageError, UserError } from '../store/index.js';

/** Options every command inherits from the root program. */
export interface GlobalOptions {
  readonly db: string;
  readonly durable: boolean;
  readonly verbose: boolean;
}

export function globalOptions(command: Command): GlobalOptions {
  const opts = command.optsWithGlobals<{ db?: string; durable?: boolean; verbose?: boolean }>();
  return {
    db: resolve(opts.db ?? (process.env['MLOS_DB'] || 'mlos.db')),
    durable: opts.durable ?? process.env['MLOS_DURABLE'] === '1',
    verbose: opts.verbose ?? false,
  };
}

/**
 * Opens the command's database, runs `fn`, and closes it whatever happens. Only commands that
 * add something (`create`) make a new database; the others refuse a missing one, so a mistyped
 * --db or the wrong folder is not taken for an empty project.
 */
export async function withStore<T>(
  command: Command,
  fn: (store: Store) => T | Promise<T>,
  options: { readonly create?: boolean } = {},
): Promise<T> {
  const { db, durable } = globalOptions(command);
  if (!options.create && !existsSync(db))
    throw new UserError(
      `no database at ${db}: run \`mlos init\` (or \`mlos run --demo\`) in this folder, or name an existing one with --db or MLOS_DB`,
    );
  const store = Store.open(db, { durable, actor: 'cli' });
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Prints data as JSON (`--json`) or as the text rendering. */
export function output(json: boolean | undefined, data: unknown, text: () => string): void {
  process.stdout.write(json ? `${JSON.stringify(data, null, 2)}\n` : ensureNewline(text()));
}

function ensureNewline(s: string): string {
  return s === '' || s.endsWith('\n') ? s : `${s}\n`;
}

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};

/** `90s`, `15m`, `1h`, `2d` → milliseconds. */
export function parseDuration(text: string, what = 'duration'): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w)$/.exec(text.trim());
  if (!m)
    throw new UsageError(
      `${what} ${JSON.stringify(text)} is not a duration: use a number and a unit, e.g. 90s, 15m, 1h, 2d`,
    );
  const ms = Math.round(Number(m[1]) * UNITS[m[2]!]!);
  if (ms <= 0) throw new UsageError(`${what} must be longer than 0`);
  return ms;
}

/** `a,b, c` → ['a', 'b', 'c']; repeated flags accumulate. */
export function collectList(value: string, previous: string[] = []): string[] {
  return [
    ...previous,
    ...value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  ];
}

export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses an integer flag, refusing anything else with the flag's name in the message. */
export function parseIntFlag(flag: string): (value: string) => number {
  return (value) => {
    if (!/^-?\d+$/.test(value.trim()))
      throw new UsageError(`${flag} must be a whole number, not ${JSON.stringify(value)}`);
    return Number(value);
  };
}

/** A commander parser for a count that must be at least 1 (sessions, attempts, tokens). */
export function parsePositiveIntFlag(flag: string): (value: string) => number {
  const parse = parseIntFlag(flag);
  return (value) => {
    const n = parse(value);
    if (n < 1) throw new UsageError(`${flag} must be a whole number of at least 1, not ${n}`);
    return n;
  };
}

/** A commander parser for a Redis URL: redis:// or rediss:// (TLS), e.g. redis://127.0.0.1:6379. */
export function parseRedisUrl(flag: string): (value: string) => string {
  return (value) => {
    if (!/^rediss?:\/\/[^/\s?]+(\/\d*)?(\?\S*)?$/.test(value.trim()))
      throw new UsageError(
        `${flag} ${JSON.stringify(value)} is not a Redis URL: use redis://HOST:PORT or rediss://HOST:PORT (TLS), with an optional database number, e.g. redis://127.0.0.1:6379 or redis://127.0.0.1:6379/2`,
      );
    return value.trim();
  };
}
