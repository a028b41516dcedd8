import type { Identity, ModelSpec } from '../../kernel/identity/schema.js';
import { UserError } from '../../store/errors.js';
import type { LlmProvider } from '../provider.js';
import type { Sleep } from '../retry.js';
import { AnthropicProvider } from './anthropic.js';
import { OpenAIProvider } from './openai.js';
import { loadScript, ScriptedProvider } from './scripted.js';

export { AnthropicProvider, type AnthropicProviderOptions } from './anthropic.js';
export { OpenAIProvider, type OpenAIProviderOptions } from './openai.js';
export { redact, redactKeyPatterns, SECRET_ENV_VARS } from './redact.js';
export { parseScript, type Script, type ScriptInput, ScriptSchema } from './script-schema.js';
export {
  BUILTIN_SCRIPT_NAMES,
  loadScript,
  ScriptedProvider,
  type ScriptedProviderOptions,
  type ScriptFunction,
  type ScriptReply,
} from './scripted.js';

export type ProviderKind = ModelSpec['provider'];
const PROVIDER_KINDS: readonly ProviderKind[] = ['anthropic', 'openai', 'openai-compatible', 'scripted'];

/** What a flag (or the environment) may override in an identity's model spec. */
export interface ProviderOverrides {
  /** anthropic, openai, openai-compatible or scripted; anything else is a UserError. */
  provider?: string | undefined;
  model?: string | undefined;
  baseUrl?: string | undefined;
}

export interface CreateProviderOptions {
  /** The scripted provider's sleep (virtual time in the simulator). */
  sleep?: Sleep;
  /** The scripted provider's failure seed. */
  seed?: number;
  /** Where relative script paths are resolved. Default: the process's working directory. */
  cwd?: string;
}

/** Environment variables that override an identity's model when no flag does. */
export const MODEL_ENV_OVERRIDES = {
  provider: 'MLOS_PROVIDER',
  model: 'MLOS_MODEL',
  baseUrl: 'MLOS_BASE_URL',
} as const;

function nonEmpty(value: string | undefined): string | undefined {
  return value !== undefined && value.trim() !== '' ? value.trim() : undefined;
}

function providerKind(value: string, from: string): ProviderKind {
  if ((PROVIDER_KINDS as readonly string[]).includes(value)) return value as ProviderKind;
  throw new UserError(`${from}: unknown provider "${value}": use one of ${PROVIDER_KINDS.join(', ')}`);
}

/** A key from the environment, or a UserError naming the variable to set. */
function requireKey(env: Readonly<Record<string, string | undefined>>, name: string, model: string): string {
  const key = nonEmpty(env[name]);
  if (!key)
    throw new UserError(
      `${model} needs an API key: set ${name} in the environment (keys are read only from there)`,
      { code: 'missing_api_key' },
    );
  return key;
}

/**
 * The provider and model for an identity's model spec, after overrides: a flag wins over the
 * environment (MLOS_PROVIDER, MLOS_MODEL, MLOS_BASE_URL), which wins over the identity file.
 * Keys come only from `env` (ANTHROPIC_API_KEY, OPENAI_API_KEY); a missing one is a UserError
 * naming the variable. An OpenAI-compatible server gets OPENAI_API_KEY when set, else 'local'.
 * Switching provider without naming a model is refused, except to `scripted` (which plays `default`).
 */
export function createProvider(
  spec: ModelSpec,
  env: Readonly<Record<string, string | undefined>>,
  overrides: ProviderOverrides = {},
  options: CreateProviderOptions = {},
): { provider: LlmProvider; model: string } {
  const envProvider = nonEmpty(env[MODEL_ENV_OVERRIDES.provider]);
  const providerOverride = overrides.provider
    ? providerKind(overrides.provider, '--provider')
    : envProvider
      ? providerKind(envProvider, MODEL_ENV_OVERRIDES.provider)
      : undefined;
  const modelOverride = nonEmpty(overrides.model) ?? nonEmpty(env[MODEL_ENV_OVERRIDES.model]);
  const baseUrlOverride = nonEmpty(overrides.baseUrl) ?? nonEmpty(env[MODEL_ENV_OVERRIDES.baseUrl]);

  const kind = providerOverride ?? spec.provider;
  const switched = kind !== spec.provider;
  let model = modelOverride ?? (switched ? undefined : spec.model);
  if (model === undefined) {
    if (kind !== 'scripted') {
      throw new UserError(
        `--provider ${kind} needs a model too (the identity's model is ${spec.spec}): pass --model`,
      );
    }
    model = 'default';
  }
  const baseUrl = baseUrlOverride ?? (switched ? undefined : (spec.baseUrl ?? undefined));
  const label = `${kind}:${model}`;

  switch (kind) {
    case 'anthropic': {
      const apiKey = requireKey(env, 'ANTHROPIC_API_KEY', label);
      const url = baseUrl ?? nonEmpty(env['ANTHROPIC_BASE_URL']);
      return { provider: new AnthropicProvider({ apiKey, ...(url && { baseUrl: url }) }), model };
    }
    case 'openai': {
      const apiKey = requireKey(env, 'OPENAI_API_KEY', label);
      const url = baseUrl ?? nonEmpty(env['OPENAI_BASE_URL']);
      return { provider: new OpenAIProvider({ apiKey, ...(url && { baseUrl: url }) }), model };
    }
    case 'openai-compatible': {
      if (!baseUrl) {
        throw new UserError(
          `${label} needs a base URL: openai-compatible:MODEL@http://127.0.0.1:11434/v1 or --base-url`,
        );
      }
      const apiKey = nonEmpty(env['OPENAI_API_KEY']) ?? 'local';
      return { provider: new OpenAIProvider({ apiKey, baseUrl }), model };
    }
    case 'scripted': {
      const script = loadScript(model, options.cwd !== undefined ? { cwd: options.cwd } : {});
      return {
        provider: new ScriptedProvider({
          script,
          ...(options.sleep && { sleep: options.sleep }),
          ...(options.seed !== undefined && { seed: options.seed }),
        }),
        model,
      };
    }
  }
}

/**
 * Creates each identity's provider now, keyed by `${name}:${hash}`, so that a setup error (a
 * missing API key, `--provider` without `--model`, an unknown script) refuses the run or the
 * worker at start, naming every identity it stops, instead of crashing each of their sessions
 * later while their needs wait for leases to expire.
 */
export function createProviders(
  identities: readonly Identity[],
  env: Readonly<Record<string, string | undefined>>,
  overrides: ProviderOverrides = {},
): Map<string, { provider: LlmProvider; model: string }> {
  const providers = new Map<string, { provider: LlmProvider; model: string }>();
  /** Identity names by problem: one entry for identities that share a model and a missing key. */
  const problems = new Map<string, string[]>();
  for (const identity of identities) {
    try {
      providers.set(`${identity.name}:${identity.hash}`, createProvider(identity.model, env, overrides));
    } catch (error) {
      if (!(error instanceof UserError)) throw error;
      problems.set(error.message, [...(problems.get(error.message) ?? []), identity.name]);
    }
  }
  if (problems.size > 0) {
    const lines = [...problems].map(([problem, names]) => `${names.join(', ')}: ${problem}`);
    throw new UserError(`cannot set up the agents' models: ${lines.join('; ')}`, { code: 'provider_setup' });
  }
  return providers;
}
