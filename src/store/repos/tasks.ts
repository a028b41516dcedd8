import type { StoreContext } from '../context.js';
import type { Db } from '../database.js';
import { NotFoundError, UserError } from '../errors.js';
import { NameSchema, parseInput } from '../schemas.js';
import { assertTransition, LIVE_TASK_STATUSES, type TaskStatus } from '../transitions.js';
import type { Fence, Task, TaskCause, TaskOutcome } from '../types.js';
import { RESERVATION_HOLD_MS } from './budgets.js';
import type { LeaseRepository } from './leases.js';

export interface TaskRow {
  id: string;
  need_id: string;
  identity: string;
  agent_id: string | null;
  status: TaskStatus;
  attempt: number;
  fencing_token: number;
  outcome: TaskOutcome | null;
  summary: string | null;
  error: string | null;
  cause: TaskCause | null;
  pack_hash: string | null;
  tokens_in: number;
  tokens_out: number;
  tokens_cache_read: number;
  tokens_cache_write: number;
  cost_usd: number;
  created_at: number;
  started_at: number | null;
  finished_at: number | null;
  heartbeat_at: number | null;
  progress_at: number | null;
}

export interface TaskEnd {
  readonly outcome?: TaskOutcome;
  readonly summary?: string;
  readonly error?: string;
  /** A failure that was not the work's fault (see TaskCause). */
  readonly cause?: TaskCause;
  readonly fence?: Fence;
}

const TERMINAL: readonly TaskStatus[] = ['succeeded', 'failed', 'cancelled', 'superseded', 'lost'];

/** Tasks: attempts at a need. At most one is live (queued or running) per need. */
export class TaskRepository {
  readonly #ctx: StoreContext;
  readonly #leases: LeaseRepository;
  readonly #get;
  readonly #live;

  constructor(ctx: StoreContext, leases: LeaseRepository) {
    this.#ctx = ctx;
    this.#leases = leases;
    const statements = ctx.once(prepareTaskReads);
    this.#get = statements.get;
    this.#live = statements.live;
  }

  get(id: string): Task | undefined {
    const row = this.#get.get(id);
    return row && toTask(row);
  }

  require(id: string): Task {
    const task = this.get(id);
    if (!task) throw new NotFoundError('task', id, 'list tasks with `mlos status`');
    return task;
  }

  liveFor(needId: string): Task | undefined {
    const row = this.#live.get(needId);
    return row && toTask(row);
  }

  forNeed(needId: string): Task[] {
    return this.#ctx
      .prepare<[string], TaskRow>('SELECT * FROM tasks WHERE need_id = ? ORDER BY attempt')
      .all(needId)
      .map(toTask);
  }

  listByStatus(statuses: readonly TaskStatus[], limit = 1000): Task[] {
    return this.#ctx
      .prepare<unknown[], TaskRow>(
        `SELECT * FROM tasks WHERE status IN (${statuses.map(() => '?').join(', ')}) ORDER BY created_at, id LIMIT ?`,
      )
      .all(...statuses, limit)
      .map(toTask);
  }

  /**
   * Creates the next attempt at a need as a queued task, and (with `queue`) its outbox row in
   * the same transaction, so the task reaches the queue exactly once even across a crash.
   */
  create(needId: string, identity: string, options: { queue?: string } = {}): Task {
    parseInput(NameSchema, identity, 'identity name');
    return this.#ctx.write(() => {
      const need = this.#ctx
        .prepare<[string], { status: string }>('SELECT status FROM needs WHERE id = ?')
        .get(needId);
      if (!need) throw new NotFoundError('need', needId);
      if (need.status !== 'open' && need.status !== 'active') {
        throw new UserError(`need ${needId} is ${need.status}: only open or active needs get tasks`);
      }
      if (!this.#ctx.prepare('SELECT 1 FROM identity_pins WHERE name = ?').get(identity)) {
        throw new NotFoundError('identity', identity, 'list identities with `mlos identity list`');
      }
      const live = this.liveFor(needId);
      if (live)
        throw new UserError(`need ${needId} already has live task ${live.id} (${live.status})`, {
          code: 'task_live',
        });
      const attempt =
        (this.#ctx
          .prepare<[string], number>('SELECT coalesce(max(attempt), 0) FROM tasks WHERE need_id = ?')
          .pluck()
          .get(needId) ?? 0) + 1;
      const id = this.#ctx.ids.next('task');
      const now = this.#ctx.now();
      this.#ctx
        .prepare(
          `INSERT INTO tasks (id, need_id, identity, status, attempt, created_at)
           VALUES (?, ?, ?, 'queued', ?, ?)`,
        )
        .run(id, needId, identity, attempt, now);
      if (options.queue) {
        this.#ctx
          .prepare('INSERT INTO outbox (task_id, queue, created_at) VALUES (?, ?, ?)')
          .run(id, options.queue, now);
      }
      this.#ctx.emit({ kind: 'task.created', entity: id, needId, payload: { identity, attempt } });
      return this.require(id);
    });
  }

  /**
   * Starts a queued task: it takes the need's lease until `leaseUntil` with a new fencing token,
   * and the need becomes active. Returns the task with the token it now holds.
   */
  start(taskId: string, options: { agentId?: string; leaseUntil: number }): Task {
    return this.#ctx.write(() => {
      const task = this.require(taskId);
      assertTransition('task', taskId, task.status, 'running');
      if (options.agentId && !this.#ctx.prepare('SELECT 1 FROM agents WHERE id = ?').get(options.agentId)) {
        throw new NotFoundError(
          'agent',
          options.agentId,
          'a worker registers its agents before they take work',
        );
      }
      const token = this.#leases.grant(task.needId, taskId, options.leaseUntil);
      const now = this.#ctx.now();
      this.#ctx
        .prepare(
          `UPDATE tasks SET status = 'running', agent_id = ?, fencing_token = ?, started_at = ?, heartbeat_at = ?,
           progress_at = ? WHERE id = ?`,
        )
        .run(options.agentId ?? null, token, now, now, now, taskId);
      const need = this.#ctx
        .prepare<[string], { status: string; version: number }>(
          'SELECT status, version FROM needs WHERE id = ?',
        )
        .get(task.needId)!;
      if (need.status === 'open') {
        this.#ctx
          .prepare("UPDATE needs SET status = 'active', version = version + 1, updated_at = ? WHERE id = ?")
          .run(now, task.needId);
      }
      this.#ctx.emit({
        kind: 'task.started',
        entity: taskId,
        needId: task.needId,
        payload: { agentId: options.agentId ?? null, fencingToken: token, leaseUntil: options.leaseUntil },
      });
      return this.require(taskId);
    });
  }

  /** Records the hash of the context pack a running task booted with (provenance of what it saw). */
  recordBoot(taskId: string, packHash: string): Task {
    return this.#ctx.write(() => {
      const task = this.require(taskId);
      if (task.packHash === packHash) return task;
      this.#ctx.prepare('UPDATE tasks SET pack_hash = ? WHERE id = ?').run(packHash, taskId);
      this.#ctx.emit({ kind: 'task.booted', entity: taskId, needId: task.needId, payload: { packHash } });
      return this.require(taskId);
    });
  }

  /**
   * Cancels a queued or running task: an operator transition, so the need's fencing token is
   * bumped whether or not the task held the lease.
   */
  cancel(taskId: string, reason: string): Task {
    return this.#ctx.write(() => {
      const task = this.transition(taskId, 'cancelled', { error: reason });
      this.#leases.revoke(task.needId);
      return task;
    });
  }

  /**
   * Ends a task (or moves it between live states). A task that held the need's lease releases
   * it (the token is bumped) and an active need without a live task goes back to open.
   */
  transition(taskId: string, to: TaskStatus, end: TaskEnd = {}): Task {
    return this.#ctx.write(() => {
      const task = this.require(taskId);
      assertTransition('task', taskId, task.status, to);
      if (end.fence) this.#leases.assertFence(task.needId, end.fence);
      const now = this.#ctx.now();
      const terminal = TERMINAL.includes(to);
      this.#ctx
        .prepare(
          `UPDATE tasks SET status = ?, outcome = coalesce(?, outcome), summary = coalesce(?, summary),
           error = coalesce(?, error), cause = coalesce(?, cause),
           finished_at = CASE WHEN ? THEN ? ELSE finished_at END WHERE id = ?`,
        )
        .run(
          to,
          end.outcome ?? null,
          end.summary ?? null,
          end.error ?? null,
          end.cause ?? null,
          terminal ? 1 : 0,
          now,
          taskId,
        );
      if (terminal) {
        const lease = this.#leases.require(task.needId);
        if (lease.taskId === taskId) this.#leases.revoke(task.needId);
        // A task that ended spends nothing more, but a call of it may still be in flight (a lost
        // task's session in another process): its recent reservations stay until settled or swept.
        this.#ctx
          .prepare(
            `UPDATE budget_entries SET state = 'released', settled_at = ?
             WHERE task_id = ? AND state = 'reserved' AND created_at <= ?`,
          )
          .run(now, taskId, now - RESERVATION_HOLD_MS);
        this.#ctx
          .prepare(
            "UPDATE needs SET status = 'open', version = version + 1, updated_at = ? WHERE id = ? AND status = 'active'",
          )
          .run(now, task.needId);
      }
      this.#ctx.emit({
        kind: `task.${to}`,
        entity: taskId,
        needId: task.needId,
        payload: {
          from: task.status,
          to,
          outcome: end.outcome ?? null,
          summary: end.summary ?? null,
          error: end.error ?? null,
          ...(end.cause && { cause: end.cause }),
        },
      });
      return this.require(taskId);
    });
  }
}

export function toTask(row: TaskRow): Task {
  return {
    id: row.id,
    needId: row.need_id,
    identity: row.identity,
    agentId: row.agent_id,
    status: row.status,
    attempt: row.attempt,
    fencingToken: row.fencing_token,
    outcome: row.outcome,
    summary: row.summary,
    error: row.error,
    cause: row.cause ?? null,
    packHash: row.pack_hash,
    tokensIn: row.tokens_in,
    tokensOut: row.tokens_out,
    tokensCacheRead: row.tokens_cache_read,
    tokensCacheWrite: row.tokens_cache_write,
    costUsd: row.cost_usd,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    heartbeatAt: row.heartbeat_at,
    progressAt: row.progress_at,
  };
}

/** The repository's hot reads, prepared once per connection. */
function prepareTaskReads(db: Db) {
  return {
    get: db.prepare<[string], TaskRow>('SELECT * FROM tasks WHERE id = ?'),
    live: db.prepare<[string], TaskRow>(
      `SELECT * FROM tasks WHERE need_id = ? AND status IN (${LIVE_TASK_STATUSES.map((s) => `'${s}'`).join(', ')})`,
    ),
  };
}
