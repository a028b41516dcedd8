/**
 * The LlmProvider port: one model call, provider-neutral. Adapters (anthropic, openai, scripted)
 * live in ./providers; the agent loop is written against this file only.
 */

/** One part of a message. Tool calls and their results are linked by the call's id. */
export type ContentPart =
  | { type: 'text'; text: string }
  /**
   * `inputError`: the model sent arguments that are not valid JSON or not an object; `input` then
   * holds what it sent (the raw text, or the non-object value) for the transcript. Never run such
   * a call: hand the error back to the model as an error tool_result.
   */
  | { type: 'tool_call'; id: string; name: string; input: unknown; inputError?: string }
  | { type: 'tool_result'; toolCallId: string; content: string; isError: boolean };

export interface LlmMessage {
  role: 'user' | 'assistant';
  content: ContentPart[];
}

/** A system prompt block. Anthropic: `cache_control {type:'ephemeral'}` on blocks with `cacheBreakpoint`. */
export interface SystemBlock {
  text: string;
  cacheBreakpoint: boolean;
}

/** A tool the model may call; `inputSchema` is a JSON Schema object. */
export interface ToolDefinition {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
}

export interface LlmRequest {
  model: string;
  system: SystemBlock[];
  messages: LlmMessage[];
  tools: ToolDefinition[];
  maxOutputTokens: number;
  /** The deadline of this one attempt, in milliseconds. */
  timeoutMs: number;
  /**
   * The caller's count of the prompt (system, tools, messages) in the kernel's tokens, when it
   * keeps one (the agent's conversation does, from the boot payload's exact section counts).
   * Providers that must estimate usage locally take it instead of counting the request again.
   */
  promptTokens?: number;
  signal?: AbortSignal;
  /** For the scripted provider's matching; real providers ignore it. */
  context?: {
    identity: string;
    needId: string;
    taskId: string;
    needTitle?: string;
    needTags?: readonly string[];
  };
}

/**
 * Token usage of one call. `inputTokens` counts only the prompt tokens that were neither read from
 * nor written to a cache, so the whole prompt is `inputTokens + cacheReadTokens + cacheWriteTokens`
 * (Anthropic reports it this way; the OpenAI adapter subtracts the cached part of `prompt_tokens`).
 */
export interface LlmUsage {
  inputTokens: number;
  outputTokens: number;
  cacheReadTokens: number;
  cacheWriteTokens: number;
}

export interface LlmResponse {
  content: ContentPart[];
  stopReason: 'end_turn' | 'tool_use' | 'max_tokens' | 'refusal' | 'other';
  usage: LlmUsage;
  /** From the pricing table; 0 for a model the table does not know. */
  costUsd: number;
  /** The model that answered, as the provider reports it. */
  model: string;
}

/**
 * A language model behind one call. `complete` makes exactly ONE attempt (the SDKs' own retries are
 * off) so that the caller can reserve budget per attempt; retry with `withRetries`. Every failure
 * is thrown as an `LlmCallError` (a `ProviderError`) that says whether it is retryable.
 */
export interface LlmProvider {
  readonly name: 'anthropic' | 'openai' | 'scripted';
  complete(request: LlmRequest): Promise<LlmResponse>;
}

/** Total prompt tokens of a usage record: uncached input plus cache reads and writes. */
export function promptTokens(usage: LlmUsage): number {
  return usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
}
