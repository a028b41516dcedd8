import type { StoreContext } from '../context.js';
import { BudgetExceededError, NotFoundError, UserError } from '../errors.js';

/**
 * How long a reservation of an ended task is held, in ms: longer than any model call's deadline,
 * so that a call still in flight when its task was lost keeps counting against the budgets until
 * it settles (released reservations would let other tasks spend the same tokens meanwhile).
 */
export const RESERVATION_HOLD_MS = 10 * 60_000;

export interface BudgetLimits {
  /** Tokens one task may use (reserved + settled), or null for no cap. */
  readonly task: number | null;
  /** Tokens one identity may use per UTC day. */
  readonly day: number | null;
  /** Tokens one run (one `mlos run` or `mlos agent run`) may use. */
  readonly run: number | null;
}

export interface Reservation {
  readonly id: number;
  readonly taskId: string;
  readonly tokens: number;
}

export interface Usage {
  readonly inputTokens: number;
  readonly outputTokens: number;
  readonly cacheReadTokens: number;
  readonly cacheWriteTokens: number;
  readonly costUsd: number;
}

/**
 * Budgets fail closed: before every model call the worst case is reserved against the task's,
 * the identity's daily and the run's budget, and a reservation that could exceed any of them is
 * refused. Settlement replaces the reservation by the actual usage.
 */
export class BudgetRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** Starts a run (the scope of the run budget) and returns its id. */
  startRun(tokenLimit: number | null = null): string {
    return this.#ctx.write(() => {
      const id = this.#ctx.ids.next('run');
      this.#ctx
        .prepare('INSERT INTO runs (id, token_limit, started_at) VALUES (?, ?, ?)')
        .run(id, tokenLimit, this.#ctx.now());
      this.#ctx.emit({ kind: 'run.started', entity: id, payload: { tokenLimit } });
      return id;
    });
  }

  stopRun(runId: string): void {
    this.#ctx.write(() => {
      const { changes } = this.#ctx
        .prepare('UPDATE runs SET stopped_at = ? WHERE id = ? AND stopped_at IS NULL')
        .run(this.#ctx.now(), runId);
      if (changes)
        this.#ctx.emit({ kind: 'run.stopped', entity: runId, payload: { used: this.used('run', runId) } });
    });
  }

  runLimit(runId: string): number | null {
    const row = this.#ctx
      .prepare<[string], { token_limit: number | null }>('SELECT token_limit FROM runs WHERE id = ?')
      .get(runId);
    if (!row) throw new NotFoundError('run', runId);
    return row.token_limit;
  }

  /**
   * Tokens reserved (not yet settled) plus used in one scope. A task's few entries are summed; a
   * day's and a run's totals are kept by triggers (migration 4), so the check costs the same at
   * the end of a long day as at its start.
   */
  used(scope: 'task' | 'day' | 'run', key: string, identity?: string): number {
    if (scope === 'task') {
      return (
        this.#ctx
          .prepare<[string], number>(
            `SELECT coalesce(sum(CASE state WHEN 'reserved' THEN reserved_tokens WHEN 'settled' THEN used_tokens ELSE 0 END), 0)
             FROM budget_entries WHERE task_id = ?`,
          )
          .pluck()
          .get(key) ?? 0
      );
    }
    return (
      this.#ctx
        .prepare<[string, string, string], number>(
          'SELECT tokens FROM budget_totals WHERE scope = ? AND key = ? AND identity = ?',
        )
        .pluck()
        .get(scope, key, scope === 'day' ? (identity ?? '') : '') ?? 0
    );
  }

  /**
   * Reserves `tokens` for one call attempt of `taskId`, or throws BudgetExceededError naming the
   * budget that would overflow, what is used and what is left. Atomic with the check.
   */
  reserve(taskId: string, tokens: number, limits: BudgetLimits, runId: string | null = null): Reservation {
    if (!Number.isInteger(tokens) || tokens <= 0)
      throw new UserError('a reservation is a positive whole number of tokens');
    return this.#ctx.write(() => {
      const task = this.#ctx
        .prepare<[string], { identity: string; status: string }>(
          'SELECT identity, status FROM tasks WHERE id = ?',
        )
        .get(taskId);
      if (!task) throw new NotFoundError('task', taskId);
      if (task.status !== 'running') {
        throw new UserError(`task ${taskId} is ${task.status}: only a running task may reserve budget`);
      }
      const day = utcDay(this.#ctx.now());
      const checks: [string, number | null, number][] = [
        [`task ${taskId}`, limits.task, this.used('task', taskId)],
        [`identity ${task.identity} today (${day})`, limits.day, this.used('day', day, task.identity)],
      ];
      if (runId) checks.push([`run ${runId}`, limits.run ?? this.runLimit(runId), this.used('run', runId)]);
      for (const [what, limit, used] of checks) {
        if (limit !== null && used + tokens > limit) {
          throw new BudgetExceededError(
            `budget of ${what} would be exceeded: ${used} of ${limit} tokens used or reserved, this call needs up to ${tokens}; the call is not made`,
          );
        }
      }
      const { lastInsertRowid } = this.#ctx
        .prepare(
          `INSERT INTO budget_entries (task_id, identity, day, run_id, state, reserved_tokens, created_at)
           VALUES (?, ?, ?, ?, 'reserved', ?, ?)`,
        )
        .run(taskId, task.identity, day, runId, tokens, this.#ctx.now());
      return { id: Number(lastInsertRowid), taskId, tokens };
    });
  }

  /** The task a reservation belongs to. */
  reservationTask(reservationId: number): string {
    const row = this.#ctx
      .prepare<[number], { task_id: string }>('SELECT task_id FROM budget_entries WHERE id = ?')
      .get(reservationId);
    if (!row) throw new NotFoundError('reservation', String(reservationId));
    return row.task_id;
  }

  /** Replaces a reservation by the actual usage and adds it to the task's counters. */
  settle(reservationId: number, usage: Usage): void {
    this.#ctx.write(() => {
      const entry = this.#ctx
        .prepare<[number], { task_id: string; state: string }>(
          'SELECT task_id, state FROM budget_entries WHERE id = ?',
        )
        .get(reservationId);
      if (!entry) throw new NotFoundError('reservation', String(reservationId));
      // A released reservation (its task was lost mid-call) still settles: the tokens were spent.
      if (entry.state === 'settled') throw new UserError(`reservation ${reservationId} is already settled`);
      const used = usage.inputTokens + usage.outputTokens + usage.cacheReadTokens + usage.cacheWriteTokens;
      const now = this.#ctx.now();
      this.#ctx
        .prepare(
          "UPDATE budget_entries SET state = 'settled', used_tokens = ?, cost_usd = ?, settled_at = ? WHERE id = ?",
        )
        .run(used, usage.costUsd, now, reservationId);
      this.#ctx
        .prepare(
          `UPDATE tasks SET tokens_in = tokens_in + ?, tokens_out = tokens_out + ?, tokens_cache_read = tokens_cache_read + ?,
             tokens_cache_write = tokens_cache_write + ?, cost_usd = cost_usd + ? WHERE id = ?`,
        )
        .run(
          usage.inputTokens,
          usage.outputTokens,
          usage.cacheReadTokens,
          usage.cacheWriteTokens,
          usage.costUsd,
          entry.task_id,
        );
    });
  }

  /**
   * Releases the reservations of ended tasks older than RESERVATION_HOLD_MS: by then no call of
   * theirs can still be in flight, so what they held is free again. The supervisor calls it on
   * its loop. Returns how many were released.
   */
  releaseStale(now: number = this.#ctx.now()): number {
    const before = now - RESERVATION_HOLD_MS;
    return this.#ctx.write(
      () =>
        this.#ctx
          .prepare(
            `UPDATE budget_entries SET state = 'released', settled_at = ?
             WHERE state = 'reserved' AND created_at <= ?
               AND task_id IN (SELECT id FROM tasks WHERE status NOT IN ('queued', 'running'))`,
          )
          .run(now, before).changes,
    );
  }

  /** Releases every open reservation of a task now (an operator's cleanup; see releaseStale). */
  releaseTask(taskId: string): number {
    return this.#ctx.write(
      () =>
        this.#ctx
          .prepare(
            "UPDATE budget_entries SET state = 'released', settled_at = ? WHERE task_id = ? AND state = 'reserved'",
          )
          .run(this.#ctx.now(), taskId).changes,
    );
  }

  /** Totals for status displays: tokens used and cost, overall or for one run. */
  totals(runId?: string): { tokens: number; costUsd: number } {
    const row = this.#ctx
      .prepare<unknown[], { tokens: number; cost: number }>(
        `SELECT coalesce(sum(used_tokens), 0) AS tokens, coalesce(sum(cost_usd), 0) AS cost FROM budget_entries
         WHERE state = 'settled'${runId ? ' AND run_id = ?' : ''}`,
      )
      .get(...(runId ? [runId] : []))!;
    return { tokens: row.tokens, costUsd: row.cost };
  }
}

export function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
