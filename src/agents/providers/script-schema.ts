import * as z from 'zod';
import { UserError } from '../../store/errors.js';
import { referencesIn, validateReference } from './script-template.js';

/** Failures the scripted provider can inject. */
export const SCRIPT_FAILURES = ['rate_limit', 'server', 'timeout', 'malformed'] as const;
export type ScriptFailure = (typeof SCRIPT_FAILURES)[number];

const LABEL = /^[A-Za-z_][A-Za-z0-9_-]*$/;

const WhenSchema = z
  .strictObject({
    path: z.string({ error: 'must be a reference path such as steps.need.dependsOn.length' }).min(1),
    equals: z.unknown().optional(),
    not_equals: z.unknown().optional(),
    exists: z.boolean({ error: 'must be true or false' }).optional(),
  })
  .refine((w) => [w.equals, w.not_equals, w.exists].filter((v) => v !== undefined).length === 1, {
    error: 'needs exactly one of equals, not_equals, exists',
  });

const StepSchema = z
  .strictObject({
    tool: z.string({ error: 'must be a tool name such as get_need or finish' }).min(1).optional(),
    args: z
      .record(z.string(), z.unknown(), { error: 'must be a mapping of argument names to values' })
      .default({}),
    say: z.string({ error: 'must be a text the model says' }).optional(),
    as: z
      .string({ error: 'must be a label for this step (letters, digits, _ or -)' })
      .regex(LABEL, {
        error: 'must be a label made of letters, digits, _ or - (e.g. sub)',
      })
      .optional(),
    when: WhenSchema.optional(),
    latency_ms: z.number({ error: 'must be a number of milliseconds' }).int().min(0).optional(),
    fail: z
      .array(z.enum(SCRIPT_FAILURES, { error: `must be one of ${SCRIPT_FAILURES.join(', ')}` }), {
        error: `must be a list of failures (${SCRIPT_FAILURES.join(', ')}) injected on this step's first attempts`,
      })
      .default([]),
  })
  .refine((s) => s.tool !== undefined || s.say !== undefined, {
    error: 'needs a tool (a tool call) or say (a text reply)',
  });

const MatchSchema = z.strictObject({
  identity: z
    .union([z.string(), z.array(z.string())], { error: 'must be an identity name or a list of names' })
    .optional(),
  tags: z
    .array(z.string(), { error: 'must be a list of tags (the rule matches a need with any of them)' })
    .optional(),
  title: z
    .string({ error: 'must be a regular expression for the need title' })
    .refine(
      (re) => {
        try {
          new RegExp(re);
          return true;
        } catch {
          return false;
        }
      },
      { error: 'is not a valid regular expression' },
    )
    .optional(),
});

const RuleSchema = z.strictObject({
  name: z.string().optional(),
  match: MatchSchema.default({}),
  steps: z
    .array(StepSchema, { error: 'must be a list of steps' })
    .min(1, { error: 'must list at least one step' }),
});

const RatesSchema = z.strictObject({
  rate_limit: z.number().min(0).max(1).default(0),
  server: z.number().min(0).max(1).default(0),
  timeout: z.number().min(0).max(1).default(0),
  malformed: z.number().min(0).max(1).default(0),
});

/**
 * A script for the scripted provider. Rules are tried in order against the session's identity and
 * need; the first that matches plays its steps, one per model turn. Snake case, like identity files.
 */
export const ScriptSchema = z.strictObject({
  name: z.string().optional(),
  description: z.string().optional(),
  latency_ms: z.number({ error: 'must be a number of milliseconds' }).int().min(0).default(0),
  failures: z
    .strictObject({
      seed: z.number().int().default(0),
      rates: RatesSchema.prefault({}),
      retry_after_ms: z.number().int().min(0).default(1000),
    })
    .refine((f) => f.rates.rate_limit + f.rates.server + f.rates.timeout + f.rates.malformed <= 1, {
      error: 'the failure rates add up to more than 1',
    })
    .prefault({}),
  rules: z
    .array(RuleSchema, { error: 'must be a list of rules' })
    .min(1, { error: 'must list at least one rule' }),
});

export type Script = z.output<typeof ScriptSchema>;
export type ScriptInput = z.input<typeof ScriptSchema>;
export type ScriptRule = Script['rules'][number];
export type ScriptStep = ScriptRule['steps'][number];
export type ScriptWhen = NonNullable<ScriptStep['when']>;

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) out += typeof key === 'number' ? `[${key}]` : out ? `.${String(key)}` : String(key);
  return out;
}

/**
 * Validates a script. Errors name the source and the field, e.g.
 * `scripts/x.yaml: rules[0].steps[2].args.need_id: ${steps.sub.id} refers to "sub", which no earlier step defines`.
 */
export function parseScript(value: unknown, source: string): Script {
  const parsed = ScriptSchema.safeParse(value);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `${source}: ${pathOf(i.path) || '(top)'}: ${i.message}`);
    throw new UserError(lines.join('\n'), { code: 'invalid_script' });
  }
  const problems: string[] = [];
  parsed.data.rules.forEach((rule, r) => {
    const labels: string[] = [];
    rule.steps.forEach((step, s) => {
      const at = `rules[${r}].steps[${s}]`;
      for (const { ref, where } of referencesIn(step.args, 'args')) {
        const problem = validateReference(ref, labels);
        if (problem) problems.push(`${at}.${where}: \${${ref}} ${problem}`);
      }
      if (step.say !== undefined) {
        for (const { ref } of referencesIn(step.say, 'say')) {
          const problem = validateReference(ref, labels);
          if (problem) problems.push(`${at}.say: \${${ref}} ${problem}`);
        }
      }
      if (step.when) {
        const problem = validateReference(step.when.path, labels);
        if (problem) problems.push(`${at}.when.path: ${step.when.path} ${problem}`);
      }
      if (step.as !== undefined) {
        if (labels.includes(step.as))
          problems.push(`${at}.as: label "${step.as}" is already used by an earlier step`);
        if (step.tool === undefined) problems.push(`${at}.as: only a tool call has a result to label`);
        labels.push(step.as);
      }
    });
    const last = rule.steps[rule.steps.length - 1]!;
    if (last.tool !== 'finish' || last.when) {
      problems.push(
        `rules[${r}].steps: the last step must be a finish call without when, so every session ends (e.g. - tool: finish, args: { outcome: resolved, summary: done })`,
      );
    }
  });
  if (problems.length > 0) {
    throw new UserError(problems.map((p) => `${source}: ${p}`).join('\n'), { code: 'invalid_script' });
  }
  return parsed.data;
}
