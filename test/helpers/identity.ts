import { createHash } from 'node:crypto';
import type { Identity, ModelSpec } from '../../src/kernel/identity/schema.js';
import { BUDGET_DEFAULTS, ModelSpecSchema, TAKEOVER_DEFAULTS } from '../../src/kernel/identity/schema.js';
import { DEFAULT_IDENTITY_TOOLS, REQUIRED_TOOLS } from '../../src/kernel/tools.js';

export interface IdentityOverrides {
  readonly name?: string;
  readonly objective?: string;
  readonly invariants?: readonly string[];
  readonly primary?: readonly string[];
  readonly peripheral?: readonly string[];
  readonly tools?: readonly string[];
  /** `anthropic:…`, `openai:…` or `scripted:…` (default `scripted:default`). */
  readonly model?: string;
  readonly prompt?: string;
  readonly capacity?: number;
}

function modelSpec(spec: string): ModelSpec {
  return ModelSpecSchema.parse(spec);
}

function freeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) freeze(v);
    Object.freeze(value);
  }
  return value;
}

/**
 * A deeply frozen Identity built directly, without the identity loader: its `source` is a
 * plausible identity file rendered from the fields, and `hash` the sha256 of those bytes.
 */
export function makeIdentity(overrides: IdentityOverrides = {}): Identity {
  const name = overrides.name ?? 'janitor';
  const objective = overrides.objective ?? 'Keep the workspace clean and the schema enforced.';
  const invariants = overrides.invariants ?? ['Never delete a fact; drop or supersede it.'];
  const primary = overrides.primary ?? ['cleanup', 'schema'];
  const peripheral = overrides.peripheral ?? ['compilation'];
  const tools = [...new Set([...(overrides.tools ?? DEFAULT_IDENTITY_TOOLS), ...REQUIRED_TOOLS])].sort();
  const model = overrides.model ?? 'scripted:default';
  const prompt =
    overrides.prompt ?? `# ${name}\n\nYou keep things tidy. Finish every task with \`finish\`.\n`;
  const source = [
    '---',
    `name: ${name}`,
    `objective: ${objective}`,
    'invariants:',
    ...invariants.map((i) => `  - ${i}`),
    'scope:',
    `  primary: [${primary.join(', ')}]`,
    `  peripheral: [${peripheral.join(', ')}]`,
    `model: ${model}`,
    '---',
    prompt,
  ].join('\n');
  return freeze({
    name,
    objective,
    invariants: [...invariants],
    scope: { primary: [...primary], peripheral: [...peripheral] },
    tools,
    model: modelSpec(model),
    capacity: overrides.capacity ?? 1,
    budgets: { perTask: BUDGET_DEFAULTS.perTask, perDay: BUDGET_DEFAULTS.perDay },
    takeover: {
      grace: TAKEOVER_DEFAULTS.grace,
      peripheralDelay: TAKEOVER_DEFAULTS.peripheralDelay,
      cooldown: TAKEOVER_DEFAULTS.cooldown,
      escalation: TAKEOVER_DEFAULTS.escalation,
    },
    prompt,
    hash: createHash('sha256').update(source).digest('hex'),
    source,
  });
}
