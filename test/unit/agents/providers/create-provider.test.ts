import { describe, expect, it } from 'vitest';
import { AnthropicProvider } from '../../../../src/agents/providers/anthropic.js';
import { createProvider } from '../../../../src/agents/providers/index.js';
import { OpenAIProvider } from '../../../../src/agents/providers/openai.js';
import { ScriptedProvider } from '../../../../src/agents/providers/scripted.js';
import { ModelSpecSchema } from '../../../../src/kernel/identity/schema.js';
import { UserError } from '../../../../src/store/errors.js';

const spec = (text: string) => ModelSpecSchema.parse(text);

function userError(fn: () => unknown): UserError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    return error as UserError;
  }
  throw new Error('no error');
}

describe('createProvider', () => {
  it('builds each provider from its spec, with keys from the environment only', () => {
    const env = { ANTHROPIC_API_KEY: 'sk-ant-a', OPENAI_API_KEY: 'sk-o' };
    expect(createProvider(spec('anthropic:claude-sonnet-5-5'), env)).toMatchObject({
      model: 'claude-sonnet-5-5',
    });
    expect(createProvider(spec('anthropic:claude-sonnet-5-5'), env).provider).toBeInstanceOf(
      AnthropicProvider,
    );
    expect(createProvider(spec('openai:gpt-5.5'), env).provider).toBeInstanceOf(OpenAIProvider);
    expect(createProvider(spec('scripted:demo'), {}).provider).toBeInstanceOf(ScriptedProvider);
  });

  it('names the missing key variable', () => {
    expect(userError(() => createProvider(spec('anthropic:claude-sonnet-5-5'), {})).message).toMatch(
      /anthropic:claude-sonnet-5-5 needs an API key: set ANTHROPIC_API_KEY/,
    );
    expect(userError(() => createProvider(spec('openai:gpt-5.5'), { OPENAI_API_KEY: ' ' })).message).toMatch(
      /set OPENAI_API_KEY/,
    );
    expect(userError(() => createProvider(spec('openai:gpt-5.5'), {})).code).toBe('missing_api_key');
  });

  it('lets a flag override the provider, model and base URL, and a flag win over the environment', () => {
    const env = { OPENAI_API_KEY: 'k', MLOS_MODEL: 'from-env' };
    expect(
      createProvider(spec('scripted:demo'), env, { provider: 'openai', model: 'gpt-4.1-mini' }).model,
    ).toBe('gpt-4.1-mini');
    expect(createProvider(spec('scripted:demo'), { ...env, MLOS_PROVIDER: 'openai' }).model).toBe('from-env');
    const local = createProvider(
      spec('anthropic:claude-sonnet-5-5'),
      {},
      {
        provider: 'openai-compatible',
        model: 'qwen3',
        baseUrl: 'http://127.0.0.1:8080/v1',
      },
    );
    expect(local.provider).toBeInstanceOf(OpenAIProvider);
    expect(local.model).toBe('qwen3');
  });

  it('refuses switching provider without a model, except to scripted', () => {
    expect(
      userError(() => createProvider(spec('scripted:demo'), { OPENAI_API_KEY: 'k' }, { provider: 'openai' }))
        .message,
    ).toMatch(/--provider openai needs a model too \(the identity's model is scripted:demo\)/);
    expect(createProvider(spec('anthropic:claude-sonnet-5-5'), {}, { provider: 'scripted' }).model).toBe(
      'default',
    );
  });

  it('refuses an unknown provider and an unknown script', () => {
    expect(
      userError(() => createProvider(spec('scripted:demo'), { MLOS_PROVIDER: 'gemini' })).message,
    ).toMatch(/MLOS_PROVIDER: unknown provider "gemini"/);
    expect(userError(() => createProvider(spec('scripted:nope'), {})).message).toMatch(
      /unknown script "nope"/,
    );
  });

  it('needs a base URL for openai-compatible', () => {
    expect(
      userError(() =>
        createProvider(spec('scripted:demo'), {}, { provider: 'openai-compatible', model: 'm' }),
      ).message,
    ).toMatch(/needs a base URL/);
  });
});
