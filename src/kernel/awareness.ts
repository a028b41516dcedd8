import { BudgetExceededError, type NeedStatus } from '../store/index.js';
import type { Identity } from './identity/schema.js';
import type { AwarenessSource, ScopeNeed, ScopeView } from './pack/source.js';
import { formatCount, type TokenCounter, tokenCounterFor } from './tokens.js';

/**
 * Layer 2 — awareness: the slice of the need state an identity can see, rendered as summary
 * lines (never bodies) under a token cap. A pure function of (identity, state): the same state
 * renders the same bytes.
 */

/** The default cap of an awareness block, in model tokens. */
export const DEFAULT_AWARENESS_TOKENS = 2_000;

/** How many needs of each scope the loader fetches at most (far more than any cap shows). */
export const AWARENESS_FETCH_LIMIT = 400;

/** The need state as one identity sees it: its primary and peripheral scopes. */
export interface AwarenessState {
  readonly primary: ScopeView;
  readonly peripheral: ScopeView;
}

export interface Awareness {
  readonly text: string;
  /** Model tokens of `text`: never more than the cap. */
  readonly tokens: number;
  readonly cap: number;
  /** How many need lines were shown, and how many open or active needs were not. */
  readonly shown: { readonly primary: number; readonly peripheral: number };
  readonly more: { readonly primary: number; readonly peripheral: number };
}

/**
 * Loads an identity's awareness state at `now`: the needs whose tags meet `scope.primary`, and
 * those meeting `scope.peripheral` but not the primary tags (a need is in one slice only).
 */
export function loadAwarenessState(
  source: AwarenessSource,
  identity: Identity,
  now: number,
  limit = AWARENESS_FETCH_LIMIT,
): AwarenessState {
  const primary = [...identity.scope.primary];
  return {
    primary: source.scopeView({ tags: primary, excludeTags: [] }, now, limit),
    peripheral: source.scopeView({ tags: [...identity.scope.peripheral], excludeTags: primary }, now, limit),
  };
}

type Slice = 'primary' | 'peripheral';

/** Unmet first, orphaned first among them, then priority, then id. */
export function compareScopeNeeds(a: ScopeNeed, b: ScopeNeed): number {
  return (
    Number(b.unmet) - Number(a.unmet) ||
    Number(b.orphaned) - Number(a.orphaned) ||
    a.priority - b.priority ||
    (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

export function renderScopeLine(n: ScopeNeed): string {
  const marks = [
    n.unmet && 'unmet',
    n.orphaned && 'orphaned',
    n.blocked && 'blocked',
    n.deferred && 'deferred',
    n.leased && 'leased',
  ].filter(Boolean);
  const title = n.title.replace(/\s+/g, ' ').trim();
  const short = title.length <= 120 ? title : `${title.slice(0, 119)}…`;
  return `- ${n.id} p${n.priority} ${n.status}${marks.length ? ` [${marks.join(', ')}]` : ''} ${short}`;
}

function sliceHeading(slice: Slice, tags: readonly string[], view: ScopeView): string {
  const c = view.counts;
  const total = (Object.values(c) as number[]).reduce((s, n) => s + n, 0);
  const statuses = (['open', 'active', 'resolved', 'dropped'] as NeedStatus[])
    .map((s) => `${formatCount(c[s])} ${s}`)
    .join(', ');
  const label = slice === 'primary' ? 'Primary scope' : 'Peripheral scope';
  if (tags.length === 0) return `${label}: no tags.`;
  return `${label} [${tags.join(', ')}]: ${formatCount(total)} needs (${statuses}); ${formatCount(view.unmet)} unmet.`;
}

function moreLine(slice: Slice, n: number): string {
  return `… and ${formatCount(n)} more ${slice} needs (open or active; list them with search_needs)`;
}

/**
 * Renders `state` for `identity` under `capTokens` model tokens. Each slice gets a heading with
 * its counts by status and its unmet count, then one line per open or active need. Lines are
 * chosen unmet first across both slices (primary before peripheral), then the remaining primary
 * needs, then the remaining peripheral ones; within a slice they show in rank order. What does
 * not fit is counted: "… and 37 more primary needs". Throws a BudgetExceededError when the cap
 * cannot hold the headings.
 */
export function compileAwareness(
  identity: Identity,
  state: AwarenessState,
  capTokens: number,
  options: { counter?: TokenCounter } = {},
): Awareness {
  const counter = options.counter ?? tokenCounterFor(identity.model);
  const rawCap = counter.rawBudget(capTokens);
  const line = (text: string) => counter.raw(`${text}\n`);
  const tags: Record<Slice, readonly string[]> = {
    primary: identity.scope.primary,
    peripheral: identity.scope.peripheral,
  };
  const sorted: Record<Slice, ScopeNeed[]> = {
    primary: [...state.primary.needs].sort(compareScopeNeeds),
    peripheral: [...state.peripheral.needs].sort(compareScopeNeeds),
  };
  const live = (s: Slice) => state[s].counts.open + state[s].counts.active;
  const title = `# Awareness: ${identity.name}`;
  const headings = (['primary', 'peripheral'] as const).map((s) => sliceHeading(s, tags[s], state[s]));

  // Candidate lines in the order they are granted space.
  const order: { slice: Slice; index: number }[] = [];
  for (const unmetPass of [true, false]) {
    for (const slice of ['primary', 'peripheral'] as const) {
      sorted[slice].forEach((n, index) => {
        if (n.unmet === unmetPass) order.push({ slice, index });
      });
    }
  }

  const render = (shown: Record<Slice, number>): string => {
    const lines = [title];
    (['primary', 'peripheral'] as const).forEach((slice, i) => {
      lines.push(headings[i]!);
      lines.push(...sorted[slice].slice(0, shown[slice]).map(renderScopeLine));
      const more = live(slice) - shown[slice];
      if (more > 0) lines.push(moreLine(slice, more));
    });
    return lines.join('\n');
  };

  // Lines within a slice are granted in rank order, so "shown" is a prefix length per slice.
  const fixed = line(title) + headings.reduce((s, h) => s + line(h), 0);
  const reserve =
    line(moreLine('primary', live('primary'))) + line(moreLine('peripheral', live('peripheral')));
  const shown: Record<Slice, number> = { primary: 0, peripheral: 0 };
  if (fixed + reserve > rawCap) {
    const minimal = render(shown);
    const minimalRaw = counter.raw(`${minimal}\n`);
    if (minimalRaw > rawCap) {
      throw new BudgetExceededError(
        `an awareness cap of ${capTokens} tokens is too small for ${identity.name}: its headings alone take ${counter.scale(minimalRaw)} tokens`,
      );
    }
  } else {
    let used = fixed + reserve;
    for (const { slice, index } of order) {
      if (index !== shown[slice]) continue;
      const cost = line(renderScopeLine(sorted[slice][index]!));
      if (used + cost > rawCap) continue;
      used += cost;
      shown[slice]++;
    }
  }
  // The reserve bounds the "more" lines; should a count re-tokenize larger, give back lines.
  let text = `${render(shown)}\n`;
  let raw = counter.raw(text);
  while (raw > rawCap && shown.primary + shown.peripheral > 0) {
    const slice: Slice = shown.peripheral > 0 ? 'peripheral' : 'primary';
    shown[slice]--;
    text = `${render(shown)}\n`;
    raw = counter.raw(text);
  }
  if (raw > rawCap) {
    throw new BudgetExceededError(
      `an awareness cap of ${capTokens} tokens is too small for ${identity.name}: its headings alone take ${counter.scale(raw)} tokens`,
    );
  }
  return {
    text,
    tokens: counter.scale(raw),
    cap: capTokens,
    shown: { ...shown },
    more: { primary: live('primary') - shown.primary, peripheral: live('peripheral') - shown.peripheral },
  };
}
