import { afterEach, describe, expect, it } from 'vitest';
import type { LlmProvider, LlmRequest, LlmResponse, LlmUsage } from '../../src/agents/provider.js';
import { LlmCallError } from '../../src/agents/provider-error.js';
import { AnthropicProvider } from '../../src/agents/providers/anthropic.js';
import { OpenAIProvider } from '../../src/agents/providers/openai.js';
import { parseScript, type ScriptInput } from '../../src/agents/providers/script-schema.js';
import { ScriptedProvider } from '../../src/agents/providers/scripted.js';
import { withRetries } from '../../src/agents/retry.js';
import { type FakeLlmServer, fake, startFakeLlmServer } from '../helpers/fake-llm-server.js';

/**
 * The LlmProvider contract, run on every adapter: the real SDKs against a fake server that speaks
 * their wire format, and the scripted provider playing an equivalent script.
 */

type Scenario =
  | 'tool_call'
  | 'text'
  | 'rate_limit_then_tool_call'
  | 'server_error'
  | 'timeout'
  | 'malformed'
  | 'slow';

interface Harness {
  provider: LlmProvider;
  /** Attempts that reached the model: requests at the fake server, calls of the scripted provider. */
  attempts(): number;
  /** What `usage` must look like for the tool_call scenario. */
  checkUsage(usage: LlmUsage): void;
  close(): Promise<void>;
}

interface AdapterFactory {
  name: string;
  setup(scenario: Scenario): Promise<Harness>;
}

const RETRY_AFTER_MS = 20;
const TOOL_USAGE = { input: 120, output: 30, cacheRead: 1000, cacheWrite: 200 };
const KEY = 'test-key-0123456789';

function fakeReplies(scenario: Scenario) {
  const toolCall = fake.toolCall('get_need', { id: 'need_1' }, { text: 'Let me look.', usage: TOOL_USAGE });
  switch (scenario) {
    case 'tool_call':
      return [toolCall];
    case 'text':
      return [fake.text('All done.')];
    case 'rate_limit_then_tool_call':
      return [fake.rateLimited({ retryAfterMs: RETRY_AFTER_MS }), toolCall];
    case 'server_error':
      return [fake.serverError()];
    case 'timeout':
    case 'slow':
      return [fake.hang()];
    case 'malformed':
      return [fake.malformedToolCall('get_need', '{"id": "need_1"')];
  }
}

function overFakeServer(name: string, make: (server: FakeLlmServer) => LlmProvider): AdapterFactory {
  return {
    name,
    async setup(scenario) {
      const server = await startFakeLlmServer({ apiKey: KEY });
      server.reply(...fakeReplies(scenario));
      return {
        provider: make(server),
        attempts: () => server.requests.length,
        checkUsage: (usage) =>
          expect(usage).toEqual({
            inputTokens: 120,
            outputTokens: 30,
            cacheReadTokens: 1000,
            cacheWriteTokens: 200,
          }),
        close: () => server.close(),
      };
    },
  };
}

function scriptFor(scenario: Scenario): ScriptInput {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a script reference, resolved by the scripted provider.
  const getNeed = { tool: 'get_need', args: { id: '${need.id}' }, say: 'Let me look.' };
  const finish = { tool: 'finish', args: { outcome: 'resolved', summary: 'done' } };
  const failing = (fail: 'rate_limit' | 'server' | 'timeout' | 'malformed') => [
    { ...getNeed, fail: [fail] },
    finish,
  ];
  const steps = {
    tool_call: [getNeed, finish],
    text: [{ say: 'All done.' }, finish],
    rate_limit_then_tool_call: failing('rate_limit'),
    server_error: failing('server'),
    timeout: failing('timeout'),
    malformed: failing('malformed'),
    slow: [{ ...getNeed, latency_ms: 60_000 }, finish],
  }[scenario];
  return { failures: { retry_after_ms: RETRY_AFTER_MS }, rules: [{ steps }] };
}

const scripted: AdapterFactory = {
  name: 'scripted',
  async setup(scenario) {
    const inner = new ScriptedProvider({ script: parseScript(scriptFor(scenario), `contract ${scenario}`) });
    let calls = 0;
    const provider: LlmProvider = {
      name: inner.name,
      complete: (request) => {
        calls++;
        return inner.complete(request);
      },
    };
    return {
      provider,
      attempts: () => calls,
      checkUsage: (usage) => {
        expect(usage.inputTokens).toBeGreaterThan(0);
        expect(usage.outputTokens).toBeGreaterThan(0);
        expect(usage.cacheReadTokens).toBe(0);
        expect(usage.cacheWriteTokens).toBe(0);
      },
      close: async () => {},
    };
  },
};

const factories: AdapterFactory[] = [
  overFakeServer('anthropic', (s) => new AnthropicProvider({ apiKey: KEY, baseUrl: s.anthropicBaseUrl })),
  overFakeServer('openai', (s) => new OpenAIProvider({ apiKey: KEY, baseUrl: s.openaiBaseUrl })),
  scripted,
];

function request(overrides: Partial<LlmRequest> = {}): LlmRequest {
  return {
    model: 'claude-sonnet-5-5',
    system: [
      { text: 'You are the architect.', cacheBreakpoint: true },
      { text: 'Need state: need_1 open.', cacheBreakpoint: true },
      { text: 'Context pack: …', cacheBreakpoint: false },
    ],
    messages: [{ role: 'user', content: [{ type: 'text', text: 'Work on need_1.' }] }],
    tools: [
      {
        name: 'get_need',
        description: 'A need in full.',
        inputSchema: { type: 'object', properties: { id: { type: 'string' } }, required: ['id'] },
      },
    ],
    maxOutputTokens: 1024,
    timeoutMs: 5_000,
    context: {
      identity: 'architect',
      needId: 'need_1',
      taskId: 'task_1',
      needTitle: 'Kernel',
      needTags: ['kernel'],
    },
    ...overrides,
  };
}

async function failure(promise: Promise<unknown>): Promise<LlmCallError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(LlmCallError);
  return error as LlmCallError;
}

describe.each(factories)('LlmProvider contract: $name', (factory) => {
  let harness: Harness | undefined;
  const setup = async (scenario: Scenario) => {
    harness = await factory.setup(scenario);
    return harness;
  };
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });

  it('returns tool calls with parsed input, with the text that came with them', async () => {
    const { provider } = await setup('tool_call');
    const response = await provider.complete(request());
    expect(response.stopReason).toBe('tool_use');
    expect(response.content[0]).toEqual({ type: 'text', text: 'Let me look.' });
    const call = response.content.find((p) => p.type === 'tool_call');
    expect(call).toMatchObject({ type: 'tool_call', name: 'get_need', input: { id: 'need_1' } });
    expect(call).not.toHaveProperty('inputError');
    expect(call?.type === 'tool_call' && call.id.length > 0).toBe(true);
  });

  it('returns a plain text reply with end_turn', async () => {
    const { provider } = await setup('text');
    const response = await provider.complete(request());
    expect(response.stopReason).toBe('end_turn');
    expect(response.content).toEqual([{ type: 'text', text: 'All done.' }]);
  });

  it('reports usage and the model', async () => {
    const h = await setup('tool_call');
    const response: LlmResponse = await h.provider.complete(request());
    h.checkUsage(response.usage);
    expect(response.model).toBe('claude-sonnet-5-5');
    expect(response.costUsd).toBeGreaterThanOrEqual(0);
  });

  it('surfaces a 429 as rate_limit with retryAfterMs, and withRetries succeeds with a fresh attempt', async () => {
    const h = await setup('rate_limit_then_tool_call');
    const first = await failure(h.provider.complete(request()));
    expect(first.kind).toBe('rate_limit');
    expect(first.retryable).toBe(true);
    expect(first.retryAfterMs).toBe(RETRY_AFTER_MS);
    expect(first.code).toBe('provider_error');
    await harness?.close();

    const again = await setup('rate_limit_then_tool_call');
    const slept: number[] = [];
    const perAttempt: number[] = [];
    const response = await withRetries(
      (attempt) => {
        perAttempt.push(attempt);
        return again.provider.complete(request());
      },
      { maxAttempts: 3, baseDelayMs: 1000, maxDelayMs: 8000, sleep: async (ms) => void slept.push(ms) },
    );
    expect(response.stopReason).toBe('tool_use');
    expect(perAttempt).toEqual([1, 2]);
    expect(again.attempts()).toBe(2);
    expect(slept).toEqual([RETRY_AFTER_MS]);
  });

  it('surfaces a 500 as a retryable server error', async () => {
    const h = await setup('server_error');
    const error = await failure(h.provider.complete(request()));
    expect(error.kind).toBe('server');
    expect(error.retryable).toBe(true);
    expect(h.attempts()).toBe(1);
  });

  it('gives up after the request timeout with a retryable timeout error', async () => {
    const h = await setup('timeout');
    const error = await failure(h.provider.complete(request({ timeoutMs: 250 })));
    expect(error.kind).toBe('timeout');
    expect(error.retryable).toBe(true);
    expect(h.attempts()).toBe(1);
  });

  it('returns malformed tool arguments as a tool call with inputError instead of throwing', async () => {
    const h = await setup('malformed');
    const response = await h.provider.complete(request());
    const call = response.content.find((p) => p.type === 'tool_call');
    expect(call?.type).toBe('tool_call');
    expect(call?.type === 'tool_call' && call.name).toBe('get_need');
    expect(call?.type === 'tool_call' && call.inputError).toMatch(/JSON/);
  });

  it('stops when the signal aborts, with a non-retryable aborted error', async () => {
    const h = await setup('slow');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await failure(
      h.provider.complete(request({ signal: controller.signal, timeoutMs: 30_000 })),
    );
    expect(error.kind).toBe('aborted');
    expect(error.retryable).toBe(false);
  });

  it('refuses to start when the signal is already aborted', async () => {
    const h = await setup('tool_call');
    const controller = new AbortController();
    controller.abort();
    const error = await failure(h.provider.complete(request({ signal: controller.signal })));
    expect(error.kind).toBe('aborted');
  });
});
