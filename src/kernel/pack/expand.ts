import { NotFoundError, UserError } from '../../store/index.js';
import type { Identity } from '../identity/schema.js';
import { formatCount, rawPrefix, type TokenCounter, tokenCounterFor } from '../tokens.js';
import { pointerId, renderArtifactFull, renderNeedFull, renderTaskRecord } from './render.js';
import type { PackSource } from './source.js';

/** What `expand_pointer` returns: the full content behind a pointer, cut to the budget if needed. */
export interface ExpandedPointer {
  readonly id: string;
  readonly ref: string;
  readonly kind: 'need' | 'artifact' | 'task';
  readonly text: string;
  /** Model tokens of `text` (marker included): never more than the budget. */
  readonly tokens: number;
  /** Model tokens of the full content; equals the size the pack's pointer line stated. */
  readonly fullTokens: number;
  readonly truncated: boolean;
}

export interface ExpandPointerOptions {
  /**
   * The identity the pack was compiled for: sizes are counted for its model, as in the pack
   * (without it, the plain o200k count: Anthropic identities' packs state 1.2 × that).
   */
  readonly identity?: Pick<Identity, 'model'>;
  readonly counter?: TokenCounter;
}

/**
 * Returns the full content a pack pointer stands for — a need in full (`ptr:need_…`), an
 * artifact with its content (`ptr:art_…`) or an earlier task's record (`ptr:task_…`) — rendered
 * exactly as the pack sized it. When it exceeds `budget` model tokens, it is cut on a token
 * boundary and ends with a marker saying how much is shown of how much; the result, marker
 * included, never exceeds the budget.
 *
 * Throws a UserError for a malformed pointer or a budget too small for the marker, and a
 * NotFoundError when the entity does not exist.
 */
export function expandPointer(
  source: PackSource,
  pointer: string,
  budget: number,
  options: ExpandPointerOptions = {},
): ExpandedPointer {
  const counter = options.counter ?? tokenCounterFor(options.identity?.model ?? { provider: 'openai' });
  if (!Number.isSafeInteger(budget) || budget <= 0) {
    throw new UserError(`an expand_pointer budget must be a positive whole number of tokens, not ${budget}`);
  }
  const ref = pointer.startsWith('ptr:') ? pointer.slice(4) : pointer;
  const { kind, text } = resolve(source, ref, pointer);
  const fullRaw = counter.raw(text);
  const fullTokens = counter.scale(fullRaw);
  const id = pointerId(ref);
  if (fullTokens <= budget) return { id, ref, kind, text, tokens: fullTokens, fullTokens, truncated: false };

  const rawBudget = counter.rawBudget(budget);
  const marker = (shown: number) =>
    `\n[truncated: showing ${formatCount(shown)} of ${formatCount(fullTokens)} tokens of ${id}; expand again with a larger budget to see more]\n`;
  const markerRaw = counter.raw(marker(fullTokens));
  if (markerRaw >= rawBudget) {
    throw new UserError(
      `a budget of ${budget} tokens cannot show any of ${id} (${formatCount(fullTokens)} tokens): give at least ${counter.scale(markerRaw) + 16}`,
    );
  }
  // A cut prefix can re-tokenize a little differently at its end: shrink until it fits.
  let keep = rawBudget - markerRaw;
  for (;;) {
    const prefix = rawPrefix(text, keep);
    const shownRaw = counter.raw(prefix);
    const out = prefix + marker(counter.scale(shownRaw));
    const outRaw = counter.raw(out);
    if (outRaw <= rawBudget || keep === 0) {
      return { id, ref, kind, text: out, tokens: counter.scale(outRaw), fullTokens, truncated: true };
    }
    keep = Math.max(0, keep - (outRaw - rawBudget));
  }
}

function resolve(
  source: PackSource,
  ref: string,
  pointer: string,
): { kind: ExpandedPointer['kind']; text: string } {
  if (ref.startsWith('need_')) {
    const need = source.need(ref);
    if (!need) throw new NotFoundError('need', ref);
    return { kind: 'need', text: renderNeedFull(need) };
  }
  if (ref.startsWith('art_')) {
    const artifact = source.artifact(ref);
    if (!artifact) throw new NotFoundError('artifact', ref);
    return { kind: 'artifact', text: renderArtifactFull(artifact) };
  }
  if (ref.startsWith('task_')) {
    const task = source.task(ref);
    if (!task) throw new NotFoundError('task', ref);
    return { kind: 'task', text: renderTaskRecord(task) };
  }
  throw new UserError(
    `${JSON.stringify(pointer)} is not a pointer: use one a pack lists, e.g. ptr:art_…, ptr:need_… or ptr:task_…`,
  );
}
