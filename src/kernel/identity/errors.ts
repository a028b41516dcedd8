import type * as z from 'zod';
import { UserError } from '../../store/index.js';
import { IDENTITY_FIELDS } from './schema.js';
import { didYouMean } from './suggest.js';

/** One thing wrong with an identity file. */
export interface IdentityIssue {
  /** The file as the operator named it (e.g. `identities/janitor.md`). */
  readonly file: string;
  /** The dotted front-matter field (`scope.primary`, `tools[2]`), or null for the file as a whole. */
  readonly field: string | null;
  /** 1-based line in the file, when known. */
  readonly line: number | null;
  /** The whole line to show: `file[:line]: what failed and how to fix it`. */
  readonly message: string;
}

/**
 * An identity file (or pinned identity bytes) that does not lint. Carries every issue found, not
 * only the first; the message is one issue per line.
 */
export class IdentityFileError extends UserError {
  readonly file: string;
  readonly issues: readonly IdentityIssue[];

  constructor(file: string, issues: readonly IdentityIssue[]) {
    super(issues.map((i) => i.message).join('\n'), { code: 'identity_invalid' });
    this.file = file;
    this.issues = issues;
  }
}

/**
 * An issue whose message is `file[:line]: text`, with `text` prefixed by the field (or by
 * `subject` when given) unless it already names it.
 */
export function issue(
  file: string,
  field: string | null,
  line: number | null,
  text: string,
  subject: string | null = field,
): IdentityIssue {
  const where = line === null ? file : `${file}:${line}`;
  return { file, field, line, message: `${where}: ${withSubject(subject, text)}` };
}

function withSubject(subject: string | null, text: string): string {
  if (subject === null || text.startsWith(`${subject} `) || text.startsWith(`${subject}:`)) return text;
  if (/^(must|is|needs) /.test(text)) return `${subject} ${text}`;
  return `${subject}: ${text}`;
}

export type Path = readonly PropertyKey[];

/** `['scope', 'primary', 0]` → `scope.primary[0]`. */
export function fieldOf(path: Path): string | null {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? null : out;
}

/**
 * Turns zod issues over the front matter into issues that name the field and the fix. Unknown
 * fields get a did-you-mean suggestion, including a field that belongs under another parent
 * (a nested field that lost its indentation).
 */
export function issuesFromZod(
  error: z.ZodError,
  file: string,
  lineOf: (path: Path, key?: string) => number | null,
): IdentityIssue[] {
  const out: IdentityIssue[] = [];
  for (const iss of error.issues) {
    if (iss.code === 'unrecognized_keys') {
      const parent = iss.path.map(String).join('.');
      for (const key of iss.keys) {
        const field = parent ? `${parent}.${key}` : key;
        out.push(issue(file, field, lineOf(iss.path, key), unknownField(parent, key), null));
      }
      continue;
    }
    const field = fieldOf(iss.path);
    out.push(issue(file, field, lineOf(iss.path), iss.message, field ?? 'the front matter'));
  }
  return out;
}

function unknownField(parent: string, key: string): string {
  const prefix = parent ? `${parent}.` : '';
  const allowed = IDENTITY_FIELDS[parent] ?? [];
  const guess = didYouMean(key, allowed);
  if (guess) return `unknown field "${prefix}${key}" (did you mean "${prefix}${guess}"?)`;
  for (const [otherParent, fields] of Object.entries(IDENTITY_FIELDS)) {
    if (otherParent !== parent && otherParent !== '' && fields.includes(key)) {
      return `unknown field "${prefix}${key}" (did you mean "${otherParent}.${key}"? indent it under ${otherParent}:)`;
    }
  }
  return `unknown field "${prefix}${key}": the fields here are ${allowed.join(', ')}`;
}
