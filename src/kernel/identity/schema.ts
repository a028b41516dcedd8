import * as z from 'zod';
import { NameSchema, TagSchema } from '../../store/index.js';
import { AGENT_TOOLS, DEFAULT_IDENTITY_TOOLS, OPERATOR_TOOLS, REQUIRED_TOOLS } from '../tools.js';
import { formatDurationMs, parseDurationValue } from './duration.js';
import { didYouMean } from './suggest.js';

/*
 * Message convention: a message either starts with the field it is about ("scope.primary must …")
 * or is a predicate ("must …", "is required: …") that the issue formatter prefixes with the field
 * path. Either way the operator reads the file, the field and the fix on one line.
 */

type IssueLike = { readonly code?: string; readonly input?: unknown };

function describeValue(value: unknown): string {
  if (value === null) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

/** An error map for a field of the wrong type (or missing): "is required: …" or "must be …, not …". */
function typeError(what: string): (iss: IssueLike) => string | undefined {
  return (iss) => {
    if (iss.code !== undefined && iss.code !== 'invalid_type' && iss.code !== 'invalid_union')
      return undefined;
    if (iss.input === undefined) return `is required: ${what}`;
    if (iss.input === null) return `is empty: ${what}`;
    return `must be ${what}, not ${describeValue(iss.input)}`;
  };
}

const DURATION_HINT = 'a duration such as 30s, 5m, 1h or 2d (or a whole number of milliseconds)';

/** Durations in identity files: `30s`, `5m`, `1h`, `2d`, or a number of milliseconds. Output: ms. */
export const DurationSchema = z
  .union([z.number(), z.string()], { error: typeError(DURATION_HINT) })
  .transform((value, ctx) => {
    const ms = parseDurationValue(value);
    if (ms === null) {
      ctx.addIssue({ code: 'custom', message: `must be ${DURATION_HINT}, not ${JSON.stringify(value)}` });
      return z.NEVER;
    }
    return ms;
  });

const MODEL_HINT =
  'a model spec: anthropic:MODEL, openai:MODEL, openai-compatible:MODEL@BASE_URL or scripted:SCRIPT (e.g. anthropic:claude-sonnet-4-5)';

/**
 * `anthropic:MODEL`, `openai:MODEL`, `openai-compatible:MODEL@BASE_URL`, `scripted:SCRIPT`.
 */
export const ModelSpecSchema = z.string({ error: typeError(MODEL_HINT) }).transform((text, ctx) => {
  const m = /^(anthropic|openai|openai-compatible|scripted):(\S+)$/.exec(text.trim());
  if (!m) {
    ctx.addIssue({ code: 'custom', message: `must be ${MODEL_HINT}, not ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  const provider = m[1] as 'anthropic' | 'openai' | 'openai-compatible' | 'scripted';
  const rest = m[2]!;
  if (provider === 'openai-compatible') {
    const at = rest.lastIndexOf('@');
    const baseUrl = at > 0 ? rest.slice(at + 1) : '';
    if (!/^https?:\/\/.+/.test(baseUrl)) {
      ctx.addIssue({
        code: 'custom',
        message: `${JSON.stringify(text)} needs a model and a base URL: openai-compatible:MODEL@http://127.0.0.1:11434/v1`,
      });
      return z.NEVER;
    }
    return { provider, model: rest.slice(0, at), baseUrl, spec: text.trim() };
  }
  return { provider, model: rest, baseUrl: null, spec: text.trim() };
});
export type ModelSpec = z.output<typeof ModelSpecSchema>;

/** The model of an identity whose file names none: the scripted demo model, so nothing is billed by surprise. */
export const DEFAULT_MODEL = 'scripted:default';

export const TAKEOVER_DEFAULTS = {
  /** How long an unmet need waits before primary-scope agents may claim it. */
  grace: 30_000,
  /** Extra wait for peripheral-scope agents after the grace. */
  peripheralDelay: 60_000,
  /** After a takeover, how long before the need may be taken over again. */
  cooldown: 120_000,
  /** Unmet this long with no claimant: the need is orphaned and escalated. */
  escalation: 600_000,
} as const;

export const BUDGET_DEFAULTS = { perTask: 200_000, perDay: 2_000_000 } as const;

export const CAPACITY_DEFAULT = 1;
export const CAPACITY_MAX = 64;

const ToolNameSchema = z
  .string({ error: typeError('a guard tool name (e.g. get_need)') })
  .superRefine((tool, ctx) => {
    if ((AGENT_TOOLS as readonly string[]).includes(tool)) return;
    if ((OPERATOR_TOOLS as readonly string[]).includes(tool)) {
      ctx.addIssue({
        code: 'custom',
        message: `${tool} is an operator tool and cannot be given to an agent: remove it`,
      });
      return;
    }
    const guess = didYouMean(tool, AGENT_TOOLS);
    ctx.addIssue({
      code: 'custom',
      message: guess
        ? `unknown tool ${JSON.stringify(tool)} (did you mean ${JSON.stringify(guess)}?)`
        : `unknown tool ${JSON.stringify(tool)}: use tools from ${AGENT_TOOLS.join(', ')}`,
    });
  });

const TokensSchema = z
  .number({ error: typeError('a whole number of tokens (e.g. 200000)') })
  .int({ error: 'must be a whole number of tokens (e.g. 200000)' })
  .positive({ error: 'must be a positive number of tokens (e.g. 200000)' });

const ScopeFieldsSchema = z.strictObject(
  {
    primary: z
      .array(TagSchema, { error: 'scope.primary must list at least one tag (e.g. [cleanup])' })
      .min(1, { error: 'scope.primary must list at least one tag (e.g. [cleanup])' }),
    peripheral: z
      .array(TagSchema, { error: typeError('a list of tags (e.g. [schema, compilation])') })
      .default([]),
  },
  {
    error: typeError(
      'the tags this identity watches, e.g. scope: { primary: [cleanup], peripheral: [schema] }',
    ),
  },
);

const BudgetsFieldsSchema = z
  .strictObject(
    {
      per_task: TokensSchema.default(BUDGET_DEFAULTS.perTask),
      per_day: TokensSchema.default(BUDGET_DEFAULTS.perDay),
    },
    { error: typeError('a mapping, e.g. budgets: { per_task: 200000, per_day: 2000000 }') },
  )
  .superRefine((b, ctx) => {
    if (b.per_task > b.per_day) {
      ctx.addIssue({
        code: 'custom',
        path: ['per_task'],
        message: `budgets.per_task (${b.per_task}) is larger than budgets.per_day (${b.per_day}): one task could never spend it; raise per_day or lower per_task`,
      });
    }
  });

const TakeoverFieldsSchema = z
  .strictObject(
    {
      grace: DurationSchema.default(TAKEOVER_DEFAULTS.grace),
      peripheral_delay: DurationSchema.default(TAKEOVER_DEFAULTS.peripheralDelay),
      cooldown: DurationSchema.default(TAKEOVER_DEFAULTS.cooldown),
      escalation: DurationSchema.default(TAKEOVER_DEFAULTS.escalation),
    },
    {
      error: typeError(
        'a mapping, e.g. takeover: { grace: 30s, peripheral_delay: 1m, cooldown: 2m, escalation: 10m }',
      ),
    },
  )
  .superRefine((t, ctx) => {
    // Escalation orphans a need nobody claimed; it must leave peripheral agents their turn first.
    if (t.escalation <= t.grace + t.peripheral_delay) {
      ctx.addIssue({
        code: 'custom',
        path: ['escalation'],
        message: `takeover.escalation (${formatDurationMs(t.escalation)}) must be longer than takeover.grace + takeover.peripheral_delay (${formatDurationMs(t.grace + t.peripheral_delay)}), or needs are escalated before any agent may take them over`,
      });
    }
  });

/** The YAML front matter of an identity file. Unknown fields are refused: typos are the usual mistake. */
export const IdentityFrontMatterSchema = z.strictObject(
  {
    name: z
      .string({ error: typeError('the file name without .md (e.g. name: janitor for janitor.md)') })
      .pipe(NameSchema),
    objective: z
      .string({ error: typeError('one sentence saying what this agent exists to serve') })
      .trim()
      .min(1, { error: 'objective must not be empty: one sentence saying what this agent exists to serve' }),
    invariants: z
      .array(
        z
          .string({ error: typeError('a sentence (quote it when it contains ": ")') })
          .trim()
          .min(1, { error: 'must not be empty: write the rule as one sentence' }),
        { error: typeError('a list of sentences (e.g. invariants: ["Never delete a fact."])') },
      )
      .default([]),
    scope: ScopeFieldsSchema,
    tools: z
      .array(ToolNameSchema, { error: typeError('a list of guard tool names (e.g. [get_need, add_note])') })
      .default([...DEFAULT_IDENTITY_TOOLS])
      .transform((tools) => [...new Set([...tools, ...REQUIRED_TOOLS])].sort()),
    model: ModelSpecSchema.prefault(DEFAULT_MODEL),
    capacity: z
      .number({
        error: typeError(`a whole number from 1 to ${CAPACITY_MAX} (tasks one worker runs at once)`),
      })
      .int({ error: `must be a whole number from 1 to ${CAPACITY_MAX} (tasks one worker runs at once)` })
      .min(1, {
        error: 'capacity must be at least 1: it is how many tasks one worker runs at once (e.g. capacity: 1)',
      })
      .max(CAPACITY_MAX, {
        error: `capacity must be at most ${CAPACITY_MAX}: cap a worker with --concurrency instead`,
      })
      .default(CAPACITY_DEFAULT),
    budgets: BudgetsFieldsSchema.prefault({}),
    takeover: TakeoverFieldsSchema.prefault({}),
  },
  { error: typeError('YAML fields (name: …, objective: …, scope: …)') },
);
export type IdentityFrontMatter = z.output<typeof IdentityFrontMatterSchema>;

/** The fields each mapping of the front matter accepts, by dotted parent path ('' is the top level). */
export const IDENTITY_FIELDS: Readonly<Record<string, readonly string[]>> = {
  '': Object.keys(IdentityFrontMatterSchema.shape),
  scope: Object.keys(ScopeFieldsSchema.shape),
  budgets: ['per_task', 'per_day'],
  takeover: ['grace', 'peripheral_delay', 'cooldown', 'escalation'],
};

/** A loaded, validated identity. Deeply frozen once loaded. */
export interface Identity {
  readonly name: string;
  readonly objective: string;
  readonly invariants: readonly string[];
  readonly scope: { readonly primary: readonly string[]; readonly peripheral: readonly string[] };
  readonly tools: readonly string[];
  readonly model: ModelSpec;
  readonly capacity: number;
  readonly budgets: { readonly perTask: number; readonly perDay: number };
  readonly takeover: {
    readonly grace: number;
    readonly peripheralDelay: number;
    readonly cooldown: number;
    readonly escalation: number;
  };
  /** The markdown prompt after the front matter. */
  readonly prompt: string;
  /** sha256 of the exact file bytes. */
  readonly hash: string;
  /** The exact file bytes (UTF-8), as pinned. */
  readonly source: string;
}
