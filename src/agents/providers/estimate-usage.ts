import { tokenCounterFor } from '../../kernel/tokens.js';
import type { ContentPart, LlmRequest, LlmUsage } from '../provider.js';

/** Framing tokens per message (role, separators), as chat formats spend a few on each. */
const PER_MESSAGE_OVERHEAD = 4;

const counter = tokenCounterFor({ provider: 'scripted' });

function partTokens(part: ContentPart): number {
  switch (part.type) {
    case 'text':
      return counter.count(part.text);
    case 'tool_call':
      return counter.count(part.name) + counter.count(JSON.stringify(part.input ?? null));
    case 'tool_result':
      return counter.count(part.content) + 2;
  }
}

/** o200k tokens of the content parts of one turn. */
export function contentTokens(content: readonly ContentPart[]): number {
  let n = 0;
  for (const part of content) n += partTokens(part);
  return n;
}

/** o200k tokens of a whole request: system blocks, tool definitions and messages. */
export function requestTokens(request: LlmRequest): number {
  let n = 0;
  for (const block of request.system) n += counter.count(block.text);
  for (const tool of request.tools) {
    n +=
      counter.count(tool.name) +
      counter.count(tool.description) +
      counter.count(JSON.stringify(tool.inputSchema));
  }
  for (const message of request.messages) n += PER_MESSAGE_OVERHEAD + contentTokens(message.content);
  return n;
}

/**
 * Usage estimated locally with the kernel's tokenizer: for the scripted provider, and for
 * OpenAI-compatible servers that report no usage. Nothing is cached.
 */
export function estimateUsage(request: LlmRequest, content: readonly ContentPart[]): LlmUsage {
  return {
    inputTokens: requestTokens(request),
    outputTokens: contentTokens(content),
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  };
}
