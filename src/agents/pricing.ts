import type { LlmUsage } from './provider.js';

/** USD per million tokens for one model. */
export interface ModelPrice {
  inputPerMTok: number;
  outputPerMTok: number;
  cacheReadPerMTok: number;
  cacheWritePerMTok: number;
  /**
   * A long-context tier: when the whole prompt is above `promptTokens`, the whole request is billed
   * at `price` (providers bill the request, not only the tokens past the threshold).
   */
  longContext?: { promptTokens: number; price: Omit<ModelPrice, 'longContext'> };
}

/** Anthropic prompt caching: a cache read costs 0.1× the input price, a 5-minute cache write 1.25×. */
export const ANTHROPIC_CACHE_READ_MULTIPLIER = 0.1;
export const ANTHROPIC_CACHE_WRITE_MULTIPLIER = 1.25;

function anthropic(input: number, output: number): Omit<ModelPrice, 'longContext'> {
  return {
    inputPerMTok: input,
    outputPerMTok: output,
    cacheReadPerMTok: input * ANTHROPIC_CACHE_READ_MULTIPLIER,
    cacheWritePerMTok: input * ANTHROPIC_CACHE_WRITE_MULTIPLIER,
  };
}

/** OpenAI caches automatically: cached input has its own price, writing to the cache costs plain input. */
function openai(input: number, cachedInput: number, output: number): Omit<ModelPrice, 'longContext'> {
  return {
    inputPerMTok: input,
    outputPerMTok: output,
    cacheReadPerMTok: cachedInput,
    cacheWritePerMTok: input,
  };
}

/**
 * List prices (standard tier, no batch discount) as published by the providers at the time of
 * writing; check the providers' pricing pages before relying on them for money. A model that is
 * not in this table costs 0: usage is still counted in tokens (budgets are in tokens), but its
 * cost is reported as 0 — add the model here to get a cost. Local models served through an
 * OpenAI-compatible server and the scripted provider are not in the table on purpose.
 */
export const MODEL_PRICES: Readonly<Record<string, ModelPrice>> = {
  'claude-opus-5-5': anthropic(4, 20),
  'claude-sonnet-5-5': anthropic(2, 10),
  'claude-sonnet-5': anthropic(2, 10),
  'claude-haiku-5-5': {
    ...anthropic(0.1, 0.5),
    longContext: { promptTokens: 100_000, price: anthropic(0.5, 2.5) },
  },
  'claude-sonnet-4-6': anthropic(3, 15),
  'claude-sonnet-4-5': anthropic(3, 15),
  'claude-haiku-4-5': anthropic(1, 5),
  'gpt-5.5': { ...openai(5, 0.5, 30), longContext: { promptTokens: 272_000, price: openai(10, 1, 45) } },
  'gpt-5.4': openai(2.5, 0.25, 15),
  'gpt-5.4-mini': openai(0.75, 0.075, 4.5),
  'gpt-4.1-mini': openai(0.4, 0.1, 1.6),
};

/**
 * The price of a model id: exact match first, then without a dated snapshot suffix
 * (`claude-sonnet-4-5-20250929`, `gpt-4.1-mini-2025-04-14`). Undefined for an unknown model.
 */
export function priceOf(model: string): ModelPrice | undefined {
  const exact = MODEL_PRICES[model];
  if (exact) return exact;
  const base = model.replace(/-(\d{8}|\d{4}-\d{2}-\d{2})$/, '');
  return base === model ? undefined : MODEL_PRICES[base];
}

function tierFor(price: ModelPrice, promptTokens: number): Omit<ModelPrice, 'longContext'> {
  return price.longContext && promptTokens > price.longContext.promptTokens ? price.longContext.price : price;
}

/** The cost of one call in USD; 0 for a model the table does not know. */
export function costUsd(model: string, usage: LlmUsage): number {
  const price = priceOf(model);
  if (!price) return 0;
  const prompt = usage.inputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
  const p = tierFor(price, prompt);
  return (
    (usage.inputTokens * p.inputPerMTok +
      usage.cacheReadTokens * p.cacheReadPerMTok +
      usage.cacheWriteTokens * p.cacheWritePerMTok +
      usage.outputTokens * p.outputPerMTok) /
    1_000_000
  );
}

/**
 * The most a call can cost: every prompt token at the dearest input price (a cache write for
 * Anthropic) plus the full output allowance. 0 for an unknown model.
 */
export function worstCaseCostUsd(model: string, promptTokens: number, maxOutputTokens: number): number {
  const price = priceOf(model);
  if (!price) return 0;
  const p = tierFor(price, promptTokens);
  const input = Math.max(p.inputPerMTok, p.cacheWritePerMTok, p.cacheReadPerMTok);
  return (promptTokens * input + maxOutputTokens * p.outputPerMTok) / 1_000_000;
}
