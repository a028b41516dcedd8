import { readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative, resolve } from 'node:path';
import { UserError } from '../../store/index.js';
import { IdentityFileError, issue } from './errors.js';
import { safeParseIdentity } from './parse.js';
import type { Identity } from './schema.js';

/** One `<name>.md` file of an identities folder, read once: its bytes, hash and lint result. */
export interface IdentityFile {
  /** The identity name: the file name without `.md`. */
  readonly name: string;
  /** The file as shown to the operator: relative to the working directory when inside it. */
  readonly file: string;
  readonly path: string;
  /** sha256 of the exact bytes read; null when the file could not be read. */
  readonly hash: string | null;
  /** The bytes as UTF-8 text, or null when they are not valid UTF-8. */
  readonly source: string | null;
  readonly identity: Identity | null;
  readonly explicit: ReadonlySet<string>;
  readonly error: IdentityFileError | null;
}

export interface IdentityDir {
  readonly dir: string;
  /** Every identity file, by name. */
  readonly files: readonly IdentityFile[];
  /** The files that lint clean, deeply frozen. */
  readonly identities: readonly Identity[];
  /** One error per file that does not lint, each with every issue of that file. */
  readonly errors: readonly IdentityFileError[];
}

/** How a path is shown in messages: relative to the working directory when it is inside it. */
export function displayPath(path: string): string {
  const rel = relative(process.cwd(), path);
  return rel === '' || rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/**
 * Reads and lints one identity file. Content problems are returned in `error`, never thrown; a
 * file that cannot be read at all is an error of the file as a whole.
 */
export function loadIdentityFile(path: string): IdentityFile {
  const abs = resolve(path);
  const file = displayPath(abs);
  const name = basename(abs).replace(/\.md$/i, '');
  let bytes: Buffer;
  try {
    bytes = readFileSync(abs);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    const err = new IdentityFileError(file, [
      issue(file, null, null, `the file cannot be read (${reason}): check that it exists and is readable`),
    ]);
    return {
      name,
      file,
      path: abs,
      hash: null,
      source: null,
      identity: null,
      explicit: new Set(),
      error: err,
    };
  }
  const result = parseOnce(abs, file, name, bytes);
  const source = result.ok ? result.identity.source : decodeOrNull(bytes);
  return {
    name,
    file,
    path: abs,
    hash: result.ok ? result.identity.hash : result.hash,
    source,
    identity: result.ok ? result.identity : null,
    explicit: result.ok ? result.explicit : new Set(),
    error: result.ok ? null : result.error,
  };
}

/**
 * The last lint of each file, by absolute path: `mlos run` syncs its identities folder every
 * second (the fallback for fs.watch), and parsing is the costly part of a sync; bytes that did not
 * change lint to the same (deeply frozen) result.
 */
const lastParse = new Map<
  string,
  { file: string; bytes: Buffer; result: ReturnType<typeof safeParseIdentity> }
>();

function parseOnce(
  abs: string,
  file: string,
  name: string,
  bytes: Buffer,
): ReturnType<typeof safeParseIdentity> {
  const last = lastParse.get(abs);
  if (last && last.file === file && last.bytes.equals(bytes)) return last.result;
  const result = safeParseIdentity(bytes, { file, name });
  if (lastParse.size >= 1024) lastParse.clear();
  lastParse.set(abs, { file, bytes, result });
  return result;
}

/** Reads one identity file and throws its IdentityFileError (every issue) when it does not lint. */
export function readIdentity(path: string): Identity {
  const loaded = loadIdentityFile(path);
  if (loaded.error || !loaded.identity) throw loaded.error;
  return loaded.identity;
}

/**
 * The identity files of `dir`: every `*.md` directly inside it, except `README.md` and dotfiles,
 * sorted by name. Throws a UserError only when the folder itself cannot be read.
 */
export function listIdentityFiles(dir: string): string[] {
  const abs = resolve(dir);
  let names: string[];
  try {
    if (!statSync(abs).isDirectory())
      throw new UserError(`${displayPath(abs)} is not a folder: pass the identities folder`);
    names = readdirSync(abs);
  } catch (error) {
    if (error instanceof UserError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT')
      throw new UserError(
        `${displayPath(abs)} does not exist: create it with \`mlos init\`, or pass the folder that holds your identity files`,
      );
    throw new UserError(`${displayPath(abs)} cannot be read (${code ?? String(error)})`, { cause: error });
  }
  return names
    .filter((n) => n.toLowerCase().endsWith('.md') && !n.startsWith('.') && n.toLowerCase() !== 'readme.md')
    .filter((n) => isFile(join(abs, n)))
    .sort()
    .map((n) => join(abs, n));
}

/** Loads every identity file of `dir`, collecting all errors rather than stopping at the first. */
export function loadIdentityDir(dir: string): IdentityDir {
  const files = listIdentityFiles(dir).map(loadIdentityFile);
  return {
    dir: resolve(dir),
    files,
    identities: files.flatMap((f) => (f.identity ? [f.identity] : [])),
    errors: files.flatMap((f) => (f.error ? [f.error] : [])),
  };
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeOrNull(bytes: Buffer): string | null {
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}
