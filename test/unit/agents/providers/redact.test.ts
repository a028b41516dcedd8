import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmProvider, LlmRequest } from '../../../../src/agents/provider.js';
import { LlmCallError } from '../../../../src/agents/provider-error.js';
import { AnthropicProvider } from '../../../../src/agents/providers/anthropic.js';
import { redact } from '../../../../src/agents/providers/index.js';
import { OpenAIProvider } from '../../../../src/agents/providers/openai.js';
import { type FakeLlmServer, startFakeLlmServer } from '../../../helpers/fake-llm-server.js';

const ANTHROPIC_KEY = 'sk-ant-api03-SECRETSECRETSECRET-0123456789';
const OPENAI_KEY = 'sk-proj-SECRETSECRETSECRET0123456789';
const ENV = {
  ANTHROPIC_API_KEY: ANTHROPIC_KEY,
  OPENAI_API_KEY: OPENAI_KEY,
  HOME: '/home/me',
  MY_SERVICE_TOKEN: 'tok-abcdef',
};

const REQUEST: LlmRequest = {
  model: 'claude-sonnet-5-5',
  system: [{ text: 's', cacheBreakpoint: true }],
  messages: [{ role: 'user', content: [{ type: 'text', text: 'hi' }] }],
  tools: [],
  maxOutputTokens: 100,
  timeoutMs: 5_000,
};

/** A pino logger writing into an array, like the CLI's logger writes to stderr. */
function capturingLogger(filter: (line: string) => string = (l) => l) {
  const lines: string[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(filter(line)) });
  return { logger, lines };
}

describe('redact', () => {
  it('replaces the values of key variables with their names', () => {
    expect(redact(`key=${ANTHROPIC_KEY} other=${OPENAI_KEY}`, ENV)).toBe(
      'key=[redacted ANTHROPIC_API_KEY] other=[redacted OPENAI_API_KEY]',
    );
    expect(redact('x tok-abcdef y', ENV)).toBe('x [redacted MY_SERVICE_TOKEN] y');
    expect(redact('home is /home/me', ENV)).toBe('home is /home/me');
  });

  it('strips key-shaped strings and bearer tokens even when they are not in the environment', () => {
    expect(redact('got sk-ant-api03-ZZZZZZZZZZZZZZZZ back', {})).toBe('got [redacted] back');
    expect(redact('Authorization: Bearer abcdefghijklmnop', {})).toBe('Authorization: Bearer [redacted]');
  });
});

describe('API keys never reach an error message or a log', () => {
  let server: FakeLlmServer;
  beforeEach(async () => {
    server = await startFakeLlmServer();
  });
  afterEach(() => server.close());

  const adapters: Array<{ name: string; key: string; make: (s: FakeLlmServer) => LlmProvider }> = [
    {
      name: 'anthropic',
      key: ANTHROPIC_KEY,
      make: (s) => new AnthropicProvider({ apiKey: ANTHROPIC_KEY, baseUrl: s.anthropicBaseUrl }),
    },
    {
      name: 'openai',
      key: OPENAI_KEY,
      make: (s) => new OpenAIProvider({ apiKey: OPENAI_KEY, baseUrl: s.openaiBaseUrl }),
    },
  ];

  it.each(adapters)('$name: a server echoing the key in its 401 body', async ({ key, make }) => {
    // A hostile or careless server (a proxy, say) repeats the key it was sent.
    server.reply({ kind: 'error', status: 401, message: `invalid key ${key} (Bearer ${key})` });
    const error = (await make(server)
      .complete(REQUEST)
      .catch((e: unknown) => e)) as LlmCallError;
    expect(error).toBeInstanceOf(LlmCallError);
    expect(error.kind).toBe('auth');
    expect(error.message).toContain('invalid key');
    expect(error.message).not.toContain(key);
    expect(String(error.stack)).not.toContain(key);
    expect(JSON.stringify(error)).not.toContain(key);

    // Logged as is, the error carries no key (no vendor error with headers or bodies hangs off it).
    const raw = capturingLogger();
    raw.logger.error({ err: error }, 'model call failed');
    expect(raw.lines.join('')).toContain('model call failed');
    expect(raw.lines.join('')).not.toContain(key);
  });

  it('a logger that filters through redact strips a key from any text', () => {
    const { logger, lines } = capturingLogger((line) => redact(line, ENV));
    const careless = new Error(`request failed with headers {"x-api-key":"${ANTHROPIC_KEY}"}`);
    logger.error({ err: careless, openai: OPENAI_KEY }, `retrying with ${ANTHROPIC_KEY}`);
    const out = lines.join('');
    expect(out).toContain('[redacted ANTHROPIC_API_KEY]');
    expect(out).toContain('[redacted OPENAI_API_KEY]');
    expect(out).not.toContain(ANTHROPIC_KEY);
    expect(out).not.toContain(OPENAI_KEY);
  });
});
