import type { LlmResponse } from './provider.js';

/**
 * The whole exchange of one session as readable markdown: the boot payload, every model turn
 * with its usage, every tool call and result. Stored as a `transcript` artifact at finish.
 */
export class Transcript {
  readonly #lines: string[] = [];

  constructor(taskId: string) {
    this.#lines.push(`# Transcript of ${taskId}`);
  }

  boot(system: readonly string[], first: string, tools: readonly string[]): void {
    for (const [i, text] of system.entries()) this.#lines.push(`\n## system ${i + 1}\n\n${text}`);
    this.#lines.push(`\n## user\n\n${first}`, `\ntools: ${tools.join(', ')}`);
  }

  assistant(turn: number, response: LlmResponse): void {
    const u = response.usage;
    this.#lines.push(
      `\n## turn ${turn} (${response.model}; in ${u.inputTokens}, out ${u.outputTokens}, cache read ${u.cacheReadTokens}, cache write ${u.cacheWriteTokens}; stop ${response.stopReason})`,
    );
    for (const part of response.content) {
      if (part.type === 'text' && part.text.trim()) this.#lines.push(`\n${part.text}`);
    }
  }

  tool(name: string, input: unknown, result: string, isError: boolean): void {
    const args = typeof input === 'string' ? input : JSON.stringify(input);
    this.#lines.push(`\n→ ${name} ${args}\n${isError ? '✗' : '←'} ${result}`);
  }

  note(text: string): void {
    this.#lines.push(`\n_${text}_`);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}
