import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CLAUDE_SAFETY_FACTOR,
  countRawTokens,
  formatCount,
  rawPrefix,
  rawTokensWithin,
  TokenCounter,
  tokenCounterFor,
} from '../../../../src/kernel/tokens.js';

describe('token counting', () => {
  it('counts o200k tokens, with special-token strings counted as text instead of throwing', () => {
    expect(countRawTokens('')).toBe(0);
    expect(countRawTokens('hello world')).toBe(2);
    expect(countRawTokens('a <|endoftext|> b')).toBeGreaterThan(3);
  });

  it('applies the 1.2 safety factor for Anthropic models only, rounding up', () => {
    expect(CLAUDE_SAFETY_FACTOR).toBe(1.2);
    expect(tokenCounterFor({ provider: 'anthropic' }).factor).toBe(1.2);
    for (const provider of ['openai', 'openai-compatible', 'scripted'] as const) {
      expect(tokenCounterFor({ provider }).factor).toBe(1);
    }
    const claude = new TokenCounter({ claude: true });
    expect([0, 1, 5, 10, 11].map((n) => claude.scale(n))).toEqual([0, 2, 6, 12, 14]);
    expect(claude.count('hello world')).toBe(3);
  });

  it('turns a model-token budget into the largest raw budget that stays within it', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.boolean(), (budget, claude) => {
        const c = new TokenCounter({ claude });
        const raw = c.rawBudget(budget);
        expect(c.scale(raw)).toBeLessThanOrEqual(budget);
        expect(c.scale(raw + 1)).toBeGreaterThan(budget);
      }),
      { numRuns: 300 },
    );
  });

  it('stops early when asked whether a text fits a limit', () => {
    const text = 'word '.repeat(10_000);
    expect(rawTokensWithin(text, 100)).toBe(false);
    expect(rawTokensWithin('hello world', 100)).toBe(2);
    const c = new TokenCounter();
    expect(c.rawWithin(text, 100)).toBe(false);
    expect(c.rawWithin(text, 20_000)).toBe(countRawTokens(text));
    // A remembered count answers later questions without tokenizing again.
    expect(c.rawWithin(text, 100)).toBe(false);
    expect(c.raw(text)).toBe(countRawTokens(text));
  });

  it('keeps a bounded memo: old generations are dropped, counts stay right', () => {
    const c = new TokenCounter({ cacheChars: 16 });
    const texts = ['one', 'two two', 'three three three', 'four', 'five five'];
    for (const t of texts) c.raw(t);
    for (const t of texts) expect(c.raw(t)).toBe(countRawTokens(t));
  });

  it('cuts a text to a whole-character prefix of at most N tokens', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.integer({ min: 0, max: 80 }),
        (text, n) => {
          const prefix = rawPrefix(text, n);
          expect(text.startsWith(prefix)).toBe(true);
          expect(countRawTokens(prefix)).toBeLessThanOrEqual(n);
          if (countRawTokens(text) <= n) expect(prefix).toBe(text);
        },
      ),
      { numRuns: 200 },
    );
    expect(rawPrefix('party 🎉 time', 1)).toBe('party');
    expect(rawPrefix('🎉', 1)).toBe('');
  });

  it('formats counts with thousands separators, whatever the locale', () => {
    expect([0, 7, 999, 1000, 12_345, 1_234_567, -4200].map(formatCount)).toEqual([
      '0',
      '7',
      '999',
      '1,000',
      '12,345',
      '1,234,567',
      '-4,200',
    ]);
  });
});
