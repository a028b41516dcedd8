// The takeover loop's bookkeeping that needs no I/O (see takeover-loop.ts).
import type { NeedState } from './need-bus.js';

/** What decides eligibility changed between two states of a need (time aside). */
export function changed(a: NeedState, b: NeedState): boolean {
  return (
    a.status !== b.status ||
    a.actionable !== b.actionable ||
    a.leaseTask !== b.leaseTask ||
    a.leaseExpiresAt !== b.leaseExpiresAt ||
    a.fencingToken !== b.fencingToken ||
    a.unmetSince !== b.unmetSince ||
    a.orphaned !== b.orphaned ||
    (a.lastTakeoverAt ?? null) !== (b.lastTakeoverAt ?? null) ||
    (a.dueAt ?? null) !== (b.dueAt ?? null) ||
    a.tags.join('\u0000') !== b.tags.join('\u0000')
  );
}

/** The not-before times of one need, by seat index (see TakeoverLoop's `#retry`). */
export class RetryTimes {
  readonly at: (number | undefined)[];
  /** The earliest time some seat may claim: −∞ while a seat has no time (it is judged each pass). */
  min = Number.NEGATIVE_INFINITY;

  constructor(seats: number) {
    this.at = new Array<number | undefined>(seats).fill(undefined);
  }

  /** Recomputes `min` after `at` changed. */
  refresh(): void {
    let min = Number.POSITIVE_INFINITY;
    for (const at of this.at) {
      if (at === undefined) {
        min = Number.NEGATIVE_INFINITY;
        break;
      }
      min = Math.min(min, at);
    }
    this.min = min;
  }
}

/** Most urgent first: orphaned, then lower priority number, then unmet longest, then id. */
export function urgency(a: NeedState, b: NeedState): number {
  return (
    Number(b.orphaned) - Number(a.orphaned) ||
    a.priority - b.priority ||
    (a.unmetSince ?? Number.POSITIVE_INFINITY) - (b.unmetSince ?? Number.POSITIVE_INFINITY) ||
    a.id.localeCompare(b.id)
  );
}
