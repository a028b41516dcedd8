import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmRequest } from '../../../../src/agents/provider.js';
import { LlmCallError } from '../../../../src/agents/provider-error.js';
import { createProvider } from '../../../../src/agents/providers/index.js';
import { OpenAIProvider } from '../../../../src/agents/providers/openai.js';
import { ModelSpecSchema } from '../../../../src/kernel/identity/schema.js';
import { type FakeLlmServer, fake, startFakeLlmServer } from '../../../helpers/fake-llm-server.js';

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: 'gpt-4.1-mini',
    system: [
      { text: 'You are the janitor.', cacheBreakpoint: true },
      { text: 'Scope: cleanup.', cacheBreakpoint: false },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Work on need_1.' }] },
      {
        role: 'assistant',
        content: [
          { type: 'tool_call', id: 'call_1', name: 'get_need', input: { id: 'need_1' } },
          {
            type: 'tool_call',
            id: 'call_2',
            name: 'add_note',
            input: '{"need_id": ',
            inputError: 'not JSON',
          },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', toolCallId: 'call_1', content: '{"ok":true}', isError: false },
          { type: 'tool_result', toolCallId: 'call_2', content: 'arguments are not JSON', isError: true },
          { type: 'text', text: 'Carry on.' },
        ],
      },
    ],
    tools: [
      {
        name: 'get_need',
        description: 'A need.',
        inputSchema: { type: 'object', properties: { id: { type: 'string' } } },
      },
    ],
    maxOutputTokens: 512,
    timeoutMs: 5_000,
    ...overrides,
  };
}

describe('OpenAIProvider', () => {
  let server: FakeLlmServer;
  beforeEach(async () => {
    server = await startFakeLlmServer();
  });
  afterEach(() => server.close());

  it('works with a base URL ending in /v1 (an OpenAI-compatible local server)', async () => {
    const provider = new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl });
    expect(server.openaiBaseUrl.endsWith('/v1')).toBe(true);
    server.reply(fake.toolCall('get_need', { id: 'need_1' }));
    const response = await provider.complete(request());
    expect(server.requests[0]!.path).toBe('/v1/chat/completions');
    expect(server.requests[0]!.headers['authorization']).toBe('Bearer local');
    expect(response.content).toMatchObject([
      { type: 'tool_call', name: 'get_need', input: { id: 'need_1' } },
    ]);
  });

  it('leaves no listener on the caller’s signal after its calls (the SDK adds one per request)', async () => {
    const provider = new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl });
    const session = new AbortController();
    server.reply(...Array.from({ length: 12 }, () => fake.text('ok')));
    for (let i = 0; i < 12; i++) await provider.complete(request({ signal: session.signal }));
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(0);
  });

  it('sends system, tool calls and tool results in chat form', async () => {
    const provider = new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl });
    server.reply(fake.text('ok'));
    await provider.complete(request());
    const body = server.requests[0]!.body;
    expect(body.messages).toEqual([
      { role: 'system', content: 'You are the janitor.\n\nScope: cleanup.' },
      { role: 'user', content: 'Work on need_1.' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          { id: 'call_1', type: 'function', function: { name: 'get_need', arguments: '{"id":"need_1"}' } },
          { id: 'call_2', type: 'function', function: { name: 'add_note', arguments: '{"need_id": ' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_1', content: '{"ok":true}' },
      { role: 'tool', tool_call_id: 'call_2', content: 'ERROR: arguments are not JSON' },
      { role: 'user', content: 'Carry on.' },
    ]);
    expect(body.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'get_need',
          description: 'A need.',
          parameters: { type: 'object', properties: { id: { type: 'string' } } },
        },
      },
    ]);
    for (const key of ['temperature', 'top_p']) expect(body).not.toHaveProperty(key);
  });

  it('uses max_tokens for a local server and max_completion_tokens for the OpenAI API', async () => {
    server.reply(fake.text('a'), fake.text('b'));
    await new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl }).complete(request());
    await new OpenAIProvider({
      apiKey: 'k',
      baseUrl: server.openaiBaseUrl,
      maxTokensField: 'max_completion_tokens',
    }).complete(request());
    expect(server.requests[0]!.body).toMatchObject({ max_tokens: 512 });
    expect(server.requests[0]!.body).not.toHaveProperty('max_completion_tokens');
    expect(server.requests[1]!.body).toMatchObject({ max_completion_tokens: 512 });
    expect(server.requests[1]!.body).not.toHaveProperty('max_tokens');
  });

  it('splits cached tokens out of prompt_tokens and prices them', async () => {
    const provider = new OpenAIProvider({ apiKey: 'k', baseUrl: server.openaiBaseUrl });
    server.reply(fake.text('ok', { input: 1_000_000, cacheRead: 1_000_000, output: 1_000_000 }));
    const response = await provider.complete(request());
    expect(response.usage).toEqual({
      inputTokens: 1_000_000,
      outputTokens: 1_000_000,
      cacheReadTokens: 1_000_000,
      cacheWriteTokens: 0,
    });
    // gpt-4.1-mini: $0.40 in, $0.10 cached, $1.60 out.
    expect(response.costUsd).toBeCloseTo(2.1, 10);
  });

  it('estimates usage when a local server reports none', async () => {
    const provider = new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl });
    server.reply({ kind: 'message', content: [{ type: 'text', text: 'hello there' }], omitUsage: true });
    const response = await provider.complete(request());
    expect(response.usage.inputTokens).toBeGreaterThan(10);
    expect(response.usage.outputTokens).toBeGreaterThan(0);
  });

  it('treats empty arguments as {} and a non-object as malformed', async () => {
    const provider = new OpenAIProvider({ apiKey: 'local', baseUrl: server.openaiBaseUrl });
    server.reply(
      { kind: 'message', content: [{ type: 'tool_call', name: 'heartbeat', rawArguments: '' }] },
      { kind: 'message', content: [{ type: 'tool_call', name: 'heartbeat', rawArguments: '[1,2]' }] },
    );
    const empty = await provider.complete(request());
    expect(empty.content[0]).toMatchObject({ type: 'tool_call', input: {} });
    expect(empty.content[0]).not.toHaveProperty('inputError');
    const array = await provider.complete(request());
    expect(array.content[0]).toMatchObject({
      type: 'tool_call',
      input: [1, 2],
      inputError: expect.stringMatching(/object/),
    });
  });

  it('maps 401 to auth and says which key to check, without the key', async () => {
    const guarded = await startFakeLlmServer({ apiKey: 'sk-right-0123456789abcdef' });
    try {
      const provider = new OpenAIProvider({
        apiKey: 'sk-wrong-0123456789abcdef',
        baseUrl: guarded.openaiBaseUrl,
      });
      const error = (await provider.complete(request()).catch((e: unknown) => e)) as LlmCallError;
      expect(error).toBeInstanceOf(LlmCallError);
      expect(error.kind).toBe('auth');
      expect(error.retryable).toBe(false);
      expect(error.message).not.toContain('sk-wrong');
    } finally {
      await guarded.close();
    }
  });

  it('is what createProvider builds for openai-compatible:MODEL@URL, with the key "local" when none is set', async () => {
    const spec = ModelSpecSchema.parse(`openai-compatible:llama3.2@${server.openaiBaseUrl}`);
    const { provider, model } = createProvider(spec, {});
    expect(provider.name).toBe('openai');
    expect(model).toBe('llama3.2');
    server.reply(fake.text('hi'));
    const response = await provider.complete(request({ model }));
    expect(response.content).toEqual([{ type: 'text', text: 'hi' }]);
    expect(server.requests[0]!.body.model).toBe('llama3.2');
    expect(server.requests[0]!.headers['authorization']).toBe('Bearer local');
    expect(response.costUsd).toBe(0);
  });
});
