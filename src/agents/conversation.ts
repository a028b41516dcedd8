import type { TokenCounter } from '../kernel/tokens.js';
import type { ContentPart, LlmMessage, SystemBlock, ToolDefinition } from './provider.js';

/**
 * The growing conversation of one agent session, with token accounting and compaction: when it
 * nears the model's window, the oldest tool results are replaced by short pointers. The system
 * blocks (L1 identity, L2 awareness) are never touched.
 */
export class Conversation {
  readonly system: readonly SystemBlock[];
  readonly tools: readonly ToolDefinition[];
  readonly messages: LlmMessage[] = [];
  readonly #counter: TokenCounter;
  readonly #fixedTokens: number;
  /** Tokens of each message, counted once (compaction forgets the ones it rewrites). */
  readonly #tokens = new WeakMap<LlmMessage, number>();
  #compacted = 0;

  constructor(
    system: readonly SystemBlock[],
    tools: readonly ToolDefinition[],
    first: string,
    counter: TokenCounter,
    /** Token counts already known (the boot payload's sections), so they are not counted again. */
    known?: { readonly systemTokens: number; readonly firstTokens: number },
  ) {
    this.system = system;
    this.tools = tools;
    this.#counter = counter;
    this.#fixedTokens =
      (known?.systemTokens ?? counter.count(system.map((b) => b.text).join('\n'))) +
      toolTokens(tools, counter);
    const message: LlmMessage = { role: 'user', content: [{ type: 'text', text: first }] };
    this.messages.push(message);
    if (known) this.#tokens.set(message, known.firstTokens);
  }

  /** Estimated prompt tokens of the next call: system, tools and every message. */
  promptTokens(): number {
    let sum = this.#fixedTokens;
    for (const message of this.messages) {
      let tokens = this.#tokens.get(message);
      if (tokens === undefined) {
        tokens = this.#counter.count(renderMessage(message));
        this.#tokens.set(message, tokens);
      }
      sum += tokens;
    }
    return sum;
  }

  get compactedResults(): number {
    return this.#compacted;
  }

  /**
   * Replaces the oldest tool results by pointers until the prompt fits `limitTokens` (or nothing
   * is left to compact). The first message (the context pack and task) and the latest exchange
   * stay whole. Returns how many results were compacted.
   */
  compact(limitTokens: number): number {
    let count = 0;
    for (let i = 1; i < this.messages.length - 2 && this.promptTokens() > limitTokens; i++) {
      const message = this.messages[i]!;
      this.#tokens.delete(message);
      message.content = message.content.map((part) => {
        if (part.type !== 'tool_result' || part.content.startsWith('[compacted')) return part;
        count++;
        const tokens = this.#counter.count(part.content);
        return {
          ...part,
          content: `[compacted: an earlier tool result of ${tokens} tokens was dropped to fit the context window; call the tool again if you need it]`,
        };
      });
    }
    this.#compacted += count;
    return count;
  }
}

/** Tokens of a tool list's JSON, per list and counter: a worker offers one list per identity. */
const toolListTokens = new WeakMap<readonly ToolDefinition[], WeakMap<TokenCounter, number>>();

function toolTokens(tools: readonly ToolDefinition[], counter: TokenCounter): number {
  let byCounter = toolListTokens.get(tools);
  if (!byCounter) {
    byCounter = new WeakMap();
    toolListTokens.set(tools, byCounter);
  }
  let tokens = byCounter.get(counter);
  if (tokens === undefined) {
    tokens = counter.count(JSON.stringify(tools));
    byCounter.set(counter, tokens);
  }
  return tokens;
}

export function renderMessage(message: LlmMessage): string {
  return message.content.map(renderPart).join('\n');
}

export function renderPart(part: ContentPart): string {
  switch (part.type) {
    case 'text':
      return part.text;
    case 'tool_call':
      return `${part.name} ${typeof part.input === 'string' ? part.input : JSON.stringify(part.input)}`;
    case 'tool_result':
      return part.content;
  }
}
