import { describe, expect, it } from 'vitest';
import { costUsd, priceOf, worstCaseCostUsd } from '../../../../src/agents/pricing.js';
import { LlmCallError, parseRetryAfter } from '../../../../src/agents/provider-error.js';
import { backoffDelay, type RetryInfo, withRetries } from '../../../../src/agents/retry.js';
import { ProviderError, UserError } from '../../../../src/store/errors.js';

const rateLimited = (retryAfterMs?: number) =>
  new LlmCallError('429', {
    kind: 'rate_limit',
    provider: 'test',
    ...(retryAfterMs !== undefined && { retryAfterMs }),
  });
const serverError = () => new LlmCallError('500', { kind: 'server', provider: 'test' });

function failingThen<T>(errors: Error[], value: T) {
  const attempts: number[] = [];
  const fn = async (attempt: number) => {
    attempts.push(attempt);
    const error = errors.shift();
    if (error) throw error;
    return value;
  };
  return { fn, attempts };
}

describe('withRetries', () => {
  it('calls fn afresh per attempt and honours retryAfterMs', async () => {
    const slept: number[] = [];
    const retries: RetryInfo[] = [];
    const { fn, attempts } = failingThen([rateLimited(1234), serverError()], 'ok');
    const result = await withRetries(fn, {
      maxAttempts: 5,
      baseDelayMs: 100,
      maxDelayMs: 1000,
      sleep: async (ms) => void slept.push(ms),
      onRetry: (info) => void retries.push(info),
      random: () => 0.5,
    });
    expect(result).toBe('ok');
    expect(attempts).toEqual([1, 2, 3]);
    // 1234 from the server; then backoff for attempt 2: cap 200, half 100 + 0.5 × 100.
    expect(slept).toEqual([1234, 150]);
    expect(retries.map((r) => [r.attempt, (r.error as LlmCallError).kind, r.delayMs])).toEqual([
      [1, 'rate_limit', 1234],
      [2, 'server', 150],
    ]);
  });

  it('rethrows the last error after maxAttempts', async () => {
    const { fn, attempts } = failingThen([serverError(), serverError(), serverError()], 'never');
    await expect(
      withRetries(fn, { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} }),
    ).rejects.toMatchObject({
      kind: 'server',
    });
    expect(attempts).toEqual([1, 2]);
  });

  it('does not retry non-retryable errors or errors that are not provider errors', async () => {
    for (const error of [
      new LlmCallError('400', { kind: 'bad_request', provider: 'test' }),
      new LlmCallError('429 but told not to', { kind: 'rate_limit', provider: 'test', retryable: false }),
      new UserError('bad'),
      new TypeError('bug'),
    ]) {
      const { fn, attempts } = failingThen([error], 'x');
      await expect(
        withRetries(fn, { maxAttempts: 3, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} }),
      ).rejects.toBe(error);
      expect(attempts).toEqual([1]);
    }
  });

  it('retries a plain retryable ProviderError too', async () => {
    const { fn } = failingThen([new ProviderError('flaky', { retryable: true })], 'ok');
    await expect(
      withRetries(fn, { maxAttempts: 2, baseDelayMs: 1, maxDelayMs: 1, sleep: async () => {} }),
    ).resolves.toBe('ok');
  });

  it('gives up rather than sleep past maxRetryAfterMs', async () => {
    const slept: number[] = [];
    const { fn, attempts } = failingThen([rateLimited(120_000)], 'ok');
    await expect(
      withRetries(fn, {
        maxAttempts: 3,
        baseDelayMs: 1,
        maxDelayMs: 1,
        maxRetryAfterMs: 60_000,
        sleep: async (ms) => void slept.push(ms),
      }),
    ).rejects.toMatchObject({ kind: 'rate_limit', retryAfterMs: 120_000 });
    expect(attempts).toEqual([1]);
    expect(slept).toEqual([]);
  });

  it('ends the retries with the last error when canWait refuses the wait, before any sleep or onRetry', async () => {
    const slept: number[] = [];
    const asked: number[] = [];
    const retries: RetryInfo[] = [];
    const { fn, attempts } = failingThen([rateLimited(1000), rateLimited(5000)], 'ok');
    await expect(
      withRetries(fn, {
        maxAttempts: 4,
        baseDelayMs: 100,
        maxDelayMs: 1000,
        sleep: async (ms) => void slept.push(ms),
        onRetry: (info) => void retries.push(info),
        canWait: (ms) => {
          asked.push(ms);
          return ms < 2000;
        },
      }),
    ).rejects.toMatchObject({ kind: 'rate_limit', retryAfterMs: 5000 });
    expect(attempts).toEqual([1, 2]);
    expect(asked).toEqual([1000, 5000]);
    expect(slept).toEqual([1000]);
    expect(retries.map((r) => r.delayMs)).toEqual([1000]);
  });

  it('stops waiting when the signal aborts', async () => {
    const controller = new AbortController();
    const { fn, attempts } = failingThen([serverError(), serverError()], 'ok');
    const sleep = (_ms: number, signal?: AbortSignal) =>
      new Promise<void>((_, reject) => {
        signal?.addEventListener('abort', () => reject(new Error('aborted')));
        controller.abort();
      });
    await expect(
      withRetries(fn, { maxAttempts: 5, baseDelayMs: 10, maxDelayMs: 10, sleep, signal: controller.signal }),
    ).rejects.toMatchObject({ kind: 'aborted' });
    expect(attempts).toEqual([1]);
  });

  it('backs off exponentially up to the cap, with jitter in [half, full]', () => {
    const opts = { baseDelayMs: 500, maxDelayMs: 8000 };
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { ...opts, random: () => 0 }))).toEqual([
      250, 500, 1000, 2000, 4000, 4000,
    ]);
    expect([1, 2, 3, 4, 5, 6].map((a) => backoffDelay(a, { ...opts, random: () => 0.999999 }))).toEqual([
      500, 1000, 2000, 4000, 8000, 8000,
    ]);
    // Without a random function the jitter is a hash of the key: stable per key, spread across keys.
    const a = backoffDelay(3, { ...opts, jitterKey: 'task_a' });
    expect(backoffDelay(3, { ...opts, jitterKey: 'task_a' })).toBe(a);
    const spread = new Set(
      ['a', 'b', 'c', 'd', 'e', 'f'].map((k) => backoffDelay(3, { ...opts, jitterKey: k })),
    );
    expect(spread.size).toBeGreaterThan(1);
    for (const d of spread) expect(d).toBeGreaterThanOrEqual(1000);
  });
});

describe('parseRetryAfter', () => {
  it('prefers retry-after-ms, then retry-after seconds or date', () => {
    expect(parseRetryAfter({ 'retry-after-ms': '250', 'retry-after': '9' })).toBe(250);
    expect(parseRetryAfter({ 'retry-after': '2' })).toBe(2000);
    expect(
      parseRetryAfter(
        { 'retry-after': 'Wed, 21 Oct 2026 07:28:10 GMT' },
        Date.parse('Wed, 21 Oct 2026 07:28:00 GMT'),
      ),
    ).toBe(10_000);
    expect(parseRetryAfter({ 'retry-after': 'soon' })).toBeUndefined();
    expect(parseRetryAfter(new Headers({ 'retry-after-ms': '7.2' }))).toBe(8);
    expect(parseRetryAfter(undefined)).toBeUndefined();
  });
});

describe('pricing', () => {
  it('prices Anthropic cache reads at 0.1× and writes at 1.25× of input', () => {
    const usage = {
      inputTokens: 1_000_000,
      outputTokens: 0,
      cacheReadTokens: 1_000_000,
      cacheWriteTokens: 1_000_000,
    };
    expect(costUsd('claude-sonnet-4-6', usage)).toBeCloseTo(3 + 0.3 + 3.75, 10);
  });

  it('finds dated snapshots and costs unknown models 0', () => {
    expect(priceOf('claude-sonnet-4-5-20250929')).toBe(priceOf('claude-sonnet-4-5'));
    expect(priceOf('gpt-4.1-mini-2025-04-14')).toBe(priceOf('gpt-4.1-mini'));
    expect(
      costUsd('llama3.2', { inputTokens: 1e6, outputTokens: 1e6, cacheReadTokens: 0, cacheWriteTokens: 0 }),
    ).toBe(0);
  });

  it('bills a whole request at the long-context tier past the threshold', () => {
    const small = { inputTokens: 100_000, outputTokens: 0, cacheReadTokens: 0, cacheWriteTokens: 0 };
    const large = { ...small, inputTokens: 300_000 };
    expect(costUsd('gpt-5.5', small)).toBeCloseTo(0.5, 10);
    expect(costUsd('gpt-5.5', large)).toBeCloseTo(3, 10);
    expect(worstCaseCostUsd('claude-sonnet-5-5', 1_000_000, 1_000_000)).toBeCloseTo(2.5 + 10, 10);
  });
});
