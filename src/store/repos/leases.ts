import type { StoreContext } from '../context.js';
import type { Db } from '../database.js';
import { LeaseLostError, NotFoundError } from '../errors.js';
import type { Fence, Lease } from '../types.js';

interface LeaseRow {
  need_id: string;
  task_id: string | null;
  fencing_token: number;
  expires_at: number | null;
  updated_at: number;
}

/**
 * Leases: one row per need, never deleted. The fencing token grows on every claim, release,
 * expiry and operator transition; every write that carries a Fence is checked against it here,
 * in the store, so no path can bypass fencing.
 */
export class LeaseRepository {
  readonly #ctx: StoreContext;
  readonly #get;
  readonly #set;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
    const statements = ctx.once(prepareLeaseStatements);
    this.#get = statements.get;
    this.#set = statements.set;
  }

  get(needId: string): Lease | undefined {
    const row = this.#get.get(needId);
    return row && toLease(row);
  }

  require(needId: string): Lease {
    const lease = this.get(needId);
    if (!lease) throw new NotFoundError('need', needId, 'list needs with `mlos need list`');
    return lease;
  }

  /** True when a task holds the lease and it has not expired at `now`. */
  isLive(lease: Lease, now: number): boolean {
    return lease.taskId !== null && lease.expiresAt !== null && lease.expiresAt > now;
  }

  /**
   * Refuses a write made under a fence that is no longer current. Must run inside the write
   * transaction of that write.
   */
  assertFence(needId: string, fence: Fence): void {
    const lease = this.require(needId);
    if (lease.fencingToken === fence.token && lease.taskId === fence.taskId) {
      this.#ctx.fenced(needId, fence.token);
      return;
    }
    const holder = lease.taskId ? `held by task ${lease.taskId}` : 'held by no task';
    const tokens =
      lease.fencingToken > fence.token
        ? `token ${lease.fencingToken} > ${fence.token}`
        : `token ${lease.fencingToken}, not ${fence.token}`;
    throw new LeaseLostError(`lease lost: need ${needId} is now ${holder} (${tokens}); stop work on it`);
  }

  /** Gives the lease to `taskId` until `expiresAt` with a new fencing token, which it returns. */
  grant(needId: string, taskId: string, expiresAt: number): number {
    const lease = this.require(needId);
    const token = lease.fencingToken + 1;
    this.#set.run({ needId, taskId, token, expiresAt, now: this.#ctx.now() });
    this.#ctx.unfenced(needId);
    return token;
  }

  /** Extends a live lease held under `fence`; the token does not change. */
  renew(needId: string, fence: Fence, expiresAt: number): void {
    // Check and write under one write lock, so a revoke by another process cannot slip between.
    this.#ctx.write(() => {
      this.assertFence(needId, fence);
      this.#set.run({ needId, taskId: fence.taskId, token: fence.token, expiresAt, now: this.#ctx.now() });
    });
  }

  /** Clears the holder and bumps the token, so any writer still holding the old one is refused. */
  revoke(needId: string): number {
    const lease = this.require(needId);
    const token = lease.fencingToken + 1;
    this.#set.run({ needId, taskId: null, token, expiresAt: null, now: this.#ctx.now() });
    return token;
  }
}

function toLease(row: LeaseRow): Lease {
  return {
    needId: row.need_id,
    taskId: row.task_id,
    fencingToken: row.fencing_token,
    expiresAt: row.expires_at,
    updatedAt: row.updated_at,
  };
}

/** The repository's statements, prepared once per connection (a repository is built per store handle). */
function prepareLeaseStatements(db: Db) {
  return {
    get: db.prepare<[string], LeaseRow>('SELECT * FROM leases WHERE need_id = ?'),
    set: db.prepare(
      `UPDATE leases SET task_id = @taskId, fencing_token = @token, expires_at = @expiresAt, updated_at = @now
       WHERE need_id = @needId`,
    ),
  };
}
