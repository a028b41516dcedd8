import { hostname } from 'node:os';
import type { StoreContext } from '../context.js';
import { DatabaseError } from '../errors.js';
import type { Task } from '../types.js';
import { FAILURES_SINCE_SUCCESS } from './need-rows.js';
import {
  CANDIDATES,
  DEAD_LETTERED,
  LAST_FINISHED_AT,
  NEED_STATE_SELECT,
  type NeedStateRow,
  policyParams,
  type RawNeedState,
  RETRY_AT,
  RETRY_WAITING,
  type RetryPolicy,
  toNeedStateRow,
} from './scheduling-sql.js';
import { type TaskRow, toTask } from './tasks.js';

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export interface OutboxRow {
  readonly id: number;
  readonly taskId: string;
  readonly queue: string;
  readonly needId: string;
  readonly attempt: number;
}

export interface LockHolder {
  readonly pid: number;
  readonly host: string;
  readonly startedAt: number;
  readonly heartbeatAt: number;
}

/** A need the supervisor may graduate: actionable, no live task, with its retry history. */
export interface GraduationCandidate {
  readonly id: string;
  readonly priority: number;
  readonly createdAt: number;
  readonly mode: 'once' | 'standing';
  readonly cadenceMs: number | null;
  readonly tags: readonly string[];
  readonly orphaned: boolean;
  /** Failed or lost attempts since the last task that succeeded. */
  readonly failures: number;
  /** When the latest task of the need finished, if any. */
  readonly lastFinishedAt: number | null;
}

/**
 * The supervisor's reads and bookkeeping: the outbox, named cursors, the one-supervisor lock,
 * and the set-based queries of a scheduling tick. Bookkeeping tables write no events.
 */
export class SchedulingRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** Outbox rows waiting to be pushed into the task queue, oldest first. */
  outbox(limit = 500): OutboxRow[] {
    return this.#ctx
      .prepare<[number], OutboxRow>(
        `SELECT o.id, o.task_id AS taskId, o.queue, t.need_id AS needId, t.attempt
         FROM outbox o JOIN tasks t ON t.id = o.task_id ORDER BY o.id LIMIT ?`,
      )
      .all(limit);
  }

  /** Removes outbox rows once their jobs are in the queue. */
  drained(ids: readonly number[]): void {
    if (ids.length === 0) return;
    const del = this.#ctx.prepare('DELETE FROM outbox WHERE id = ?');
    this.#ctx.write(() => {
      for (const id of ids) del.run(id);
    });
  }

  cursor(name: string): number {
    return (
      this.#ctx.prepare<[string], number>('SELECT seq FROM cursors WHERE name = ?').pluck().get(name) ?? 0
    );
  }

  setCursor(name: string, seq: number): void {
    this.#ctx
      .prepare(
        'INSERT INTO cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq',
      )
      .run(name, seq);
  }

  lockHolder(): LockHolder | undefined {
    return this.#ctx
      .prepare<[], LockHolder>(
        'SELECT pid, host, started_at AS startedAt, heartbeat_at AS heartbeatAt FROM supervisor_lock WHERE id = 1',
      )
      .get();
  }

  /**
   * Takes the one-supervisor lock, or throws a DatabaseError naming the live holder. A holder
   * whose heartbeat is older than `staleMs` is presumed dead and replaced.
   */
  acquireLock(staleMs: number, pid = process.pid, host = hostname()): void {
    this.#ctx.write(() => {
      const now = this.#ctx.now();
      const holder = this.lockHolder();
      const alive =
        holder !== undefined &&
        now - holder.heartbeatAt < staleMs &&
        !(holder.pid === pid && holder.host === host) &&
        // On this host a dead pid is certain: no need to wait for its heartbeat to go stale.
        !(holder.host === host && !processAlive(holder.pid));
      if (holder && alive) {
        throw new DatabaseError(
          'supervisor_running',
          `another supervisor holds this database: pid ${holder.pid} on ${holder.host}, last heartbeat ${Math.round((now - holder.heartbeatAt) / 1000)} s ago; stop it first (one mlos run per database)`,
        );
      }
      this.#ctx
        .prepare(
          `INSERT INTO supervisor_lock (id, pid, host, started_at, heartbeat_at) VALUES (1, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, host = excluded.host,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at`,
        )
        .run(pid, host, now, now);
    });
  }

  /**
   * Renews the lock when its heartbeat is at least `everyMs` old (a write), else only checks that
   * this process still holds it (a read): the lock costs no commit per supervisor tick. Returns
   * false when another process took it (this one must stop).
   */
  heartbeatLock(everyMs = 0, pid = process.pid, host = hostname()): boolean {
    if (everyMs > 0) {
      const holder = this.lockHolder();
      if (holder?.pid !== pid || holder.host !== host) return false;
      if (this.#ctx.now() - holder.heartbeatAt < everyMs) return true;
    }
    const { changes } = this.#ctx
      .prepare('UPDATE supervisor_lock SET heartbeat_at = ? WHERE id = 1 AND pid = ? AND host = ?')
      .run(this.#ctx.now(), pid, host);
    return changes === 1;
  }

  releaseLock(pid = process.pid, host = hostname()): void {
    this.#ctx.prepare('DELETE FROM supervisor_lock WHERE id = 1 AND pid = ? AND host = ?').run(pid, host);
  }

  /**
   * Actionable needs without a live task, by priority then age, with their retry history. With a
   * `policy`, the needs graduation would only skip are left out in SQL, so they never fill a page
   * ahead of needs it can place: those escalated after `maxAttempts` failures (the dead letter)
   * and those waiting for their retry (see retryWaiting).
   */
  graduationCandidates(now: number, limit = 500, policy?: RetryPolicy): GraduationCandidate[] {
    const rows = this.#ctx
      .prepare<
        [Record<string, number>],
        Omit<GraduationCandidate, 'tags' | 'orphaned'> & { tags: string | null; orphaned: number }
      >(
        `SELECT c.* FROM (${CANDIDATES}) c
         ${policy ? `WHERE NOT ${DEAD_LETTERED} AND NOT ${RETRY_WAITING}` : ''}
         ORDER BY c.priority, c.createdAt, c.id LIMIT @limit`,
      )
      .all({ now, limit, ...policyParams(policy) });
    return rows.map((r) => ({
      ...r,
      tags: r.tags ? (JSON.parse(r.tags) as string[]).sort() : [],
      orphaned: r.orphaned === 1,
    }));
  }

  /**
   * Candidates that wait for their retry: failed since their last success, their latest task ended
   * less than the retry delay ago (doubled per failure, as retryAt in the guard). Not placed yet,
   * but not idle either: a run with only these left still has work.
   */
  retryWaiting(now: number, policy: RetryPolicy): number {
    if (policy.retryDelayMs <= 0) return 0;
    return (
      this.#ctx
        .prepare<[Record<string, number>], number>(
          `SELECT count(*) FROM (${CANDIDATES}) c WHERE NOT ${DEAD_LETTERED} AND ${RETRY_WAITING}`,
        )
        .pluck()
        .get({ now, ...policyParams(policy) }) ?? 0
    );
  }

  /** The earliest time a candidate waiting for its retry may be retried (see retryWaiting); null: none waits. */
  nextRetryAt(now: number, policy: RetryPolicy): number | null {
    if (policy.retryDelayMs <= 0) return null;
    return (
      this.#ctx
        .prepare<[Record<string, number>], number | null>(
          `SELECT min(${RETRY_AT}) FROM (${CANDIDATES}) c WHERE NOT ${DEAD_LETTERED} AND ${RETRY_WAITING}`,
        )
        .pluck()
        .get({ now, ...policyParams(policy) }) ?? null
    );
  }

  /**
   * Open needs with a failed or lost attempt since their last success or retry and no attempt
   * queued (what `mlos need retry --all-failed` retries), by id.
   */
  failedNeeds(): string[] {
    return this.#ctx
      .prepare<[], string>(
        `SELECT n.id FROM needs n WHERE n.status = 'open' AND ${FAILURES_SINCE_SUCCESS} > 0
           AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.need_id = n.id AND t.status IN ('queued', 'running'))
         ORDER BY n.id`,
      )
      .pluck()
      .all();
  }

  /**
   * A need's failed or lost attempts since its last success (what max_attempts counts), and when
   * its latest task ended (what the retry delay counts from).
   */
  failures(needId: string): { failures: number; lastFinishedAt: number | null } {
    return (
      this.#ctx
        .prepare<[string], { failures: number; lastFinishedAt: number | null }>(
          `SELECT ${FAILURES_SINCE_SUCCESS} AS failures, ${LAST_FINISHED_AT} AS lastFinishedAt
           FROM needs n WHERE n.id = ?`,
        )
        .get(needId) ?? { failures: 0, lastFinishedAt: null }
    );
  }

  /** Tasks by status. */
  taskCounts(): { status: string; count: number }[] {
    return this.#ctx
      .prepare<[], { status: string; count: number }>(
        'SELECT status, count(*) AS count FROM tasks GROUP BY status ORDER BY status',
      )
      .all();
  }

  /** Live (queued or running) tasks per identity. */
  liveTasksByIdentity(): Map<string, number> {
    const rows = this.#ctx
      .prepare<[], { identity: string; n: number }>(
        "SELECT identity, count(*) AS n FROM tasks WHERE status IN ('queued', 'running') GROUP BY identity",
      )
      .all();
    return new Map(rows.map((r) => [r.identity, r.n]));
  }

  /** Running tasks whose lease has expired at `now` (their holder stopped making progress). */
  expiredRunning(now: number): Task[] {
    return this.#ctx
      .prepare<[number], TaskRow>(
        `SELECT t.* FROM tasks t JOIN leases l ON l.need_id = t.need_id
         WHERE t.status = 'running' AND (l.task_id IS NOT t.id OR l.expires_at <= ?)`,
      )
      .all(now)
      .map(toTask);
  }

  /** Running tasks that heartbeat but made no progress since `progressBefore` (hung). */
  hungRunning(progressBefore: number): Task[] {
    return this.#ctx
      .prepare<[number], TaskRow>(
        "SELECT * FROM tasks WHERE status = 'running' AND coalesce(progress_at, started_at) < ? ORDER BY id",
      )
      .all(progressBefore)
      .map(toTask);
  }

  /** Tasks still queued (for reconciliation with the queue). */
  queued(): Task[] {
    return this.#ctx
      .prepare<[], TaskRow>("SELECT * FROM tasks WHERE status = 'queued' ORDER BY created_at, id")
      .all()
      .map(toTask);
  }

  /**
   * Live work: active needs, queued and running tasks (each an index range, so a tick pays for
   * what runs, not for the backlog). Whether actionable needs wait is graduation's count.
   */
  pendingWork(): { active: number; queued: number; running: number } {
    return this.#ctx
      .prepare<[], { active: number; queued: number; running: number }>(
        `SELECT
           (SELECT count(*) FROM needs WHERE status = 'active') AS active,
           (SELECT count(*) FROM tasks WHERE status = 'queued') AS queued,
           (SELECT count(*) FROM tasks WHERE status = 'running') AS running`,
      )
      .get()!;
  }

  /**
   * The compact state of every open or active need (what the round table watches), as of the
   * current seq. Resolved and dropped needs are left out: nothing is unmet there.
   */
  needStates(now: number): { seq: number; needs: NeedStateRow[] } {
    const read = this.#ctx.db.transaction(() => {
      const seq =
        this.#ctx.prepare<[], number>('SELECT coalesce(max(seq), 0) FROM events').pluck().get() ?? 0;
      const rows = this.#ctx
        .prepare<[{ now: number }], RawNeedState>(
          `${NEED_STATE_SELECT} WHERE n.status IN ('open', 'active') ORDER BY n.id`,
        )
        .all({ now });
      return { seq, needs: rows.map(toNeedStateRow) };
    });
    return read.deferred();
  }

  /** The compact state of one need at `now` (any status), as `needStates` computes it. */
  needState(id: string, now: number): NeedStateRow | undefined {
    const row = this.#ctx
      .prepare<[{ now: number; id: string }], RawNeedState>(`${NEED_STATE_SELECT} WHERE n.id = @id`)
      .get({ now, id });
    return row && toNeedStateRow(row);
  }

  /**
   * The needs whose round-table flags may need the supervisor's attention at `now`: unmet ones
   * not yet marked (`unmet_since` null), marked ones that are no longer unmet, and unmet ones
   * marked at or before `escalateBefore` that are not orphaned yet. Unmet here is the protocol's
   * definition (actionable or active, no live lease, a standing need's cadence due), which the
   * caller evaluates again on each row. `unmarkedOnly`: the first kind alone, read without
   * computing the state of the needs already marked (most of a backlog).
   */
  unmetUpkeep(now: number, escalateBefore: number, options: { unmarkedOnly?: boolean } = {}): NeedStateRow[] {
    const unmet = `((s.actionable OR s.status = 'active')
      AND NOT (s.leaseTask IS NOT NULL AND s.leaseExpiresAt IS NOT NULL AND s.leaseExpiresAt > @now)
      AND (s.dueAt IS NULL OR s.dueAt <= @now))`;
    const sql = options.unmarkedOnly
      ? `SELECT s.* FROM (${NEED_STATE_SELECT} WHERE n.status IN ('open', 'active') AND n.unmet_since IS NULL) s
         WHERE ${unmet} ORDER BY s.priority, s.id`
      : `SELECT s.* FROM (${NEED_STATE_SELECT} WHERE n.status IN ('open', 'active')) s
         WHERE (${unmet} AND (s.unmetSince IS NULL OR (s.orphaned = 0 AND s.unmetSince <= @before)))
            OR (NOT ${unmet} AND s.unmetSince IS NOT NULL)
         ORDER BY s.priority, s.id`;
    return this.#ctx
      .prepare<[{ now: number; before: number }], RawNeedState>(sql)
      .all({ now, before: escalateBefore })
      .map(toNeedStateRow);
  }
}

export type { NeedStateRow, RetryPolicy } from './scheduling-sql.js';
