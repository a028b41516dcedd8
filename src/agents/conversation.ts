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
  #compacted = 0;

  constructor(
    system: readonly SystemBlock[],
    tools: readonly ToolDefinition[],
    first: string,
    counter: TokenCounter,
  ) {
    this.system = system;
    this.tools = tools;
    this.#counter = counter;
    this.#fixedTokens =
      counter.count(system.map((b) => b.text).join('\n')) + counter.count(JSON.stringify(tools));
    this.messages.push({ role: 'user', content: [{ type: 'text', text: first }] });
  }

  /** Estimated prompt tokens of the next call: system, tools and every message. */
  promptTokens(): number {
    return (
      this.#fixedTokens + this.messages.reduce((sum, m) => sum + this.#counter.count(renderMessage(m)), 0)
    );
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
