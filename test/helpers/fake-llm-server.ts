import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local HTTP server that speaks the Anthropic Messages API (`POST /v1/messages`) and OpenAI
 * Chat Completions (`POST /v1/chat/completions`) wire formats, so tests exercise the real SDKs.
 * It answers from a queue of scripted replies (one per request, whichever API) and records every
 * request's headers and body.
 */

export interface FakeUsage {
  /** Uncached input tokens (OpenAI: prompt_tokens is this plus the cached ones). */
  input?: number;
  output?: number;
  cacheRead?: number;
  cacheWrite?: number;
}

export type FakePart =
  | { type: 'text'; text: string }
  /** `rawArguments`: sent as is (OpenAI `arguments`; Anthropic `input` as a string) to fake a malformed call. */
  | { type: 'tool_call'; id?: string; name: string; input?: unknown; rawArguments?: string };

export type FakeReply =
  | {
      kind: 'message';
      content: FakePart[];
      stop?: 'end_turn' | 'tool_use' | 'max_tokens' | 'refusal';
      usage?: FakeUsage;
      model?: string;
      /** OpenAI only: leave the usage object out, as some local servers do. */
      omitUsage?: boolean;
    }
  | { kind: 'error'; status: number; message?: string; headers?: Record<string, string> }
  /** Never answers (until the client gives up or the server closes). */
  | { kind: 'hang' }
  | { kind: 'raw'; status: number; body: string; headers?: Record<string, string> };

export interface RecordedRequest {
  api: 'anthropic' | 'openai' | 'unknown';
  method: string;
  path: string;
  headers: Record<string, string>;
  // biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary fields of the JSON body.
  body: any;
}

export interface FakeLlmServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** For the Anthropic SDK: no `/v1`. */
  readonly anthropicBaseUrl: string;
  /** For the OpenAI SDK: with `/v1`. */
  readonly openaiBaseUrl: string;
  readonly requests: RecordedRequest[];
  /** Queues replies, served in order. */
  reply(...replies: FakeReply[]): void;
  /** Replies still queued. */
  pending(): number;
  close(): Promise<void>;
}

export interface FakeLlmServerOptions {
  /** When set, requests must carry it (`authorization: Bearer` or `x-api-key`), else 401. */
  apiKey?: string;
}

export const fake = {
  text(text: string, usage?: FakeUsage): FakeReply {
    return { kind: 'message', content: [{ type: 'text', text }], ...(usage && { usage }) };
  },
  toolCall(
    name: string,
    input: unknown,
    options: { text?: string; id?: string; usage?: FakeUsage } = {},
  ): FakeReply {
    return {
      kind: 'message',
      content: [
        ...(options.text ? [{ type: 'text' as const, text: options.text }] : []),
        { type: 'tool_call', name, input, ...(options.id && { id: options.id }) },
      ],
      ...(options.usage && { usage: options.usage }),
    };
  },
  malformedToolCall(name: string, rawArguments: string): FakeReply {
    return { kind: 'message', content: [{ type: 'tool_call', name, rawArguments }] };
  },
  rateLimited(options: { retryAfterMs?: number; retryAfterSeconds?: number } = {}): FakeReply {
    const headers: Record<string, string> = {};
    if (options.retryAfterMs !== undefined) headers['retry-after-ms'] = String(options.retryAfterMs);
    if (options.retryAfterSeconds !== undefined) headers['retry-after'] = String(options.retryAfterSeconds);
    return {
      kind: 'error',
      status: 429,
      message: 'Number of requests has exceeded your rate limit',
      headers,
    };
  },
  serverError(status = 500): FakeReply {
    return { kind: 'error', status, message: 'Internal server error' };
  },
  hang(): FakeReply {
    return { kind: 'hang' };
  },
};

const ANTHROPIC_ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  429: 'rate_limit_error',
  529: 'overloaded_error',
};

function anthropicMessage(reply: Extract<FakeReply, { kind: 'message' }>, model: string, n: number): unknown {
  const content = reply.content.map((part, i) =>
    part.type === 'text'
      ? { type: 'text', text: part.text, citations: null }
      : {
          type: 'tool_use',
          id: part.id ?? `toolu_fake_${n}_${i}`,
          name: part.name,
          input: part.rawArguments ?? part.input ?? {},
          caller: { type: 'direct' },
        },
  );
  const hasTool = reply.content.some((p) => p.type === 'tool_call');
  const u = reply.usage ?? {};
  return {
    id: `msg_fake_${n}`,
    type: 'message',
    role: 'assistant',
    model: reply.model ?? model,
    content,
    stop_reason: reply.stop ?? (hasTool ? 'tool_use' : 'end_turn'),
    stop_sequence: null,
    usage: {
      input_tokens: u.input ?? 10,
      output_tokens: u.output ?? 5,
      cache_creation_input_tokens: u.cacheWrite ?? 0,
      cache_read_input_tokens: u.cacheRead ?? 0,
      cache_creation: null,
      output_tokens_details: null,
      server_tool_use: null,
      service_tier: 'standard',
      speed: null,
      inference_geo: null,
    },
  };
}

const FINISH_REASONS = {
  end_turn: 'stop',
  tool_use: 'tool_calls',
  max_tokens: 'length',
  refusal: 'content_filter',
} as const;

function openaiCompletion(reply: Extract<FakeReply, { kind: 'message' }>, model: string, n: number): unknown {
  const text = reply.content
    .filter((p): p is Extract<FakePart, { type: 'text' }> => p.type === 'text')
    .map((p) => p.text)
    .join('');
  const calls = reply.content
    .filter((p): p is Extract<FakePart, { type: 'tool_call' }> => p.type === 'tool_call')
    .map((p, i) => ({
      id: p.id ?? `call_fake_${n}_${i}`,
      type: 'function',
      function: { name: p.name, arguments: p.rawArguments ?? JSON.stringify(p.input ?? {}) },
    }));
  const stop = reply.stop ?? (calls.length > 0 ? 'tool_use' : 'end_turn');
  const u = reply.usage ?? {};
  const cached = u.cacheRead ?? 0;
  const prompt = (u.input ?? 10) + cached + (u.cacheWrite ?? 0);
  return {
    id: `chatcmpl-fake-${n}`,
    object: 'chat.completion',
    created: 1_700_000_000 + n,
    model: reply.model ?? model,
    choices: [
      {
        index: 0,
        message: {
          role: 'assistant',
          content: text || null,
          refusal: null,
          ...(calls.length > 0 && { tool_calls: calls }),
        },
        finish_reason: FINISH_REASONS[stop],
        logprobs: null,
      },
    ],
    ...(!reply.omitUsage && {
      usage: {
        prompt_tokens: prompt,
        completion_tokens: u.output ?? 5,
        total_tokens: prompt + (u.output ?? 5),
        prompt_tokens_details: {
          cached_tokens: cached,
          ...(u.cacheWrite && { cache_write_tokens: u.cacheWrite }),
        },
      },
    }),
  };
}

function errorBody(api: RecordedRequest['api'], status: number, message: string): unknown {
  if (api === 'anthropic') {
    return { type: 'error', error: { type: ANTHROPIC_ERROR_TYPES[status] ?? 'api_error', message } };
  }
  return {
    error: {
      message,
      type: status === 429 ? 'rate_limit_exceeded' : 'server_error',
      code: null,
      param: null,
    },
  };
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Starts a fake server on 127.0.0.1 and a free port. Close it in afterEach/afterAll. */
export async function startFakeLlmServer(options: FakeLlmServerOptions = {}): Promise<FakeLlmServer> {
  const queue: FakeReply[] = [];
  const requests: RecordedRequest[] = [];
  let served = 0;

  const send = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', ...headers });
    res.end(text);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const raw = await readBody(req);
    const path = (req.url ?? '/').split('?')[0]!;
    const api =
      path === '/v1/messages' ? 'anthropic' : path === '/v1/chat/completions' ? 'openai' : 'unknown';
    let body: unknown = raw;
    try {
      body = raw ? JSON.parse(raw) : undefined;
    } catch {
      // Recorded as text.
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
    requests.push({ api, method: req.method ?? '', path, headers, body });
    const n = ++served;
    const requestId: Record<string, string> = {
      [api === 'anthropic' ? 'request-id' : 'x-request-id']: `req_fake_${n}`,
    };

    if (api === 'unknown' || req.method !== 'POST') {
      send(res, 404, errorBody('openai', 404, `fake server: no route ${req.method} ${path}`));
      return;
    }
    if (options.apiKey !== undefined) {
      const bearer = headers['authorization'];
      const ok = bearer === `Bearer ${options.apiKey}` || headers['x-api-key'] === options.apiKey;
      if (!ok) {
        send(res, 401, errorBody(api, 401, 'invalid api key'), requestId);
        return;
      }
    }
    const reply = queue.shift();
    const model =
      typeof (body as { model?: unknown })?.model === 'string' ? (body as { model: string }).model : 'fake';
    if (!reply) {
      send(res, 500, errorBody(api, 500, 'fake server: no reply queued for this request'), requestId);
      return;
    }
    switch (reply.kind) {
      case 'hang':
        return; // The socket stays open; close() destroys it.
      case 'raw':
        send(res, reply.status, reply.body, { ...requestId, ...reply.headers });
        return;
      case 'error':
        send(res, reply.status, errorBody(api, reply.status, reply.message ?? 'error'), {
          ...requestId,
          ...reply.headers,
        });
        return;
      case 'message':
        send(
          res,
          200,
          api === 'anthropic' ? anthropicMessage(reply, model, n) : openaiCompletion(reply, model, n),
          requestId,
        );
        return;
    }
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { error: { message: String(error) } });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;

  return {
    url,
    anthropicBaseUrl: url,
    openaiBaseUrl: `${url}/v1`,
    requests,
    reply: (...replies) => {
      queue.push(...replies);
    },
    pending: () => queue.length,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
