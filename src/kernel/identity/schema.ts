import * as z from 'zod';
import { NameSchema, TagSchema } from '../../store/index.js';
import { AGENT_TOOLS, DEFAULT_IDENTITY_TOOLS, OPERATOR_TOOLS, REQUIRED_TOOLS } from '../tools.js';

/** Durations in identity files: `30s`, `5m`, `1h`, `2d`, or a number of milliseconds. */
export const DurationSchema = z.union([
  z.number().int().positive(),
  z.string().transform((text, ctx) => {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(text.trim());
    if (!m) {
      ctx.addIssue({ code: 'custom', message: `"${text}" is not a duration: use e.g. 30s, 5m, 1h or 2d` });
      return z.NEVER;
    }
    const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
      m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
    ];
    return Math.round(Number(m[1]) * unit);
  }),
]);

/**
 * `anthropic:MODEL`, `openai:MODEL`, `openai-compatible:MODEL@BASE_URL`, `scripted:SCRIPT`.
 */
export const ModelSpecSchema = z.string().transform((text, ctx) => {
  const m = /^(anthropic|openai|openai-compatible|scripted):(.+)$/.exec(text.trim());
  if (!m) {
    ctx.addIssue({
      code: 'custom',
      message: `"${text}" is not a model: use anthropic:MODEL, openai:MODEL, openai-compatible:MODEL@BASE_URL or scripted:SCRIPT`,
    });
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
        message: `"${text}" needs a base URL: openai-compatible:MODEL@http://127.0.0.1:11434/v1`,
      });
      return z.NEVER;
    }
    return { provider, model: rest.slice(0, at), baseUrl, spec: text.trim() };
  }
  return { provider, model: rest, baseUrl: null, spec: text.trim() };
});
export type ModelSpec = z.output<typeof ModelSpecSchema>;

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

const ToolNameSchema = z.string().refine((t) => (AGENT_TOOLS as readonly string[]).includes(t), {
  error: (iss) =>
    (OPERATOR_TOOLS as readonly string[]).includes(String(iss.input))
      ? `${iss.input} is an operator tool and cannot be given to an agent`
      : `unknown tool ${JSON.stringify(iss.input)}: use tools from ${AGENT_TOOLS.join(', ')}`,
});

/** The YAML front matter of an identity file. Unknown fields are refused: typos are the usual mistake. */
export const IdentityFrontMatterSchema = z.strictObject({
  name: NameSchema,
  objective: z
    .string({ error: 'objective is required: one sentence saying what this agent exists to serve' })
    .trim()
    .min(1, { error: 'objective must not be empty: one sentence saying what this agent exists to serve' }),
  invariants: z.array(z.string().trim().min(1)).default([]),
  scope: z.strictObject(
    {
      primary: z
        .array(TagSchema, { error: 'scope.primary must list at least one tag (e.g. [cleanup])' })
        .min(1, { error: 'scope.primary must list at least one tag (e.g. [cleanup])' }),
      peripheral: z.array(TagSchema).default([]),
    },
    { error: 'scope is required: scope: { primary: [tag, …], peripheral: [tag, …] }' },
  ),
  tools: z
    .array(ToolNameSchema)
    .default([...DEFAULT_IDENTITY_TOOLS])
    .transform((tools) => [...new Set([...tools, ...REQUIRED_TOOLS])].sort()),
  model: ModelSpecSchema.prefault('scripted:default'),
  capacity: z.number().int().min(1, { error: 'capacity must be at least 1' }).max(64).default(1),
  budgets: z
    .strictObject({
      per_task: z.number().int().positive().default(BUDGET_DEFAULTS.perTask),
      per_day: z.number().int().positive().default(BUDGET_DEFAULTS.perDay),
    })
    .default({ per_task: BUDGET_DEFAULTS.perTask, per_day: BUDGET_DEFAULTS.perDay }),
  takeover: z
    .strictObject({
      grace: DurationSchema.default(TAKEOVER_DEFAULTS.grace),
      peripheral_delay: DurationSchema.default(TAKEOVER_DEFAULTS.peripheralDelay),
      cooldown: DurationSchema.default(TAKEOVER_DEFAULTS.cooldown),
      escalation: DurationSchema.default(TAKEOVER_DEFAULTS.escalation),
    })
    .default({
      grace: TAKEOVER_DEFAULTS.grace,
      peripheral_delay: TAKEOVER_DEFAULTS.peripheralDelay,
      cooldown: TAKEOVER_DEFAULTS.cooldown,
      escalation: TAKEOVER_DEFAULTS.escalation,
    }),
});
export type IdentityFrontMatter = z.output<typeof IdentityFrontMatterSchema>;

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
