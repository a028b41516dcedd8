import { NotFoundError, sha256, UserError } from '../../store/index.js';
import type { Identity } from '../identity/schema.js';
import { TOKEN_ENCODING, type TokenCounter, tokenCounterFor } from '../tokens.js';
import { buildCandidates } from './candidates.js';
import { packCandidates } from './packer.js';
import { pointerId } from './render.js';
import type { PackSource } from './source.js';
import type { LeftOutItem, PackedItem, PackItemKind } from './types.js';

/** The default budget of a context pack, in model tokens. */
export const DEFAULT_PACK_BUDGET = 8_000;

/** A pointer the pack offers: a pointer line, or named inside an abridged item. */
export interface PackPointer {
  /** `ptr:art_…`, `ptr:need_…`, `ptr:task_…`: what expand_pointer takes. */
  readonly id: string;
  readonly kind: PackItemKind;
  readonly ref: string;
  readonly title: string;
  /** Model tokens of the full content behind it (what expand_pointer returns). */
  readonly tokens: number;
  /** True when the item shows abridged in the pack, false for a pointer line. */
  readonly abridged: boolean;
}

/** A compiled context pack (Layer 3) for one need and one identity. */
export interface ContextPack {
  readonly needId: string;
  readonly identity: string;
  readonly budget: number;
  /** Model tokens of `text`, header included: never more than `budget`. */
  readonly tokens: number;
  readonly encoding: typeof TOKEN_ENCODING;
  /** The safety factor applied to o200k counts (1.2 for Anthropic models, else 1). */
  readonly factor: number;
  readonly text: string;
  /** sha256 of `text` (UTF-8): recorded on the task as the provenance of what the agent saw. */
  readonly sha256: string;
  /** The items shown, in pack order. */
  readonly items: readonly PackedItem[];
  readonly pointers: readonly PackPointer[];
  readonly omitted: {
    /** Every item left out, as a pointer line or dropped, with its full size. */
    readonly items: readonly LeftOutItem[];
    readonly count: number;
    readonly tokens: number;
    readonly pointers: number;
    readonly dropped: number;
  };
}

export interface CompilePackOptions {
  /** The token counter; by default the one for the identity's model. */
  readonly counter?: TokenCounter;
}

/**
 * Compiles the context pack of `needId` for `identity` under `budget` model tokens. Items are
 * ranked (see `buildCandidates`), each counted with the real tokenizer, and packed greedily; the
 * pack, header included, never exceeds the budget. What does not fit becomes a pointer line
 * (expandable with expand_pointer) or, when even that does not fit, is dropped; the header says
 * how many and how large. The same state gives the same bytes and the same sha256.
 *
 * Throws a NotFoundError for an unknown need, a UserError for a budget that is not a positive
 * integer, and a BudgetExceededError when the budget cannot hold even the header.
 */
export function compilePack(
  source: PackSource,
  needId: string,
  identity: Identity,
  budget: number,
  options: CompilePackOptions = {},
): ContextPack {
  if (!Number.isSafeInteger(budget) || budget <= 0) {
    throw new UserError(`a pack budget must be a positive whole number of tokens, not ${budget}`);
  }
  const need = source.need(needId);
  if (!need) throw new NotFoundError('need', needId, 'list needs with `mlos need list`');
  const counter = options.counter ?? tokenCounterFor(identity.model);
  const { candidates, notConsidered } = buildCandidates(source, need, budget, counter);
  const layout = packCandidates(need.id, budget, candidates, notConsidered, counter);
  const tokens = counter.scale(layout.raw);
  const pointers: PackPointer[] = [];
  for (const item of layout.items) {
    if (!item.abridged) continue;
    const full = candidates.find((c) => c.ref === item.ref)!;
    const size = counter.scale(full.fullRaw());
    pointers.push({ ...pick(item), id: pointerId(item.ref), tokens: size, abridged: true });
  }
  for (const item of layout.leftOut) {
    if (item.as === 'pointer') pointers.push({ ...pick(item), id: pointerId(item.ref), abridged: false });
  }
  const dropped = layout.leftOut.filter((i) => i.as === 'dropped').length;
  return {
    needId: need.id,
    identity: identity.name,
    budget,
    tokens,
    encoding: TOKEN_ENCODING,
    factor: counter.factor,
    text: layout.text,
    sha256: sha256(layout.text),
    items: layout.items,
    pointers,
    omitted: {
      items: layout.leftOut,
      count: layout.leftOut.length,
      tokens: layout.leftOut.reduce((s, i) => s + i.tokens, 0),
      pointers: layout.leftOut.length - dropped,
      dropped,
    },
  };
}

function pick(item: { kind: PackItemKind; ref: string; title: string; tokens: number }) {
  return { kind: item.kind, ref: item.ref, title: item.title, tokens: item.tokens };
}
