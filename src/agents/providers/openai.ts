import OpenAI, {
  APIConnectionError,
  APIConnectionTimeoutError,
  APIError,
  APIUserAbortError,
  OpenAIError,
} from 'openai';
import type {
  ChatCompletionCreateParamsNonStreaming,
  ChatCompletionMessageParam,
  ChatCompletionTool,
} from 'openai/resources/chat/completions';
import * as z from 'zod';
import { costUsd } from '../pricing.js';
import type { ContentPart, LlmMessage, LlmProvider, LlmRequest, LlmResponse, LlmUsage } from '../provider.js';
import { LlmCallError } from '../provider-error.js';
import { estimateUsage } from './estimate-usage.js';
import { redactKeyPatterns, redactValues } from './redact.js';
import { sdkCallError, withRequestSignal } from './sdk-error.js';
import { toolCallFromJson } from './tool-input.js';

export interface OpenAIProviderOptions {
  /** OPENAI_API_KEY for api.openai.com; any non-empty string (e.g. 'local') for a local server. */
  apiKey: string;
  /**
   * Default https://api.openai.com/v1. For an OpenAI-compatible server give its base including
   * `/v1`: Ollama http://127.0.0.1:11434/v1, vLLM http://127.0.0.1:8000/v1, llama.cpp
   * (llama-server) http://127.0.0.1:8080/v1.
   */
  baseUrl?: string;
  /**
   * The output limit field. api.openai.com wants `max_completion_tokens` (reasoning models refuse
   * `max_tokens`); local servers widely understand only `max_tokens`. Default: the former for
   * the OpenAI API, the latter when a `baseUrl` is given.
   */
  maxTokensField?: 'max_completion_tokens' | 'max_tokens';
  defaultHeaders?: Record<string, string>;
}

/** The parts of a chat completion we read; local servers differ in everything else. */
const ResponseSchema = z.object({
  model: z.string().optional(),
  choices: z
    .array(
      z.object({
        finish_reason: z.string().nullish(),
        message: z.object({
          content: z.string().nullish(),
          refusal: z.string().nullish(),
          tool_calls: z
            .array(
              z.looseObject({
                id: z.string(),
                type: z.string().optional(),
                function: z.object({ name: z.string(), arguments: z.string().nullish() }).optional(),
              }),
            )
            .nullish(),
        }),
      }),
    )
    .min(1),
  usage: z
    .object({
      prompt_tokens: z.number().int().min(0),
      completion_tokens: z.number().int().min(0),
      prompt_tokens_details: z
        .object({
          cached_tokens: z.number().int().min(0).nullish(),
          cache_write_tokens: z.number().int().min(0).nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

/**
 * LlmProvider over OpenAI Chat Completions (`openai` 6.x, which supports Node 20), also for
 * OpenAI-compatible local servers through `baseUrl`. One `complete` is one attempt (SDK retries
 * off). Tool-call arguments that are not valid JSON become a tool call with `inputError`.
 */
export class OpenAIProvider implements LlmProvider {
  readonly name = 'openai' as const;
  readonly #client: OpenAI;
  readonly #apiKey: string;
  readonly #maxTokensField: 'max_completion_tokens' | 'max_tokens';

  constructor(options: OpenAIProviderOptions) {
    this.#apiKey = options.apiKey;
    this.#maxTokensField =
      options.maxTokensField ?? (options.baseUrl ? 'max_tokens' : 'max_completion_tokens');
    this.#client = new OpenAI({
      apiKey: options.apiKey,
      baseURL: options.baseUrl ?? 'https://api.openai.com/v1',
      maxRetries: 0,
      ...(options.defaultHeaders && { defaultHeaders: options.defaultHeaders }),
    });
  }

  async complete(request: LlmRequest): Promise<LlmResponse> {
    const params: ChatCompletionCreateParamsNonStreaming = {
      model: request.model,
      messages: toMessages(request),
      [this.#maxTokensField]: request.maxOutputTokens,
    };
    const tools = request.tools.map(
      (t): ChatCompletionTool => ({
        type: 'function',
        function: { name: t.name, description: t.description, parameters: t.inputSchema },
      }),
    );
    // Several local servers refuse an empty tools list.
    if (tools.length > 0) params.tools = tools;
    let raw: unknown;
    try {
      raw = await withRequestSignal(request.signal, (signal) =>
        this.#client.chat.completions.create(params, {
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
    redactKeyPatterns(redactValues(text, [{ name: 'OPENAI_API_KEY', value: this.#apiKey }]));

  #callError(error: unknown, request: LlmRequest): unknown {
    return sdkCallError(
      'openai',
      {
        base: OpenAIError,
        api: APIError,
        abort: APIUserAbortError,
        timeout: APIConnectionTimeoutError,
        connection: APIConnectionError,
      },
      error,
      request,
      this.#redact,
      (e) => {
        const body = (e as { error?: { message?: unknown } }).error;
        return typeof body?.message === 'string' ? body.message : e.message;
      },
    );
  }
}

function toMessages(request: LlmRequest): ChatCompletionMessageParam[] {
  const out: ChatCompletionMessageParam[] = [];
  const system = request.system
    .map((b) => b.text)
    .filter((t) => t.length > 0)
    .join('\n\n');
  if (system) out.push({ role: 'system', content: system });
  for (const message of request.messages) out.push(...toChatMessages(message));
  return out;
}

function texts(parts: readonly ContentPart[]): string {
  return parts
    .filter((p): p is Extract<ContentPart, { type: 'text' }> => p.type === 'text')
    .map((p) => p.text)
    .join('\n\n');
}

/**
 * One of our messages as chat messages. Tool results become `tool` messages, placed first because
 * the API wants them right after the assistant message that made the calls; Chat Completions has
 * no error flag on them, so a failed tool's result is prefixed with "ERROR: ".
 */
function toChatMessages(message: LlmMessage): ChatCompletionMessageParam[] {
  const text = texts(message.content);
  if (message.role === 'assistant') {
    const calls = message.content.filter(
      (p): p is Extract<ContentPart, { type: 'tool_call' }> => p.type === 'tool_call',
    );
    return [
      {
        role: 'assistant',
        content: text || null,
        ...(calls.length > 0 && {
          tool_calls: calls.map((c) => ({
            id: c.id,
            type: 'function' as const,
            // A malformed call is echoed as the model sent it, so its error makes sense to the model.
            function: {
              name: c.name,
              arguments:
                c.inputError && typeof c.input === 'string' ? c.input : JSON.stringify(c.input ?? {}),
            },
          })),
        }),
      },
    ];
  }
  const out: ChatCompletionMessageParam[] = [];
  for (const part of message.content) {
    if (part.type !== 'tool_result') continue;
    out.push({
      role: 'tool',
      tool_call_id: part.toolCallId,
      content: part.isError ? `ERROR: ${part.content}` : part.content,
    });
  }
  if (text) out.push({ role: 'user', content: text });
  return out;
}

function stopReasonOf(reason: string | null | undefined, hasToolCalls: boolean): LlmResponse['stopReason'] {
  if (reason === 'length') return 'max_tokens';
  if (reason === 'content_filter') return 'refusal';
  // Some local servers say 'stop' while returning tool calls.
  if (hasToolCalls || reason === 'tool_calls' || reason === 'function_call') return 'tool_use';
  if (reason === 'stop') return 'end_turn';
  return 'other';
}

function fromResponse(raw: unknown, request: LlmRequest): LlmResponse {
  const parsed = ResponseSchema.safeParse(raw);
  if (!parsed.success) {
    throw new LlmCallError(
      `openai ${request.model} answered with a body that is not a chat completion (${z.prettifyError(parsed.error).replace(/\n/g, '; ')}): check the base URL`,
      { kind: 'server', provider: 'openai', retryable: false },
    );
  }
  const completion = parsed.data;
  const choice = completion.choices[0]!;
  const content: ContentPart[] = [];
  if (choice.message.content) content.push({ type: 'text', text: choice.message.content });
  if (choice.message.refusal) content.push({ type: 'text', text: choice.message.refusal });
  for (const call of choice.message.tool_calls ?? []) {
    if (call.type !== undefined && call.type !== 'function') {
      // We define only function tools; a custom tool call cannot be run.
      content.push({
        type: 'tool_call',
        id: call.id,
        name: call.type,
        input: call,
        inputError: `unsupported tool call type ${call.type}`,
      });
      continue;
    }
    if (!call.function) continue;
    content.push(toolCallFromJson(call.id, call.function.name, call.function.arguments ?? ''));
  }
  const hasToolCalls = content.some((p) => p.type === 'tool_call');
  const stopReason = choice.message.refusal ? 'refusal' : stopReasonOf(choice.finish_reason, hasToolCalls);
  const usage = completion.usage ? usageOf(completion.usage) : estimateUsage(request, content);
  const model = completion.model ?? request.model;
  return {
    content,
    stopReason,
    usage,
    costUsd: costUsd(model, usage) || costUsd(request.model, usage),
    model,
  };
}

function usageOf(usage: NonNullable<z.output<typeof ResponseSchema>['usage']>): LlmUsage {
  const cacheRead = usage.prompt_tokens_details?.cached_tokens ?? 0;
  const cacheWrite = usage.prompt_tokens_details?.cache_write_tokens ?? 0;
  return {
    // prompt_tokens includes the cached part; our inputTokens counts only the uncached rest.
    inputTokens: Math.max(0, usage.prompt_tokens - cacheRead - cacheWrite),
    outputTokens: usage.completion_tokens,
    cacheReadTokens: cacheRead,
    cacheWriteTokens: cacheWrite,
  };
}
