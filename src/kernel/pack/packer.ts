import { BudgetExceededError } from '../../store/index.js';
import { formatCount } from '../tokens.js';
import { kindLabel, renderHeader, tally, worstNotConsidered, worstTally } from './header.js';
import { renderPointerLine } from './render.js';
import {
  type LeftOutItem,
  type NotConsidered,
  PACK_SECTIONS,
  type PackedItem,
  type PackItemKind,
  type PackSection,
  SECTION_HEADINGS,
} from './types.js';

/**
 * The pure part of a context pack: greedy selection of ranked candidates under a token budget,
 * pointers for what does not fit, and a header that says truthfully what was left out. It does no
 * I/O; token counts come from the `PackMeter` it is given.
 */

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

export interface PackLayout {
  readonly text: string;
  /** o200k tokens of `text`. */
  readonly raw: number;
  readonly items: readonly PackedItem[];
  readonly leftOut: readonly LeftOutItem[];
}

interface Choice {
  readonly candidate: PackCandidate;
  readonly index: number;
  /** Index into `blocks`, or -1 for a pointer line, or -2 for dropped. */
  readonly block: number;
  readonly pointerLine?: string;
}

type SectionKey = PackSection | 'pointers';

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
  // Each text is counted several times (per pass, then in the layout): key the counts by the text
  // itself, so the meter's memo is asked once per text, not once per freshly concatenated line.
  const lines = new Map<string, number>();
  const line = (text: string): number => {
    let raw = lines.get(text);
    if (raw === undefined) {
      raw = meter.raw(`${text}\n`);
      lines.set(text, raw);
    }
    return raw;
  };
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
