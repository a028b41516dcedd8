import Anthropic, {
  AnthropicError,
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
} from '@anthropic-ai/sdk';
import type {
  ContentBlockParam,
  MessageCreateParamsNonStreaming,
  MessageParam,
  TextBlockParam,
  Tool,
} from '@anthropic-ai/sdk/resources/messages';
import * as z from 'zod';
import { costUsd, priceOf } from '../pricing.js';
import type { ContentPart, LlmMessage, LlmProvider, LlmRequest, LlmResponse, LlmUsage } from '../provider.js';
import { LlmCallError } from '../provider-error.js';
import { redactKeyPatterns, redactValues } from './redact.js';
import { sdkCallError, withRequestSignal } from './sdk-error.js';
import { isObject, toolCallFromValue } from './tool-input.js';

export interface AnthropicProviderOptions {
  /** The API key; the composition root reads it from ANTHROPIC_API_KEY. */
  apiKey: string;
  /** Default https://api.anthropic.com (no `/v1`). */
  baseUrl?: string;
  /** Extra headers on every request (a proxy's, for instance). */
  defaultHeaders?: Record<string, string>;
}

/** At most this many cache breakpoints per request (an API limit). */
const MAX_CACHE_BREAKPOINTS = 4;

/** The parts of a Messages API response we read; anything else in it is ignored. */
const ResponseSchema = z.object({
  model: z.string(),
  stop_reason: z.string().nullable(),
  content: z.array(z.looseObject({ type: z.string() })),
  usage: z.object({
    input_tokens: z.number().int().min(0),
    output_tokens: z.number().int().min(0),
    cache_creation_input_tokens: z.number().int().min(0).nullish(),
    cache_read_input_tokens: z.number().int().min(0).nullish(),
  }),
});
const TextBlockSchema = z.object({ type: z.literal('text'), text: z.string() });
const ToolUseBlockSchema = z.object({
  type: z.literal('tool_use'),
  id: z.string(),
  name: z.string(),
  input: z.unknown(),
});

/**
 * LlmProvider over the Anthropic Messages API (`@anthropic-ai/sdk` ≥ 1.14). One `complete` is one
 * HTTP attempt: the SDK's retries are off. System blocks flagged `cacheBreakpoint` carry
 * `cache_control: {type: 'ephemeral'}`, and no other block does. No sampling parameters are
 * sent (API version 2026-10-21 refuses temperature, top_p and top_k).
 */
export class AnthropicProvider implements LlmProvider {
  readonly name = 'anthropic' as const;
  readonly #client: Anthropic;
  readonly #apiKey: string;

  constructor(options: AnthropicProviderOptions) {
    this.#apiKey = options.apiKey;
    this.#client = new Anthropic({
      apiKey: options.apiKey,
      baseURL: options.baseUrl ?? 'https://api.anthropic.com',
      maxRetries: 0,
      openTelemetry: false,
      ...(options.defaultHeaders && { defaultHeaders: options.defaultHeaders }),
    });
  }

  async complete(request: LlmRequest): Promise<LlmResponse> {
    const params = toParams(request);
    let raw: unknown;
    try {
      raw = await withRequestSignal(request.signal, (signal) =>
        this.#client.messages.create(params, {
          timeout: request.timeoutMs,
          maxRetries: 0,
          ...(signal && { signal }),
        }),
      );
    } catch (error) {
      throw this.#callError(error, request);
    }
    return fromResponse(raw, request);
  }

  #redact = (text: string): string =>
    redactKeyPatterns(redactValues(text, [{ name: 'ANTHROPIC_API_KEY', value: this.#apiKey }]));

  #callError(error: unknown, request: LlmRequest): unknown {
    return sdkCallError(
      'anthropic',
      {
        base: AnthropicError,
        api: APIError,
        abort: APIUserAbortError,
        timeout: APIConnectionTimeoutError,
        connection: APIConnectionError,
      },
      error,
      request,
      this.#redact,
      (e) => (e as { apiMessage?: string }).apiMessage ?? e.message,
    );
  }
}

function toParams(request: LlmRequest): MessageCreateParamsNonStreaming {
  const breakpoints = request.system.filter((b) => b.cacheBreakpoint).length;
  if (breakpoints > MAX_CACHE_BREAKPOINTS) {
    throw new LlmCallError(
      `anthropic allows at most ${MAX_CACHE_BREAKPOINTS} cache breakpoints per request, the request flags ${breakpoints}: flag fewer system blocks`,
      { kind: 'bad_request', provider: 'anthropic' },
    );
  }
  const system: TextBlockParam[] = request.system
    .filter((b) => b.text.length > 0)
    .map((b) =>
      b.cacheBreakpoint
        ? { type: 'text', text: b.text, cache_control: { type: 'ephemeral' } }
        : { type: 'text', text: b.text },
    );
  const tools: Tool[] = request.tools.map((t) => ({
    name: t.name,
    description: t.description,
    input_schema: { ...t.inputSchema, type: 'object' },
  }));
  return {
    model: request.model,
    max_tokens: request.maxOutputTokens,
    messages: request.messages.map(toMessageParam),
    ...(system.length > 0 && { system }),
    ...(tools.length > 0 && { tools }),
  };
}

function toBlock(part: ContentPart): ContentBlockParam | null {
  switch (part.type) {
    case 'text':
      // The API refuses empty text blocks.
      return part.text.length > 0 ? { type: 'text', text: part.text } : null;
    case 'tool_call':
      // A malformed call is echoed with an empty input: the API accepts only objects here.
      return {
        type: 'tool_use',
        id: part.id,
        name: part.name,
        input: isObject(part.input) && !part.inputError ? part.input : {},
      };
    case 'tool_result':
      return {
        type: 'tool_result',
        tool_use_id: part.toolCallId,
        content: part.content,
        ...(part.isError && { is_error: true }),
      };
  }
}

function toMessageParam(message: LlmMessage): MessageParam {
  const blocks = message.content.map(toBlock).filter((b): b is ContentBlockParam => b !== null);
  // The API refuses an empty content list (an assistant turn that produced nothing, say).
  const content = blocks.length > 0 ? blocks : [{ type: 'text' as const, text: '(no content)' }];
  return message.role === 'user' ? { role: 'user', content } : { role: 'assistant', content };
}

function stopReasonOf(reason: string | null): LlmResponse['stopReason'] {
  switch (reason) {
    case 'end_turn':
    case 'stop_sequence':
      return 'end_turn';
    case 'tool_use':
      return 'tool_use';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'max_tokens';
    case 'refusal':
      return 'refusal';
    default:
      return 'other';
  }
}

function fromResponse(raw: unknown, request: LlmRequest): LlmResponse {
  const parsed = ResponseSchema.safeParse(raw);
  if (!parsed.success) {
    throw new LlmCallError(
      `anthropic ${request.model} answered with a body that is not a Messages API response (${z.prettifyError(parsed.error).replace(/\n/g, '; ')}): check the base URL`,
      { kind: 'server', provider: 'anthropic', retryable: false },
    );
  }
  const message = parsed.data;
  const content: ContentPart[] = [];
  for (const block of message.content) {
    const text = TextBlockSchema.safeParse(block);
    if (text.success) {
      content.push({ type: 'text', text: text.data.text });
      continue;
    }
    const use = ToolUseBlockSchema.safeParse(block);
    if (use.success) {
      content.push(toolCallFromValue(use.data.id, use.data.name, use.data.input));
    }
    // Thinking and server-tool blocks carry nothing the loop acts on.
  }
  const usage: LlmUsage = {
    inputTokens: message.usage.input_tokens,
    outputTokens: message.usage.output_tokens,
    cacheReadTokens: message.usage.cache_read_input_tokens ?? 0,
    cacheWriteTokens: message.usage.cache_creation_input_tokens ?? 0,
  };
  const pricedAs = priceOf(message.model) ? message.model : request.model;
  return {
    content,
    stopReason: stopReasonOf(message.stop_reason),
    usage,
    costUsd: costUsd(pricedAs, usage),
    model: message.model,
  };
}
