import type { Store, StoredEvent } from '../../store/index.js';

/** A broken invariant: which, where (the need), and when (virtual ms since the start). */
export interface Violation {
  readonly invariant: string;
  readonly needId: string | null;
  readonly detail: string;
  readonly atMs: number;
}

const LIVE = new Set(['queued', 'running']);

/**
 * The simulator's invariants, checked incrementally: each `step()` reads only the events appended
 * since the previous one and checks what they touched. It keeps the trace (every event seen) so a
 * failing run can print its tail.
 *  - at most one live (queued or running) task per need;
 *  - no need resolved twice (`need.resolved` events per need);
 *  - no budget exceeded (a task's tokens within its identity's per-task budget; checked at the end);
 *  - the event chain verifies (at the end);
 *  - at the end: every need resolved (all are resolvable in the scenario), none orphaned.
 */
export class InvariantChecker {
  readonly #store: Store;
  readonly #start: number;
  #seq = 0;
  readonly #taskStatus = new Map<string, { needId: string; status: string }>();
  readonly #liveByNeed = new Map<string, Set<string>>();
  readonly #resolved = new Map<string, number>();
  readonly violations: Violation[] = [];
  readonly trace: StoredEvent[] = [];

  constructor(store: Store, start: number) {
    this.#store = store;
    this.#start = start;
  }

  /** Needs resolved at least once so far. */
  get resolvedNeeds(): number {
    return this.#resolved.size;
  }

  /** Needs resolved more than once (duplicate effects). */
  get duplicateEffects(): number {
    let n = 0;
    for (const count of this.#resolved.values()) if (count > 1) n++;
    return n;
  }

  /** Reads the new events and checks what they changed. */
  step(): void {
    for (;;) {
      const events = this.#store.events.since(this.#seq, 5000);
      if (events.length === 0) return;
      for (const event of events) this.#apply(event);
      this.#seq = events[events.length - 1]!.seq;
    }
  }

  #apply(event: StoredEvent): void {
    this.trace.push(event);
    const at = event.at - this.#start;
    if (event.kind === 'need.resolved' && event.needId) {
      const count = (this.#resolved.get(event.needId) ?? 0) + 1;
      this.#resolved.set(event.needId, count);
      if (count > 1) this.#fail('need resolved once', event.needId, `resolved ${count} times`, at);
    }
    if (!event.kind.startsWith('task.') || !event.needId) return;
    const status =
      event.kind === 'task.created' ? 'queued' : event.kind === 'task.started' ? 'running' : null;
    const to = status ?? (event.payload as { to?: string } | null)?.to ?? null;
    if (!to) return;
    const taskId = event.entity;
    this.#taskStatus.set(taskId, { needId: event.needId, status: to });
    let live = this.#liveByNeed.get(event.needId);
    if (!live) {
      live = new Set();
      this.#liveByNeed.set(event.needId, live);
    }
    if (LIVE.has(to)) live.add(taskId);
    else live.delete(taskId);
    if (live.size > 1) {
      this.#fail('one live task per need', event.needId, `live tasks ${[...live].join(', ')}`, at);
    }
  }

  /** The checks only possible (or only cheap) at the end of a run. */
  finish(options: { perTaskBudget: (identity: string) => number }): void {
    this.step();
    const at = this.#store.clock.now() - this.#start;
    const verify = this.#store.events.verify();
    if (!verify.ok) this.#fail('event chain verifies', null, JSON.stringify(verify), at);
    for (const [taskId, { needId }] of this.#taskStatus) {
      const task = this.#store.tasks.get(taskId);
      if (!task) continue;
      const used = this.#store.budgets.used('task', taskId);
      const limit = options.perTaskBudget(task.identity);
      if (used > limit)
        this.#fail('no budget exceeded', needId, `task ${taskId} used ${used} > ${limit}`, at);
    }
  }

  /** Every need resolved and none left orphaned. */
  checkDrained(needIds: readonly string[]): void {
    const at = this.#store.clock.now() - this.#start;
    for (const id of needIds) {
      const need = this.#store.needs.require(id);
      if (need.status !== 'resolved') this.#fail('every need resolved', id, `status ${need.status}`, at);
      if (need.orphaned) this.#fail('none orphaned', id, 'still orphaned', at);
    }
  }

  #fail(invariant: string, needId: string | null, detail: string, atMs: number): void {
    this.violations.push({ invariant, needId, detail, atMs });
  }

  /** The last `n` events, one line each, for a failing seed. */
  tail(n = 30): string[] {
    return this.trace
      .slice(-n)
      .map(
        (e) =>
          `#${e.seq} +${e.at - this.#start}ms ${e.kind} ${e.entity}${e.needId && e.needId !== e.entity ? ` need=${e.needId}` : ''} ${JSON.stringify(e.payload)}`,
      );
  }
}
