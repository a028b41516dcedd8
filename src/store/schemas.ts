import * as z from 'zod';
import { UserError } from './errors.js';
import { NEED_STATUSES } from './transitions.js';
import { ARTIFACT_KINDS, EDGE_RELS, NEED_MODES } from './types.js';

export const LIMITS = {
  titleChars: 300,
  bodyBytes: 1024 * 1024,
  acceptanceBytes: 64 * 1024,
  artifactBytes: 16 * 1024 * 1024,
  tagsPerNeed: 32,
} as const;

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');
const mib = (n: number) => `${n / (1024 * 1024)} MiB`;

export const TagSchema = z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, {
  error: (iss) =>
    `tag ${JSON.stringify(iss.input)} is malformed: a tag is 1-64 lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (e.g. kernel, ml-ops)`,
});

export const ScopeSchema = z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, {
  error: (iss) =>
    `scope ${JSON.stringify(iss.input)} is malformed: a scope is 1-64 letters, digits, '.', '_' or '-' (e.g. Sprint_X)`,
});

export const NameSchema = z.string().regex(/^[a-z][a-z0-9-]{0,63}$/, {
  error: (iss) =>
    `name ${JSON.stringify(iss.input)} is malformed: use 1-64 lowercase letters, digits or '-', starting with a letter`,
});

const idOf = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[0-9A-Z]{26}$`), {
    error: (iss) =>
      `${JSON.stringify(iss.input)} is not a ${prefix} id (they look like ${prefix}_01J…, 26 characters after the prefix)`,
  });
export const NeedIdSchema = idOf('need');
export const TaskIdSchema = idOf('task');
export const ArtifactIdSchema = idOf('art');
export const NodeIdSchema = z.string().regex(/^(need|task|art)_[0-9A-Z]{26}$/, {
  error: (iss) => `${JSON.stringify(iss.input)} is not a need, task or artifact id (need_…, task_…, art_…)`,
});

export const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, {
  error: (iss) => `${JSON.stringify(iss.input)} is not a sha256 digest (64 lowercase hex characters)`,
});

export const PrioritySchema = z
  .number({ error: 'priority must be a number from 0 (highest) to 4 (lowest)' })
  .int({ error: 'priority must be a whole number from 0 (highest) to 4 (lowest)' })
  .min(0, { error: (iss) => `priority ${iss.input} is out of range: use 0 (highest) to 4 (lowest)` })
  .max(4, { error: (iss) => `priority ${iss.input} is out of range: use 0 (highest) to 4 (lowest)` });

const sizedText = (field: string, limit: number, hint: string) =>
  z.string().refine((s) => bytes(s) <= limit, {
    error: (iss) =>
      `${field} is ${bytes(String(iss.input))} bytes; the limit is ${limit} bytes (${mib(limit)})${hint}`,
  });

export const TitleSchema = z
  .string()
  .refine((s) => s.trim().length > 0, { error: 'title must not be empty: say in a few words what is needed' })
  // SQLite's length() stops at a NUL, and a line break would split the title's row in the views.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses.
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), {
    error: 'title must be one line without control characters: put the detail in --body',
  })
  .refine((s) => s.length <= LIMITS.titleChars, {
    error: (iss) =>
      `title is ${String(iss.input).length} characters; the limit is ${LIMITS.titleChars}: put the detail in --body`,
  });

const BODY_HINT = ': put large content in an artifact (mlos artifact add) and reference it from the need';

export const NewNeedSchema = z.strictObject({
  title: TitleSchema,
  body: sizedText('body', LIMITS.bodyBytes, BODY_HINT).default(''),
  acceptance: sizedText('acceptance', LIMITS.acceptanceBytes, '').default(''),
  tags: z
    .array(TagSchema)
    .max(LIMITS.tagsPerNeed, { error: `a need has at most ${LIMITS.tagsPerNeed} tags` })
    .default([]),
  priority: PrioritySchema.default(2),
  scope: ScopeSchema.default('default'),
  mode: z.enum(NEED_MODES).default('once'),
  cadenceMs: z.number().int().positive({ error: 'cadence must be positive' }).nullable().default(null),
  notBefore: z.number().int().nullable().default(null),
  dependsOn: z.array(NeedIdSchema).default([]),
});
export type NewNeed = z.input<typeof NewNeedSchema>;

export const NeedPatchSchema = z.strictObject({
  title: TitleSchema.optional(),
  body: sizedText('body', LIMITS.bodyBytes, BODY_HINT).optional(),
  acceptance: sizedText('acceptance', LIMITS.acceptanceBytes, '').optional(),
  tags: z.array(TagSchema).max(LIMITS.tagsPerNeed).optional(),
  priority: PrioritySchema.optional(),
  scope: ScopeSchema.optional(),
  cadenceMs: z.number().int().positive().nullable().optional(),
  notBefore: z.number().int().nullable().optional(),
});
export type NeedPatch = z.input<typeof NeedPatchSchema>;

export const NeedFilterSchema = z.strictObject({
  status: z.array(z.enum(NEED_STATUSES)).optional(),
  tagsAny: z.array(TagSchema).optional(),
  tagsAll: z.array(TagSchema).optional(),
  scope: ScopeSchema.optional(),
  text: z.string().max(200).optional(),
  limit: z.number().int().positive().max(100_000).optional(),
  offset: z.number().int().nonnegative().optional(),
});
export type NeedFilter = z.input<typeof NeedFilterSchema>;

export const EdgeRelSchema = z.enum(EDGE_RELS, {
  error: (iss) => `unknown relation ${JSON.stringify(iss.input)}: use one of ${EDGE_RELS.join(', ')}`,
});

export const NewArtifactSchema = z.strictObject({
  kind: z.enum(ARTIFACT_KINDS, {
    error: (iss) =>
      `unknown artifact kind ${JSON.stringify(iss.input)}: use one of ${ARTIFACT_KINDS.join(', ')}`,
  }),
  uri: z.string().min(1).max(4096).nullable().default(null),
  title: TitleSchema,
  content: sizedText('artifact content', LIMITS.artifactBytes, ': register it by path or URL instead')
    .nullable()
    .default(null),
  summary: z.string().max(4096).nullable().default(null),
});
export type NewArtifact = z.input<typeof NewArtifactSchema>;

export const WorkspaceInputSchema = z.strictObject({
  name: NameSchema,
  tagsAny: z.array(TagSchema).default([]),
  tagsAll: z.array(TagSchema).default([]),
  scope: ScopeSchema.nullable().default(null),
  statuses: z.array(z.enum(NEED_STATUSES)).default([]),
  outDir: z.string().min(1, { error: 'a workspace needs an output folder (--out DIR)' }),
});
export type WorkspaceInput = z.input<typeof WorkspaceInputSchema>;

/** Parses data entering the store; a failure is a UserError whose message names each bad field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, what: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  throw new UserError(`invalid ${what}: ${formatIssues(result.error)}`, { code: 'invalid_input' });
}

export function formatIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((issue) => {
      const path = issue.path.filter((p) => typeof p !== 'number').join('.');
      // Messages that already name their subject need no path prefix.
      return path && !issue.message.toLowerCase().startsWith(String(issue.path[0]).toLowerCase())
        ? `${path}: ${issue.message}`
        : issue.message;
    })
    .join('; ');
}
