/** The agent loop's helpers: its timers, settlements, and what it reads from guard results. */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Timers } from '../store/index.js';
import type { LlmResponse, LlmUsage, ToolDefinition } from './provider.js';
import type { LlmCallErrorKind } from './provider-error.js';
import type { SessionResult } from './session-types.js';

/**
 * Keys of `_meta` shared with the guard (src/mcp/guard.ts and tools/lifecycle.ts): the structured
 * boot payload, and what `finish` carries besides its arguments (transcript, progress, settlement).
 */
export const BOOT_META = 'mlos/boot';
export const TRANSCRIPT_META = 'mlos/transcript';
/** See CAUSE_META and RETRY_AFTER_META in the guard's lifecycle tools. */
export const CAUSE_META = 'mlos/cause';
export const RETRY_AFTER_META = 'mlos/retryAfterMs';

/**
 * Model call failures that mean the model is unavailable rather than the task at fault: rate
 * limits, server errors and lost connections, when the provider did not say that retrying is
 * useless. Timeouts are not among them: a request that is too slow (a huge context) would time
 * out again, and must use up its need's attempts.
 */
export const OUTAGE_KINDS: ReadonlySet<LlmCallErrorKind> = new Set(['rate_limit', 'server', 'connection']);
export const PROGRESS_META = 'mlos/progress';
export const SETTLE_META = 'mlos/settle';

/** Ends the loop with an outcome from inside a model call attempt. */
export class Stop extends Error {
  constructor(
    readonly outcome: SessionResult['outcome'],
    readonly reason: string,
  ) {
    super(reason);
  }
}

/**
 * Tools the loop calls itself and never hands to the model: budgets and heartbeats are the loop's
 * bookkeeping, and a session works on its one task, so it does not claim others.
 */
const LOOP_TOOLS = new Set(['claim_need', 'heartbeat', 'reserve_budget', 'settle_budget']);

/** Calls `fn` every `ms` until the returned function is called: a real interval, or re-armed port timers. */
export function everyMs(ms: number, fn: () => void, timers: Timers | undefined): () => void {
  if (!timers) {
    const timer = setInterval(fn, ms);
    timer.unref?.();
    return () => clearInterval(timer);
  }
  let stopped = false;
  let handle: { cancel(): void } | undefined;
  const arm = () => {
    handle = timers.setTimeout(() => {
      if (stopped) return;
      fn();
      arm();
    }, ms);
  };
  arm();
  return () => {
    stopped = true;
    handle?.cancel();
  };
}

/** What `settle_budget` takes for one call: its usage, zero when the call failed. */
export type Settlement = {
  reservation_id: number;
  input_tokens: number;
  output_tokens: number;
  cache_read_tokens: number;
  cache_write_tokens: number;
  cost_usd: number;
};

export function settlementFor(reservationId: number, response: LlmResponse | undefined): Settlement {
  const u = response?.usage;
  return {
    reservation_id: reservationId,
    input_tokens: u?.inputTokens ?? 0,
    output_tokens: u?.outputTokens ?? 0,
    cache_read_tokens: u?.cacheReadTokens ?? 0,
    cache_write_tokens: u?.cacheWriteTokens ?? 0,
    cost_usd: response?.costUsd ?? 0,
  };
}

/** Whether a model turn calls `finish` with an argument object (a call the loop will make). */
export function callsFinish(response: LlmResponse): boolean {
  return response.content.some(
    (p) => p.type === 'tool_call' && p.name === 'finish' && !p.inputError && isObject(p.input),
  );
}

export function resultText(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

export function totalTokens(u: LlmUsage): number {
  return u.inputTokens + u.outputTokens + u.cacheReadTokens + u.cacheWriteTokens;
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The guard's tools the model is offered (the loop keeps its own), listed once per identity hash. */
export async function modelTools(
  client: Client,
  identityHash: string,
  cache: Map<string, readonly ToolDefinition[]> | undefined,
): Promise<readonly ToolDefinition[]> {
  const cached = cache?.get(identityHash);
  if (cached) return cached;
  const tools = (await client.listTools()).tools
    .filter((t) => !LOOP_TOOLS.has(t.name))
    .map((t) => ({
      name: t.name,
      description: t.description ?? '',
      inputSchema: t.inputSchema as Record<string, unknown>,
    }));
  cache?.set(identityHash, tools);
  return tools;
}
