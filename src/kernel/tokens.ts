import { createRequire } from 'node:module';
import type { ModelSpec } from './identity/schema.js';

type Tokenizer = Pick<typeof import('gpt-tokenizer'), 'countTokens' | 'isWithinTokenLimit'>;
let tokenizer: Tokenizer | undefined;

/**
 * gpt-tokenizer, loaded on the first count: its o200k tables take ~150 ms and ~50 MB to load, which
 * every CLI command would otherwise pay at start, counting or not.
 */
function o200k(): Tokenizer {
  tokenizer ??= createRequire(import.meta.url)('gpt-tokenizer') as Tokenizer;
  return tokenizer;
}

/**
 * Token counting for budgets: gpt-tokenizer's `o200k_base` is the local estimator for every
 * provider. No exact offline tokenizer exists for current Claude models, so for Anthropic the
 * o200k count is multiplied by a safety factor of 1.2 (an o200k count runs 0–20 % below Claude's
 * on English and code; calibrate against `usage.input_tokens` when online). The factor is kept as
 * the exact ratio 6/5 so budget arithmetic stays in integers.
 */
export const TOKEN_ENCODING = 'o200k_base';

/** The safety factor applied to o200k counts for Anthropic (Claude) models. */
export const CLAUDE_SAFETY_FACTOR = 1.2;

const CLAUDE_RATIO = { num: 6, den: 5 } as const;
const EXACT_RATIO = { num: 1, den: 1 } as const;

/**
 * Special-token strings such as `<|endoftext|>` are counted as ordinary text: need bodies and
 * artifacts are data, and gpt-tokenizer would otherwise throw on them.
 */
const AS_TEXT = { disallowedSpecial: new Set<string>() };

/** Loads the tokenizer now, so that the first count (say, the first session's boot) does not wait. */
export function preloadTokenizer(): void {
  o200k();
}

/** o200k tokens in `text`, special-token strings counted as text. */
export function countRawTokens(text: string): number {
  return text.length === 0 ? 0 : o200k().countTokens(text, AS_TEXT);
}

/** The o200k count of `text` when it is at most `limit`, else false; stops early on long texts. */
export function rawTokensWithin(text: string, limit: number): number | false {
  if (limit < 0) return false;
  if (text.length === 0) return 0;
  return o200k().isWithinTokenLimit(text, limit, AS_TEXT);
}

/**
 * A prefix of `text` of at most `rawTokens` o200k tokens, cut back to a whole character, found by
 * binary search over its length (each probe stops counting at the limit). gpt-tokenizer's
 * `decode` is not used: it keeps a streaming UTF-8 decoder across calls, so a cut inside a
 * character would corrupt the next decode.
 */
export function rawPrefix(text: string, rawTokens: number): string {
  if (rawTokens <= 0) return '';
  if (rawTokensWithin(text, rawTokens) !== false) return text;
  // Invariant: the prefix of length lo fits, the one of length hi does not.
  let lo = 0;
  let hi = text.length;
  while (hi - lo > 1) {
    const mid = (lo + hi) >>> 1;
    if (rawTokensWithin(text.slice(0, mid), rawTokens) !== false) lo = mid;
    else hi = mid;
  }
  const last = lo > 0 ? text.charCodeAt(lo - 1) : 0;
  if (last >= 0xd800 && last <= 0xdbff) lo--;
  return text.slice(0, lo);
}

/**
 * Memoised o200k counts of texts, in two generations (a text seen in the last two generations is
 * not tokenized again; a full young generation becomes the old one), so memory stays bounded.
 * Raw counts do not depend on the model family: every counter of the process shares one memo.
 */
class RawCounts {
  readonly #maxChars: number;
  #young = new Map<string, number>();
  #old = new Map<string, number>();
  #youngChars = 0;

  constructor(maxChars: number) {
    this.#maxChars = maxChars;
  }

  get(text: string): number | undefined {
    const young = this.#young.get(text);
    if (young !== undefined) return young;
    const old = this.#old.get(text);
    if (old !== undefined) this.set(text, old);
    return old;
  }

  set(text: string, n: number): void {
    if (text.length > this.#maxChars / 4) return;
    this.#young.set(text, n);
    this.#youngChars += text.length;
    if (this.#youngChars > this.#maxChars) {
      this.#old = this.#young;
      this.#young = new Map();
      this.#youngChars = 0;
    }
  }
}

const sharedCounts = new RawCounts(4 * 1024 * 1024);

/**
 * Counts tokens for one model family. `raw` counts are o200k tokens (additive over the pack's
 * line-aligned units); `scale` turns them into the model's estimated tokens, in which budgets are
 * given. Counts are memoised (by default in the memo every counter shares), so recompiling a pack
 * over mostly unchanged state stays cheap, and a text the boot compiler counted is not tokenized
 * again when a provider estimates the request that carries it.
 */
export class TokenCounter {
  /** The multiplier applied to o200k counts (1 or 1.2). */
  readonly factor: number;
  readonly encoding = TOKEN_ENCODING;
  readonly #num: number;
  readonly #den: number;
  readonly #memo: RawCounts;

  constructor(options: { claude?: boolean; cacheChars?: number } = {}) {
    const ratio = options.claude ? CLAUDE_RATIO : EXACT_RATIO;
    this.#num = ratio.num;
    this.#den = ratio.den;
    this.factor = ratio.num / ratio.den;
    this.#memo = options.cacheChars === undefined ? sharedCounts : new RawCounts(options.cacheChars);
  }

  /** o200k tokens in `text` (memoised). */
  raw(text: string): number {
    const hit = this.#memo.get(text);
    if (hit !== undefined) return hit;
    const n = countRawTokens(text);
    this.#memo.set(text, n);
    return n;
  }

  /**
   * The o200k count when it is at most `limit`, else false. Stops early on a long text, so
   * "does this fit" costs no more than the limit.
   */
  rawWithin(text: string, limit: number): number | false {
    const hit = this.#memo.get(text);
    if (hit !== undefined) return hit <= limit ? hit : false;
    const n = rawTokensWithin(text, limit);
    if (n !== false) this.#memo.set(text, n);
    return n;
  }

  /** Estimated model tokens in `text`: `scale(raw(text))`. */
  count(text: string): number {
    return this.scale(this.raw(text));
  }

  /** Model tokens for an o200k count: `ceil(raw × factor)`, in integers. */
  scale(raw: number): number {
    return Math.floor((raw * this.#num + this.#den - 1) / this.#den);
  }

  /** The largest o200k count whose scaled value stays within `budget` model tokens. */
  rawBudget(budget: number): number {
    return budget <= 0 ? 0 : Math.floor((budget * this.#den) / this.#num);
  }
}

const exactCounter = new TokenCounter();
const claudeCounter = new TokenCounter({ claude: true });

/**
 * The counter for a model: Anthropic models get the 1.2 safety factor, every other provider
 * (OpenAI, OpenAI-compatible, scripted) the plain o200k count.
 */
export function tokenCounterFor(model: Pick<ModelSpec, 'provider'>): TokenCounter {
  return model.provider === 'anthropic' ? claudeCounter : exactCounter;
}

/** `12345` → `12,345`: locale-independent, so rendered bytes never depend on the host. */
export function formatCount(n: number): string {
  const s = String(Math.trunc(Math.abs(n)));
  const grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return n < 0 ? `-${grouped}` : grouped;
}
