import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmRequest } from '../../../../src/agents/provider.js';
import { LlmCallError } from '../../../../src/agents/provider-error.js';
import { AnthropicProvider } from '../../../../src/agents/providers/anthropic.js';
import {
  type FakeLlmServer,
  type FakeReply,
  fake,
  startFakeLlmServer,
} from '../../../helpers/fake-llm-server.js';

const KEY = 'sk-ant-test-abcdefghijklmnop';
const L1 = 'Identity: architect. Invariants: …';
const L2 = 'Awareness: 3 needs in scope.';
const L3 = 'Context pack for need_1.';

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: 'claude-sonnet-5-5',
    system: [
      { text: L1, cacheBreakpoint: true },
      { text: L2, cacheBreakpoint: true },
      { text: L3, cacheBreakpoint: false },
    ],
    messages: [
      { role: 'user', content: [{ type: 'text', text: 'Work on need_1.' }] },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Reading it.' },
          { type: 'tool_call', id: 'toolu_1', name: 'get_need', input: { id: 'need_1' } },
          {
            type: 'tool_call',
            id: 'toolu_2',
            name: 'add_note',
            input: '{"need_id": ',
            inputError: 'not JSON',
          },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', toolCallId: 'toolu_1', content: '{"need":{"id":"need_1"}}', isError: false },
          { type: 'tool_result', toolCallId: 'toolu_2', content: 'arguments are not JSON', isError: true },
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
    maxOutputTokens: 2048,
    timeoutMs: 5_000,
    ...overrides,
  };
}

/** Every path in a JSON value where `key` appears. */
function pathsOf(value: unknown, key: string, at = '$'): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => pathsOf(v, key, `${at}[${i}]`));
  if (typeof value === 'object' && value !== null) {
    return Object.entries(value).flatMap(([k, v]) => [
      ...(k === key ? [`${at}.${k}`] : []),
      ...pathsOf(v, key, `${at}.${k}`),
    ]);
  }
  return [];
}

describe('AnthropicProvider request', () => {
  let server: FakeLlmServer;
  let provider: AnthropicProvider;
  beforeEach(async () => {
    server = await startFakeLlmServer({ apiKey: KEY });
    provider = new AnthropicProvider({ apiKey: KEY, baseUrl: server.anthropicBaseUrl });
  });
  afterEach(() => server.close());

  it('puts cache_control after the blocks flagged cacheBreakpoint, and nowhere else', async () => {
    server.reply(fake.text('ok'));
    await provider.complete(request());
    const body = server.requests[0]!.body;
    expect(body.system).toEqual([
      { type: 'text', text: L1, cache_control: { type: 'ephemeral' } },
      { type: 'text', text: L2, cache_control: { type: 'ephemeral' } },
      { type: 'text', text: L3 },
    ]);
    expect(pathsOf(body, 'cache_control')).toEqual([
      '$.system[0].cache_control',
      '$.system[1].cache_control',
    ]);
  });

  it('leaves no listener on the caller’s signal after its calls (the SDK adds one per request)', async () => {
    const session = new AbortController();
    server.reply(...Array.from({ length: 12 }, () => fake.text('ok')));
    for (let i = 0; i < 12; i++) await provider.complete(request({ signal: session.signal }));
    expect(getEventListeners(session.signal, 'abort')).toHaveLength(0);
  });

  it('sends the same bytes before the first breakpoint for two tasks of one identity', async () => {
    server.reply(fake.text('a'), fake.text('b'));
    await provider.complete(request());
    await provider.complete(
      request({
        system: [
          { text: L1, cacheBreakpoint: true },
          { text: 'other L2', cacheBreakpoint: true },
        ],
      }),
    );
    const [a, b] = server.requests.map((r) => JSON.stringify(r.body.system[0]));
    expect(a).toBe(b);
  });

  it('sends no sampling parameters, and model, max_tokens and tools as given', async () => {
    server.reply(fake.text('ok'));
    await provider.complete(request());
    const body = server.requests[0]!.body;
    for (const key of ['temperature', 'top_p', 'top_k']) expect(pathsOf(body, key)).toEqual([]);
    expect(body.model).toBe('claude-sonnet-5-5');
    expect(body.max_tokens).toBe(2048);
    expect(body.tools).toEqual([
      {
        name: 'get_need',
        description: 'A need.',
        input_schema: { type: 'object', properties: { id: { type: 'string' } } },
      },
    ]);
  });

  it('maps tool calls and results to tool_use and tool_result blocks; a malformed call is echoed with {}', async () => {
    server.reply(fake.text('ok'));
    await provider.complete(request());
    const messages = server.requests[0]!.body.messages;
    expect(messages[1].content).toEqual([
      { type: 'text', text: 'Reading it.' },
      { type: 'tool_use', id: 'toolu_1', name: 'get_need', input: { id: 'need_1' } },
      { type: 'tool_use', id: 'toolu_2', name: 'add_note', input: {} },
    ]);
    expect(messages[2].content).toEqual([
      { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"need":{"id":"need_1"}}' },
      { type: 'tool_result', tool_use_id: 'toolu_2', content: 'arguments are not JSON', is_error: true },
    ]);
  });

  it('never lets the SDK retry: x-stainless-retry-count is 0 on every request, one request per call', async () => {
    server.reply(
      fake.rateLimited({ retryAfterMs: 1 }),
      fake.serverError(529),
      fake.serverError(503),
      fake.text('ok'),
    );
    for (let i = 0; i < 3; i++)
      await expect(provider.complete(request())).rejects.toBeInstanceOf(LlmCallError);
    await provider.complete(request());
    expect(server.requests).toHaveLength(4);
    expect(server.requests.map((r) => r.headers['x-stainless-retry-count'])).toEqual(['0', '0', '0', '0']);
  });

  it('sends a large max_tokens without streaming, because every request has a timeout', async () => {
    server.reply(fake.text('ok'));
    await provider.complete(request({ maxOutputTokens: 64_000, timeoutMs: 2_000 }));
    expect(server.requests[0]!.body.max_tokens).toBe(64_000);
    expect(server.requests[0]!.body).not.toHaveProperty('stream');
  });

  it('authenticates with the given key and talks to /v1/messages', async () => {
    server.reply(fake.text('ok'));
    await provider.complete(request());
    const r = server.requests[0]!;
    expect(r.path).toBe('/v1/messages');
    expect(r.headers['authorization'] ?? r.headers['x-api-key']).toContain(KEY);
  });

  it('reads cache usage and prices it', async () => {
    server.reply(fake.text('ok', { input: 1_000, output: 1_000, cacheRead: 10_000, cacheWrite: 2_000 }));
    const response = await provider.complete(request());
    expect(response.usage).toEqual({
      inputTokens: 1_000,
      outputTokens: 1_000,
      cacheReadTokens: 10_000,
      cacheWriteTokens: 2_000,
    });
    // Sonnet 5.5: $2 in, $10 out, read 0.1×, write 1.25× → 0.002 + 0.01 + 0.002 + 0.005.
    expect(response.costUsd).toBeCloseTo(0.019, 10);
  });
});

describe('AnthropicProvider errors', () => {
  let server: FakeLlmServer;
  let provider: AnthropicProvider;
  beforeEach(async () => {
    server = await startFakeLlmServer({ apiKey: KEY });
    provider = new AnthropicProvider({ apiKey: KEY, baseUrl: server.anthropicBaseUrl });
  });
  afterEach(() => server.close());

  const cases: Array<{ reply: Extract<FakeReply, { kind: 'error' }>; kind: string; retryable: boolean }> = [
    { reply: { kind: 'error', status: 529, message: 'Overloaded' }, kind: 'server', retryable: true },
    { reply: { kind: 'error', status: 503, message: 'Unavailable' }, kind: 'server', retryable: true },
    {
      reply: { kind: 'error', status: 400, message: 'max_tokens: too large' },
      kind: 'bad_request',
      retryable: false,
    },
    { reply: { kind: 'error', status: 403, message: 'forbidden' }, kind: 'auth', retryable: false },
  ];
  it.each(cases)('maps HTTP $reply.status to $kind', async ({ reply, kind, retryable }) => {
    server.reply(reply);
    const error = (await provider.complete(request()).catch((e: unknown) => e)) as LlmCallError;
    expect(error).toBeInstanceOf(LlmCallError);
    expect(error.kind).toBe(kind);
    expect(error.retryable).toBe(retryable);
    expect(error.status).toBe(reply.status);
    expect(error.requestId).toMatch(/^req_fake_/);
  });

  it('maps a wrong key to auth, naming no key', async () => {
    const wrong = new AnthropicProvider({
      apiKey: 'sk-ant-wrong-0000000000000',
      baseUrl: server.anthropicBaseUrl,
    });
    const error = (await wrong.complete(request()).catch((e: unknown) => e)) as LlmCallError;
    expect(error.kind).toBe('auth');
    expect(error.message).not.toContain('sk-ant-wrong');
  });

  it('reads retry-after in seconds when retry-after-ms is absent', async () => {
    server.reply(fake.rateLimited({ retryAfterSeconds: 3 }));
    const error = (await provider.complete(request()).catch((e: unknown) => e)) as LlmCallError;
    expect(error.kind).toBe('rate_limit');
    expect(error.retryAfterMs).toBe(3000);
  });

  it('maps an unreachable server to connection', async () => {
    await server.close();
    const error = (await provider.complete(request()).catch((e: unknown) => e)) as LlmCallError;
    expect(error.kind).toBe('connection');
    expect(error.retryable).toBe(true);
    server = await startFakeLlmServer();
  });

  it('refuses a body that is not a Messages API response, without retrying', async () => {
    server.reply({ kind: 'raw', status: 200, body: JSON.stringify({ hello: 'world' }) });
    const error = (await provider.complete(request()).catch((e: unknown) => e)) as LlmCallError;
    expect(error.kind).toBe('server');
    expect(error.retryable).toBe(false);
    expect(error.message).toMatch(/not a Messages API response/);
  });

  it('refuses more than 4 cache breakpoints before sending anything', async () => {
    const system = Array.from({ length: 5 }, (_, i) => ({ text: `block ${i}`, cacheBreakpoint: true }));
    const error = (await provider.complete(request({ system })).catch((e: unknown) => e)) as LlmCallError;
    expect(error.kind).toBe('bad_request');
    expect(server.requests).toHaveLength(0);
  });
});
