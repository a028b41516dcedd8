import { createHash } from 'node:crypto';
import { type Document, isMap, isNode, isScalar, LineCounter, parseDocument } from 'yaml';
import { NameSchema } from '../../store/index.js';
import { IdentityFileError, type IdentityIssue, issue, issuesFromZod, type Path } from './errors.js';
import { deepFreeze } from './freeze.js';
import { type Identity, type IdentityFrontMatter, IdentityFrontMatterSchema } from './schema.js';

export interface ParseIdentityOptions {
  /** How the file is named in messages (e.g. `identities/janitor.md`). */
  readonly file: string;
  /** The name the front matter must carry; by default the file name without `.md`. */
  readonly name?: string;
}

export type ParseIdentityResult =
  | {
      readonly ok: true;
      readonly identity: Identity;
      /** The dotted fields the file sets itself; every other field has its default. */
      readonly explicit: ReadonlySet<string>;
    }
  | { readonly ok: false; readonly error: IdentityFileError; readonly hash: string };

const FRONT_MATTER_HINT =
  "the file must start with a line '---', then the YAML fields, a line '---', then the prompt in markdown";

/** sha256 (hex) of the exact bytes. */
export function identityHash(bytes: Uint8Array | string): string {
  return createHash('sha256')
    .update(typeof bytes === 'string' ? Buffer.from(bytes, 'utf8') : bytes)
    .digest('hex');
}

/**
 * Parses and validates identity bytes: YAML front matter between `---` lines, then the markdown
 * prompt. Collects every issue instead of stopping at the first. Pure: no file system access.
 */
export function safeParseIdentity(
  bytes: Uint8Array | string,
  options: ParseIdentityOptions,
): ParseIdentityResult {
  const { file } = options;
  const hash = identityHash(bytes);
  const fail = (issues: IdentityIssue[]): ParseIdentityResult => ({
    ok: false,
    error: new IdentityFileError(file, issues),
    hash,
  });

  const source = decodeUtf8(bytes);
  if (source === null) {
    return fail([issue(file, null, null, 'the file is not valid UTF-8: save it as UTF-8')]);
  }
  const expectedName = options.name ?? baseName(file);
  const split = splitFrontMatter(source);
  if (!split.ok) return fail([issue(file, null, split.line, split.message)]);

  const lineCounter = new LineCounter();
  const doc = parseDocument(split.yaml, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // An error at the very end (an unclosed bracket) is shown on the last line that has content.
  const lastOffset = Math.max(0, split.yaml.trimEnd().length - 1);
  const toFileLine = (offset: number) =>
    lineCounter.linePos(Math.min(offset, lastOffset)).line + split.yamlStartLine - 1;
  if (doc.errors.length > 0) {
    return fail(
      doc.errors.map((e) =>
        issue(
          file,
          null,
          toFileLine(e.pos[0]),
          `invalid YAML: ${e.message} (nested fields are indented under their parent; quote text that contains ": ")`,
        ),
      ),
    );
  }

  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  if (raw === null || raw === undefined) {
    return fail([
      issue(
        file,
        null,
        split.yamlStartLine,
        'the front matter is empty: it needs at least name, objective and scope',
      ),
    ]);
  }
  const issues: IdentityIssue[] = [];
  const nameCheck = NameSchema.safeParse(expectedName);
  if (!nameCheck.success) {
    issues.push(
      issue(
        file,
        null,
        null,
        `the file name ${JSON.stringify(expectedName)} is not a valid identity name: rename the file to 1-64 lowercase letters, digits or '-' (e.g. janitor.md)`,
      ),
    );
  }

  const parsed = IdentityFrontMatterSchema.safeParse(raw);
  if (!parsed.success) {
    const lineOf = (path: Path, key?: string) => nodeLine(doc, path, key, toFileLine);
    issues.push(...issuesFromZod(parsed.error, file, lineOf));
  }
  const rawName = (raw as { name?: unknown }).name;
  if (nameCheck.success && typeof rawName === 'string' && NameSchema.safeParse(rawName).success) {
    if (rawName !== expectedName) {
      issues.push(
        issue(
          file,
          'name',
          nodeLine(doc, ['name'], undefined, toFileLine),
          `name ${JSON.stringify(rawName)} does not match the file name: set name: ${expectedName} or rename the file to ${rawName}.md`,
        ),
      );
    }
  }
  const prompt = normalizePrompt(split.body);
  if (prompt === '') {
    issues.push(
      issue(
        file,
        null,
        split.bodyStartLine,
        "the prompt is empty: write the agent's instructions in markdown after the closing '---'",
      ),
    );
  }
  if (issues.length > 0 || !parsed.success) {
    issues.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    return fail(issues);
  }
  return {
    ok: true,
    identity: toIdentity(parsed.data, prompt, hash, source),
    explicit: explicitFields(raw),
  };
}

/** Like `safeParseIdentity`, but throws the IdentityFileError (every issue, one per line). */
export function parseIdentity(bytes: Uint8Array | string, options: ParseIdentityOptions): Identity {
  const result = safeParseIdentity(bytes, options);
  if (!result.ok) throw result.error;
  return result.identity;
}

function toIdentity(fm: IdentityFrontMatter, prompt: string, hash: string, source: string): Identity {
  return deepFreeze<Identity>({
    name: fm.name,
    objective: fm.objective,
    invariants: [...fm.invariants],
    scope: { primary: [...fm.scope.primary], peripheral: [...fm.scope.peripheral] },
    tools: [...fm.tools],
    model: { ...fm.model },
    capacity: fm.capacity,
    budgets: { perTask: fm.budgets.per_task, perDay: fm.budgets.per_day },
    takeover: {
      grace: fm.takeover.grace,
      peripheralDelay: fm.takeover.peripheral_delay,
      cooldown: fm.takeover.cooldown,
      escalation: fm.takeover.escalation,
    },
    prompt,
    hash,
    source,
  });
}

// A BOM is kept in the source (the pinned bytes must round-trip exactly) and skipped when parsing.
const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

function decodeUtf8(bytes: Uint8Array | string): string | null {
  if (typeof bytes === 'string') return bytes;
  try {
    return UTF8.decode(bytes);
  } catch {
    return null;
  }
}

function baseName(file: string): string {
  const last = file.split(/[\\/]/).pop() ?? file;
  return last.replace(/\.md$/i, '');
}

type Split =
  | { ok: true; yaml: string; yamlStartLine: number; body: string; bodyStartLine: number }
  | { ok: false; line: number | null; message: string };

function splitFrontMatter(source: string): Split {
  const text = source.startsWith('\uFEFF') ? source.slice(1) : source;
  if (text.trim() === '')
    return { ok: false, line: null, message: `the file is empty: ${FRONT_MATTER_HINT}` };
  const open = /^---[ \t]*\r?\n/.exec(text);
  if (!open) return { ok: false, line: 1, message: `no front matter: ${FRONT_MATTER_HINT}` };
  let pos = open[0].length;
  let line = 2;
  for (;;) {
    const nl = text.indexOf('\n', pos);
    const end = nl === -1 ? text.length : nl;
    if (/^---[ \t]*\r?$/.test(text.slice(pos, end))) {
      return {
        ok: true,
        yaml: text.slice(open[0].length, pos),
        yamlStartLine: 2,
        body: nl === -1 ? '' : text.slice(nl + 1),
        bodyStartLine: line + 1,
      };
    }
    if (nl === -1) break;
    pos = nl + 1;
    line++;
  }
  return {
    ok: false,
    line: 1,
    message: "the front matter is not closed: add a line '---' after the YAML fields, then the prompt",
  };
}

/** Line endings become `\n`; leading blank lines and trailing whitespace go. */
function normalizePrompt(body: string): string {
  return body
    .replace(/\r\n?/g, '\n')
    .replace(/^(?:[ \t]*\n)+/, '')
    .trimEnd();
}

/** The line of the YAML node at `path` (or of `key` in the mapping there), else of its nearest ancestor. */
function nodeLine(
  doc: Document,
  path: Path,
  key: string | undefined,
  toFileLine: (offset: number) => number,
): number | null {
  if (key !== undefined) {
    const parent = path.length === 0 ? doc.contents : doc.getIn(path as unknown[], true);
    if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === key);
      const range = isNode(pair?.key) ? pair.key.range : undefined;
      if (range) return toFileLine(range[0]);
    }
  }
  for (let n = path.length; n > 0; n--) {
    const node = doc.getIn(path.slice(0, n) as unknown[], true);
    if (isNode(node) && node.range) return toFileLine(node.range[0]);
  }
  return null;
}

function explicitFields(raw: unknown): ReadonlySet<string> {
  const out = new Set<string>();
  if (raw === null || typeof raw !== 'object') return out;
  for (const [key, value] of Object.entries(raw)) {
    out.add(key);
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      for (const sub of Object.keys(value)) out.add(`${key}.${sub}`);
    }
  }
  return out;
}
