import { IllegalTransitionError } from './errors.js';

export const NEED_STATUSES = ['open', 'active', 'resolved', 'dropped'] as const;
export type NeedStatus = (typeof NEED_STATUSES)[number];

export const TASK_STATUSES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'cancelled',
  'superseded',
  'lost',
] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * The legal state changes, the one table in code. The database gets the same rows at open
 * (table `transitions`) and its triggers refuse anything else, so no writer can bypass it.
 */
export const NEED_TRANSITIONS: Readonly<Record<NeedStatus, readonly NeedStatus[]>> = {
  open: ['active', 'resolved', 'dropped'],
  active: ['open', 'resolved', 'dropped'],
  resolved: ['open'],
  dropped: ['open'],
};

export const TASK_TRANSITIONS: Readonly<Record<TaskStatus, readonly TaskStatus[]>> = {
  queued: ['running', 'cancelled', 'superseded', 'lost'],
  running: ['succeeded', 'failed', 'cancelled', 'lost'],
  succeeded: [],
  failed: [],
  cancelled: [],
  superseded: [],
  lost: [],
};

export const LIVE_TASK_STATUSES: readonly TaskStatus[] = ['queued', 'running'];

export function canTransition(kind: 'need' | 'task', from: string, to: string): boolean {
  const table: Readonly<Record<string, readonly string[]>> =
    kind === 'need' ? NEED_TRANSITIONS : TASK_TRANSITIONS;
  return table[from]?.includes(to) ?? false;
}

/** Throws an IllegalTransitionError naming the entity, from and to, unless the change is legal. */
export function assertTransition(kind: 'need' | 'task', id: string, from: string, to: string): void {
  if (!canTransition(kind, from, to)) {
    const table: Readonly<Record<string, readonly string[]>> =
      kind === 'need' ? NEED_TRANSITIONS : TASK_TRANSITIONS;
    const allowed = table[from] ?? [];
    throw new IllegalTransitionError(
      `${kind} ${id}`,
      from,
      to,
      allowed.length ? `from ${from} it can go to ${allowed.join(', ')}` : `${from} is final`,
    );
  }
}

/** Rows for the database's `transitions` table. */
export function transitionRows(): { kind: string; from: string; to: string }[] {
  const rows: { kind: string; from: string; to: string }[] = [];
  for (const [from, tos] of Object.entries(NEED_TRANSITIONS))
    for (const to of tos) rows.push({ kind: 'need', from, to });
  for (const [from, tos] of Object.entries(TASK_TRANSITIONS))
    for (const to of tos) rows.push({ kind: 'task', from, to });
  return rows;
}
