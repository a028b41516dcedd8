import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { UserError } from '../../store/index.js';
import { parseHeader, type ViewFile } from './header.js';
import { compareText } from './markdown.js';

/** Why a file on disk does not match what the database compiles to. */
export type ViewProblemKind = 'missing' | 'stale' | 'edited' | 'extra';

export interface ViewProblem {
  /** Relative to the output folder, POSIX separators. */
  readonly path: string;
  readonly kind: ViewProblemKind;
  readonly detail: string;
}

export interface SyncOptions {
  /** Compare only: write and remove nothing. */
  readonly check?: boolean;
  /** Overwrite files that exist without an mlos header (by default they are refused). */
  readonly force?: boolean;
  /**
   * Folders (relative) whose `.md` files belong to the compiler: one there that carries an mlos
   * header but is no longer compiled is removed.
   */
  readonly managedDirs?: readonly string[];
  /**
   * What this process last wrote or found in place, by path: each file's header line (its seq and
   * body hash name its bytes). A file whose header line is the one recorded is counted unchanged
   * without reading it from disk; the map is brought up to date with what the sync leaves. Ignored
   * with `check`, which always reads. A file changed on disk behind the process's back is only
   * seen by a sync without it.
   */
  readonly known?: Map<string, string>;
  /**
   * Paths compiled but not rendered this time, whose `known` header line still holds (see
   * compileWorkspace): they count as unchanged and are neither read nor removed. Needs `known`.
   */
  readonly kept?: readonly string[];
}

export interface SyncReport {
  readonly outDir: string;
  /** Files written (created or replaced), by path. Empty with `check`. */
  readonly written: string[];
  readonly unchanged: number;
  /** Generated files removed because nothing compiles to them any more. Empty with `check`. */
  readonly removed: string[];
  /** Every file that was (or, with `check`, is) missing, stale, edited by hand or left over, by path. */
  readonly problems: ViewProblem[];
}

/**
 * Makes `outDir` hold exactly `files`, touching only what differs: a file whose bytes already
 * match is not rewritten (its mtime stays), a file is replaced atomically (write, then rename),
 * and a generated page in a managed folder that nothing compiles to any more is removed. A file
 * without an mlos header is never overwritten unless `force`: it may be someone's own file.
 */
export function syncViews(outDir: string, files: readonly ViewFile[], options: SyncOptions = {}): SyncReport {
  const sorted = [...files].sort((a, b) => compareText(a.path, b.path));
  const problems: ViewProblem[] = [];
  const toWrite: ViewFile[] = [];
  const foreign: string[] = [];
  let unchanged = 0;
  const known = options.check ? undefined : options.known;
  const inPlace: ViewFile[] = [];

  for (const file of sorted) {
    if (known !== undefined && known.get(file.path) === headerLineOf(file.content)) {
      unchanged++;
      continue;
    }
    const existing = readIfFile(join(outDir, file.path));
    if (existing === undefined) {
      problems.push({ path: file.path, kind: 'missing', detail: 'missing' });
      toWrite.push(file);
      continue;
    }
    if (existing === file.content) {
      unchanged++;
      inPlace.push(file);
      continue;
    }
    toWrite.push(file);
    const header = parseHeader(existing);
    if (!header) {
      foreign.push(file.path);
      problems.push({ path: file.path, kind: 'edited', detail: 'has no mlos header (edited by hand?)' });
    } else if (!header.intact) {
      problems.push({
        path: file.path,
        kind: 'edited',
        detail: 'edited by hand: its body no longer matches the sha256 in its header',
      });
    } else {
      problems.push({
        path: file.path,
        kind: 'stale',
        detail:
          header.seq === file.seq
            ? `stale: differs from what event seq ${file.seq} compiles to`
            : `stale: reflects event seq ${header.seq}, the database compiles it at seq ${file.seq}`,
      });
    }
  }

  const kept = known !== undefined ? (options.kept ?? []) : [];
  unchanged += kept.length;
  const expected = new Set([...sorted.map((f) => f.path), ...kept]);
  const toRemove: string[] = [];
  for (const dir of options.managedDirs ?? []) {
    for (const name of listMarkdown(join(outDir, dir))) {
      const path = `${dir}/${name}`;
      if (expected.has(path)) continue;
      const text = readIfFile(join(outDir, path));
      if (text === undefined || !parseHeader(text)) continue;
      toRemove.push(path);
      problems.push({
        path,
        kind: 'extra',
        detail: 'stale: nothing in this workspace compiles to it any more',
      });
    }
  }
  problems.sort((a, b) => compareText(a.path, b.path));

  if (options.check) return { outDir, written: [], unchanged, removed: [], problems };
  if (foreign.length && !options.force) {
    throw new UserError(
      `${foreign.map((p) => join(outDir, p)).join(', ')} ${foreign.length === 1 ? 'exists' : 'exist'} without an mlos header: move ${foreign.length === 1 ? 'it' : 'them'} away, compile into another folder (--out), or pass --force to overwrite`,
      { code: 'view_foreign_file' },
    );
  }
  for (const file of toWrite) writeAtomically(join(outDir, file.path), file.content);
  for (const path of toRemove) rmSync(join(outDir, path), { force: true });
  if (known !== undefined) {
    for (const file of [...inPlace, ...toWrite]) known.set(file.path, copyOf(headerLineOf(file.content)));
    for (const path of known.keys()) if (!expected.has(path)) known.delete(path);
  }
  return { outDir, written: toWrite.map((f) => f.path), unchanged, removed: toRemove, problems };
}

/** The first line of a compiled view: its header, which names the file's bytes (seq, body hash). */
function headerLineOf(content: string): string {
  const newline = content.indexOf('\n');
  return newline < 0 ? content : content.slice(0, newline);
}

/**
 * A string that shares no storage with `text`. V8 makes a slice of a long string a view into it, so
 * a header line sliced from a file's content would keep the whole file alive in `known`, which
 * holds one per page for as long as the view keeper runs.
 */
function copyOf(text: string): string {
  return Buffer.from(text, 'utf8').toString('utf8');
}

function readIfFile(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw error;
  }
}

function listMarkdown(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith('.md'))
    .map((d) => d.name)
    .sort(compareText);
}

function writeAtomically(path: string, content: string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, content);
  renameSync(tmp, path);
}
