import { BudgetExceededError } from '../../store/index.js';
import { formatCount } from '../tokens.js';
import { pointerId, renderPointerLine } from './render.js';

/**
 * The pure part of a context pack: greedy selection of ranked candidates under a token budget,
 * pointers for what does not fit, and a header that says truthfully what was left out. It does no
 * I/O; token counts come from the `PackMeter` it is given.
 */

export const PACK_SECTIONS = ['need', 'dependencies', 'memory', 'artifacts', 'neighbours', 'events'] as const;
export type PackSection = (typeof PACK_SECTIONS)[number];

export const SECTION_HEADINGS: Readonly<Record<PackSection | 'pointers', string>> = {
  need: '## Need',
  dependencies: '## Dependency chain (depends_on, transitively)',
  memory: '## Notes and outcomes of earlier tasks',
  artifacts: '## Referenced artifacts',
  neighbours: '## Neighbours (needs sharing tags)',
  events: '## Recent events (newest first)',
  pointers: '## Pointers (left out; expand with expand_pointer)',
};

export type PackItemKind =
  | 'need'
  | 'dependency'
  | 'task'
  | 'note'
  | 'transcript'
  | 'artifact'
  | 'neighbour'
  | 'event';

/** One thing that may go into a pack, in rank order (most relevant first). */
export interface PackCandidate {
  readonly kind: PackItemKind;
  readonly section: PackSection;
  /** The entity it shows: `need_…`, `art_…`, `task_…`, or `ev_<seq>`. */
  readonly ref: string;
  readonly title: string;
  /**
   * The blocks that may show it, most complete first (e.g. an artifact in full, then by its
   * summary). Empty when only a pointer may stand for it.
   */
  readonly blocks: readonly PackBlock[];
  /** Whether a pointer line may stand for it when no block fits; otherwise it is dropped. */
  readonly pointer: boolean;
  /**
   * Raw tokens of what `expand_pointer` returns for it; for an item without a pointer, the raw
   * tokens of its first block. Called only when the number is shown.
   */
  readonly fullRaw: () => number;
}

/** One way to show a candidate; `abridged` when its full text is behind a pointer it names. */
export interface PackBlock {
  readonly text: string;
  readonly abridged: boolean;
}

/** Raw (o200k) counting and the scaling to model tokens. */
export interface PackMeter {
  raw(text: string): number;
  scale(raw: number): number;
  rawBudget(budget: number): number;
}

export interface PackedItem {
  readonly kind: PackItemKind;
  readonly ref: string;
  readonly title: string;
  /** Model tokens of the block shown. */
  readonly tokens: number;
  /** True when a shorter block than the full one is shown (its full text is behind a pointer). */
  readonly abridged: boolean;
}

export interface LeftOutItem {
  readonly kind: PackItemKind;
  readonly ref: string;
  readonly title: string;
  /** Model tokens of the item in full (what expand_pointer returns, or its line). */
  readonly tokens: number;
  /** `pointer`: a pointer line stands for it; `dropped`: not even a pointer fitted, or it has none. */
  readonly as: 'pointer' | 'dropped';
}

/** What the candidate lists were cut at before packing (counts of rows never ranked). */
export interface NotConsidered {
  readonly dependencies: boolean;
  readonly memory: number;
  readonly artifacts: number;
  readonly neighbours: number;
  /** Tags of the need carried by more needs than the neighbour window, and how many carry each. */
  readonly neighbourTags: readonly { readonly tag: string; readonly needs: number }[];
  readonly neighbourWindow: number;
  readonly events: number;
}

export interface PackLayout {
  readonly text: string;
  /** o200k tokens of `text`. */
  readonly raw: number;
  readonly items: readonly PackedItem[];
  readonly leftOut: readonly LeftOutItem[];
}

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

interface Choice {
  readonly candidate: PackCandidate;
  readonly index: number;
  /** Index into `blocks`, or -1 for a pointer line, or -2 for dropped. */
  readonly block: number;
  readonly pointerLine?: string;
}

type SectionKey = PackSection | 'pointers';

/** Larger than any count a header states: a header rendered with it is the largest possible. */
const WORST = 999_999_999;

/**
 * Packs `candidates` (in rank order) under `budget` model tokens, header included. Each candidate
 * takes its first block that fits; else a pointer line when it may have one and that fits; else
 * it is dropped. The header is counted: selection first reserves a worst-case header, then
 * retries with the real header's size and keeps the fuller layout that fits. Throws a
 * BudgetExceededError when not even the header fits.
 */
export function packCandidates(
  title: string,
  budget: number,
  candidates: readonly PackCandidate[],
  notConsidered: NotConsidered,
  meter: PackMeter,
): PackLayout {
  const rawBudget = meter.rawBudget(budget);
  const scaled = meter.scale(1000) !== 1000;
  const line = (text: string) => meter.raw(`${text}\n`);
  const fullCache = new Map<number, number>();
  const full = (i: number): number => {
    let v = fullCache.get(i);
    if (v === undefined) {
      v = meter.scale(candidates[i]!.fullRaw());
      fullCache.set(i, v);
    }
    return v;
  };

  const select = (available: number): Choice[] => {
    const choices: Choice[] = [];
    const opened = new Set<SectionKey>();
    let used = 0;
    const take = (section: SectionKey, raw: number): boolean => {
      const cost = raw + (opened.has(section) ? 0 : line(SECTION_HEADINGS[section]));
      if (used + cost > available) return false;
      used += cost;
      opened.add(section);
      return true;
    };
    for (let index = 0; index < candidates.length; index++) {
      const c = candidates[index]!;
      const block = available < 0 ? -1 : c.blocks.findIndex((b) => take(c.section, line(b.text)));
      if (block >= 0) {
        choices.push({ candidate: c, index, block });
        continue;
      }
      if (c.pointer && available >= 0) {
        const pointerLine = renderPointerLine(kindLabel(c.kind), c.ref, c.title, full(index));
        if (take('pointers', line(pointerLine))) {
          choices.push({ candidate: c, index, block: -1, pointerLine });
          continue;
        }
      }
      choices.push({ candidate: c, index, block: -2 });
    }
    return choices;
  };

  const layout = (choices: Choice[]): PackLayout & { headerRaw: number } => {
    const items: PackedItem[] = [];
    const leftOut: LeftOutItem[] = [];
    const sections = new Map<SectionKey, string[]>();
    const add = (s: SectionKey, text: string) => {
      const list = sections.get(s);
      if (list) list.push(text);
      else sections.set(s, [text]);
    };
    for (const { candidate: c, index, block, pointerLine } of choices) {
      if (block >= 0) {
        const { text, abridged } = c.blocks[block]!;
        add(c.section, text);
        items.push({
          kind: c.kind,
          ref: c.ref,
          title: c.title,
          tokens: meter.scale(line(text)),
          abridged,
        });
        continue;
      }
      if (pointerLine) add('pointers', pointerLine);
      const as = pointerLine ? 'pointer' : 'dropped';
      leftOut.push({ kind: c.kind, ref: c.ref, title: c.title, tokens: full(index), as });
    }
    const header = renderHeader(title, budget, scaled, tally(items, leftOut), notConsidered);
    const units = [header];
    for (const s of [...PACK_SECTIONS, 'pointers'] as const) {
      const blocks = sections.get(s);
      if (blocks) units.push(SECTION_HEADINGS[s], ...blocks);
    }
    const headerRaw = line(header);
    const raw = units.reduce((total, u, i) => total + (i === 0 ? headerRaw : line(u)), 0);
    return { text: `${units.join('\n')}\n`, raw, items, leftOut, headerRaw };
  };

  let reserve = line(renderHeader(title, budget, true, worstTally(), worstNotConsidered(notConsidered)));
  let best: (PackLayout & { headerRaw: number }) | undefined;
  // Usually two passes: the worst-case header, then the real one. Each overflow (not expected:
  // the worst case bounds the header) raises the reserve, so the loop ends.
  for (let pass = 0; pass < 8 && reserve <= rawBudget; pass++) {
    const attempt = layout(select(rawBudget - reserve));
    if (attempt.raw > rawBudget) {
      reserve += attempt.raw - rawBudget;
      continue;
    }
    if (!best || attempt.raw > best.raw) best = attempt;
    if (attempt.headerRaw >= reserve) break;
    reserve = attempt.headerRaw;
  }
  if (best) return strip(best);
  const minimal = layout(select(-1));
  if (minimal.raw <= rawBudget) return strip(minimal);
  throw new BudgetExceededError(
    `a budget of ${formatCount(budget)} tokens is too small for the context pack of ${title}: its header alone takes ${formatCount(meter.scale(minimal.raw))} tokens; give at least that`,
  );
}

function strip(l: PackLayout & { headerRaw: number }): PackLayout {
  return { text: l.text, raw: l.raw, items: l.items, leftOut: l.leftOut };
}

/** How an item's kind reads in a pointer line and the header. */
function kindLabel(kind: PackItemKind): string {
  return kind === 'task' ? 'task record' : kind;
}

function plural(n: number, one: string, many = `${one}s`): string {
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

function worstTally(): HeaderTally {
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

function worstNotConsidered(nc: NotConsidered): NotConsidered {
  return {
    dependencies: nc.dependencies,
    memory: nc.memory && WORST,
    artifacts: nc.artifacts && WORST,
    neighbours: nc.neighbours && WORST,
    neighbourTags: nc.neighbourTags.map((t) => ({ tag: t.tag, needs: WORST })),
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
    const tags = nc.neighbourTags.map((t) => `${t.tag} is on ${plural(t.needs, 'other need')}`).join(', ');
    skipped.push(
      `older needs sharing tags (only the newest ${formatCount(nc.neighbourWindow)} per tag were looked at; ${tags})`,
    );
  }
  if (nc.events) skipped.push(plural(nc.events, 'older event'));
  if (skipped.length)
    lines.push(`Not ranked: ${skipped.join('; ')} — find them with get_need and search_needs.`);
  return lines.join('\n');
}

export { pointerId };
