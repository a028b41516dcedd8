import { tokenCounterFor } from '../../kernel/tokens.js';
import type { ContentPart, LlmRequest, LlmUsage, ToolDefinition } from '../provider.js';

/** Framing tokens per message (role, separators), as chat formats spend a few on each. */
const PER_MESSAGE_OVERHEAD = 4;

const counter = tokenCounterFor({ provider: 'scripted' });

/** Texts longer than this are counted line by line (see `textTokens`). */
const WHOLE_TEXT_CHARS = 512;

/**
 * Tokens of a text. A long one is counted line by line, each line memoised by the counter, plus
 * one token per line break: a context pack is made of lines the boot compiler has just counted,
 * and the sum stays within a few tokens of counting the whole (good enough for an estimate).
 */
function textTokens(text: string): number {
  if (text.length <= WHOLE_TEXT_CHARS) return counter.count(text);
  let n = 0;
  let lines = 0;
  for (const line of text.split('\n')) {
    n += counter.count(line);
    lines++;
  }
  return n + lines - 1;
}

/** Tokens of each tool definition, counted once per definition object. */
const toolTokens = new WeakMap<ToolDefinition, number>();

function toolDefinitionTokens(tool: ToolDefinition): number {
  let n = toolTokens.get(tool);
  if (n === undefined) {
    n =
      counter.count(tool.name) +
      counter.count(tool.description) +
      counter.count(JSON.stringify(tool.inputSchema));
    toolTokens.set(tool, n);
  }
  return n;
}

function partTokens(part: ContentPart): number {
  switch (part.type) {
    case 'text':
      return textTokens(part.text);
    case 'tool_call':
      return counter.count(part.name) + counter.count(JSON.stringify(part.input ?? null));
    case 'tool_result':
      return textTokens(part.content) + 2;
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
  for (const block of request.system) n += textTokens(block.text);
  for (const tool of request.tools) n += toolDefinitionTokens(tool);
  for (const message of request.messages) n += PER_MESSAGE_OVERHEAD + contentTokens(message.content);
  return n;
}

/**
 * Usage estimated locally with the kernel's tokenizer: for the scripted provider, and for
 * OpenAI-compatible servers that report no usage. The input is the request's own prompt count
 * when the caller gave one (the agent's conversation keeps it), else the request counted here.
 * Nothing is cached (cache read and write are 0).
 */
export function estimateUsage(request: LlmRequest, content: readonly ContentPart[]): LlmUsage {
  return {
    inputTokens: request.promptTokens ?? requestTokens(request),
    outputTokens: contentTokens(content),
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
  };
}
