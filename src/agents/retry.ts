import { setTimeout as delay } from 'node:timers/promises';
import { ProviderError } from '../store/errors.js';
import { LlmCallError, transportCallError } from './provider-error.js';

/** Waits `ms` milliseconds; rejects when `signal` aborts. Injected so a simulator can use virtual time. */
export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

/** The real-time sleep. */
export const realSleep: Sleep = async (ms, signal) => {
  await delay(ms, undefined, signal ? { signal } : undefined);
};

export interface RetryInfo {
  /** The attempt that failed (1-based). */
  attempt: number;
  error: ProviderError;
  /** How long we wait before the next attempt. */
  delayMs: number;
}

export interface RetryOptions {
  /** Attempts in all, the first included (≥ 1). */
  maxAttempts: number;
  /** Backoff before the second attempt; doubles per attempt. */
  baseDelayMs: number;
  /** Cap of the exponential backoff (not of a server's retry-after). */
  maxDelayMs: number;
  /**
   * A server asking for a longer wait than this ends the retries: the caller sees the rate limit
   * instead of a silent long sleep. Default 60 s.
   */
  maxRetryAfterMs?: number;
  sleep?: Sleep;
  /** Called before each wait; the place to log and count retries. */
  onRetry?: (info: RetryInfo) => void;
  /** Uniform in [0, 1) for jitter. Without it the jitter comes from a hash of `jitterKey` and the attempt. */
  random?: () => number;
  /** Spreads the PRNG-free jitter of concurrent callers (e.g. the task id). */
  jitterKey?: string;
  /** Stops retrying (and waiting) when aborted. */
  signal?: AbortSignal;
  /**
   * Whether a wait of `delayMs` before the next attempt may be taken; when not, the retries end
   * and the last error is thrown (say, the wait would outlast the caller's lease).
   */
  canWait?: (delayMs: number) => boolean;
}

/**
 * Runs `fn` until it succeeds, calling it afresh for every attempt (so per-attempt work such as
 * a budget reservation happens each time). Retries only retryable `ProviderError`s; anything else,
 * and the last failure, is rethrown as is. The wait honours the error's `retryAfterMs`; otherwise
 * it is an exponential backoff with "equal jitter": half the capped delay plus a jittered half.
 */
export async function withRetries<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const maxAttempts = Math.max(1, Math.floor(options.maxAttempts));
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  const sleep = options.sleep ?? realSleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (error) {
      if (!(error instanceof ProviderError) || !error.retryable || attempt >= maxAttempts) throw error;
      if (options.signal?.aborted) throw error;
      const retryAfterMs = error instanceof LlmCallError ? error.retryAfterMs : undefined;
      if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) throw error;
      const delayMs = retryAfterMs ?? backoffDelay(attempt, options);
      if (options.canWait && !options.canWait(delayMs)) throw error;
      options.onRetry?.({ attempt, error, delayMs });
      try {
        await sleep(delayMs, options.signal);
      } catch {
        throw transportCallError(
          error instanceof LlmCallError ? error.provider : 'llm',
          '',
          'aborted',
          'cancelled while waiting to retry',
        );
      }
    }
  }
}

/** The backoff before attempt `attempt + 1`, without a server hint. */
export function backoffDelay(
  attempt: number,
  options: Pick<RetryOptions, 'baseDelayMs' | 'maxDelayMs' | 'random' | 'jitterKey'>,
): number {
  const capped = Math.min(options.maxDelayMs, options.baseDelayMs * 2 ** (attempt - 1));
  const unit = options.random ? options.random() : hashUnit(`${options.jitterKey ?? ''}:${attempt}`);
  const half = capped / 2;
  return Math.round(half + half * Math.min(Math.max(unit, 0), 1));
}

/** FNV-1a of `text` mapped to [0, 1): a jitter that needs no PRNG and spreads distinct keys. */
function hashUnit(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h / 0x1_0000_0000;
}
