import { formatCount } from '../tokens.js';
import type { LeftOutItem, NotConsidered, PackedItem, PackItemKind } from './types.js';

/**
 * The context pack's header: what the pack is for, its budget, and — truthfully — what is in it,
 * what was left out as pointers or dropped (counts and tokens), and what was never ranked.
 */

/** The numbers a header states. */
export interface HeaderTally {
  readonly included: number;
  readonly includedTokens: number;
  readonly abridged: number;
  readonly pointers: number;
  readonly pointerTokens: number;
  readonly dropped: number;
  readonly droppedTokens: number;
  /** Dropped items by kind, in rank order of first appearance. */
  readonly droppedByKind: readonly (readonly [PackItemKind, number])[];
}

/** Larger than any count a header states: a header rendered with it is the largest possible. */
const WORST = 999_999_999;

/** How an item's kind reads in a pointer line and the header. */
export function kindLabel(kind: PackItemKind): string {
  return kind === 'task' ? 'task record' : kind;
}

function plural(
  n: number,
  one: string,
  many = one.endsWith('y') ? `${one.slice(0, -1)}ies` : `${one}s`,
): string {
  return `${formatCount(n)} ${n === 1 ? one : many}`;
}

const sum = (items: readonly { tokens: number }[]) => items.reduce((s, i) => s + i.tokens, 0);

export function tally(items: readonly PackedItem[], leftOut: readonly LeftOutItem[]): HeaderTally {
  const pointers = leftOut.filter((i) => i.as === 'pointer');
  const dropped = leftOut.filter((i) => i.as === 'dropped');
  const byKind = new Map<PackItemKind, number>();
  for (const d of dropped) byKind.set(d.kind, (byKind.get(d.kind) ?? 0) + 1);
  return {
    included: items.length,
    includedTokens: sum(items),
    abridged: items.filter((i) => i.abridged).length,
    pointers: pointers.length,
    pointerTokens: sum(pointers),
    dropped: dropped.length,
    droppedTokens: sum(dropped),
    droppedByKind: [...byKind],
  };
}

export function worstTally(): HeaderTally {
  const kinds: PackItemKind[] = [
    'need',
    'dependency',
    'task',
    'note',
    'transcript',
    'artifact',
    'neighbour',
    'event',
  ];
  return {
    included: WORST,
    includedTokens: WORST,
    abridged: WORST,
    pointers: WORST,
    pointerTokens: WORST,
    dropped: WORST,
    droppedTokens: WORST,
    droppedByKind: kinds.map((k) => [k, WORST] as const),
  };
}

export function worstNotConsidered(nc: NotConsidered): NotConsidered {
  return {
    dependencies: nc.dependencies,
    memory: nc.memory && WORST,
    artifacts: nc.artifacts && WORST,
    neighbours: nc.neighbours && WORST,
    neighbourTags: nc.neighbourTags.map((t) => ({ tag: t.tag, needs: WORST, exact: false })),
    neighbourWindow: nc.neighbourWindow,
    events: nc.events && WORST,
  };
}

/**
 * The pack's first lines: what it is for, the budget, and — truthfully — what is in it, what was
 * left out as pointers or dropped (counts and tokens), and what was never ranked.
 */
export function renderHeader(
  title: string,
  budget: number,
  scaled: boolean,
  t: HeaderTally,
  nc: NotConsidered,
): string {
  const unit = scaled ? 'tokens, o200k_base ×1.2' : 'tokens, o200k_base';
  const lines = [`# Context pack: ${title} (budget ${formatCount(budget)} ${unit})`];
  const abridged = t.abridged
    ? ` (${formatCount(t.abridged)} abridged: the full text is behind the pointer named in the item)`
    : '';
  lines.push(`Included: ${plural(t.included, 'item')}, ${formatCount(t.includedTokens)} tokens${abridged}.`);
  const leftOut = t.pointers + t.dropped;
  if (leftOut === 0) {
    lines.push('Left out: nothing.');
  } else {
    const parts: string[] = [];
    if (t.pointers)
      parts.push(`${formatCount(t.pointers)} as pointers below (${formatCount(t.pointerTokens)} tokens)`);
    if (t.dropped) {
      const kinds = t.droppedByKind.map(([k, n]) => plural(n, kindLabel(k))).join(', ');
      parts.push(
        `${formatCount(t.dropped)} dropped without a pointer (${formatCount(t.droppedTokens)} tokens: ${kinds})`,
      );
    }
    const total = t.pointerTokens + t.droppedTokens;
    lines.push(`Left out: ${plural(leftOut, 'item')}, ${formatCount(total)} tokens — ${parts.join('; ')}.`);
  }
  const skipped: string[] = [];
  if (nc.dependencies) skipped.push('deeper dependencies (the chain was cut)');
  if (nc.memory) skipped.push(plural(nc.memory, 'older task record or note', 'older task records and notes'));
  if (nc.artifacts) skipped.push(plural(nc.artifacts, 'more referenced artifact'));
  if (nc.neighbours) skipped.push(plural(nc.neighbours, 'more need sharing tags', 'more needs sharing tags'));
  if (nc.neighbourTags.length) {
    const tags = nc.neighbourTags
      .map((t) => `${t.tag} is on ${t.exact ? '' : 'more than '}${plural(t.needs, 'other need')}`)
      .join(', ');
    skipped.push(
      `older needs sharing tags (only the newest ${formatCount(nc.neighbourWindow)} per tag were looked at; ${tags})`,
    );
  }
  if (nc.events) skipped.push(plural(nc.events, 'older event'));
  if (skipped.length)
    lines.push(`Not ranked: ${skipped.join('; ')} — find them with get_need and search_needs.`);
  return lines.join('\n');
}
