/**
 * A need's round-table flags and an operator's retry: bookkeeping about a need that is not its
 * content (the version does not move). NeedRepository's `setFlags` and `retry` are these.
 */
import type { StoreContext } from '../context.js';
import { UserError } from '../errors.js';
import type { Need } from '../types.js';
import { FAILURES_SINCE_SUCCESS } from './need-rows.js';

/**
 * Sets the round-table flags of an open or active need as the supervisor observes them: unmet
 * since a time (ms), orphaned. An omitted flag keeps its value. A change writes a
 * `need.flagged` event; setting the values already stored writes nothing. Flags are
 * observations, not content, so the version does not move.
 */
export function setNeedFlags(
  ctx: StoreContext,
  requireNeed: (id: string) => Need,
  id: string,
  flags: { unmetSince?: number | null; orphaned?: boolean },
): Need {
  if (flags.unmetSince != null && !Number.isSafeInteger(flags.unmetSince)) {
    throw new UserError(`unmetSince of need ${id} must be a time in whole milliseconds or null`);
  }
  return ctx.write(() => {
    const need = requireNeed(id);
    const unmetSince = flags.unmetSince === undefined ? need.unmetSince : flags.unmetSince;
    const orphaned = flags.orphaned ?? need.orphaned;
    if (unmetSince === need.unmetSince && orphaned === need.orphaned) return need;
    if (need.status !== 'open' && need.status !== 'active') {
      throw new UserError(`need ${id} is ${need.status}: only open or active needs are flagged`);
    }
    ctx
      .prepare('UPDATE needs SET unmet_since = ?, orphaned = ? WHERE id = ?')
      .run(unmetSince, orphaned ? 1 : 0, id);
    ctx.emit({ kind: 'need.flagged', entity: id, needId: id, payload: { unmetSince, orphaned } });
    return requireNeed(id);
  });
}

/**
 * An operator's retry of a need that failed (dead-lettered after `max_attempts`, or waiting for
 * its retry delay): its failed and lost attempts so far stop counting, towards the limit and the
 * delay, and its unmet and orphaned marks are cleared, so graduation and the round table take it
 * up again at once. The attempts stay in its history; a `need.retried` event records how many
 * were set aside.
 */
export function retryNeed(
  ctx: StoreContext,
  requireNeed: (id: string) => Need,
  id: string,
  options: { reason?: string } = {},
): Need {
  return ctx.write(() => {
    const need = requireNeed(id);
    if (need.status !== 'open') {
      throw new UserError(
        `need ${id} is ${need.status}: only an open need is retried${need.status === 'active' ? ' (its task is still running: cancel it first with mlos task cancel)' : ' (mlos need reopen opens it again)'}`,
      );
    }
    const row = ctx
      .prepare<[string], { lastAttempt: number; failures: number; live: string | null }>(
        `SELECT ${FAILURES_SINCE_SUCCESS} AS failures,
           (SELECT coalesce(max(attempt), 0) FROM tasks WHERE need_id = n.id) AS lastAttempt,
           (SELECT id FROM tasks WHERE need_id = n.id AND status IN ('queued', 'running')) AS live
         FROM needs n WHERE n.id = ?`,
      )
      .get(id)!;
    if (row.live !== null) {
      // Its next attempt is queued: setting its failures aside now would hide that attempt's.
      throw new UserError(
        `need ${id} is being tried again (task ${row.live} is queued): retry it once that attempt has ended`,
      );
    }
    if (row.failures === 0) {
      throw new UserError(
        `need ${id} has no failed attempt since its last success or retry: nothing to retry (it graduates as usual)`,
      );
    }
    ctx
      .prepare('UPDATE needs SET failures_from = ?, unmet_since = NULL, orphaned = 0 WHERE id = ?')
      .run(row.lastAttempt, id);
    ctx.emit({
      kind: 'need.retried',
      entity: id,
      needId: id,
      payload: { setAside: row.failures, failuresFrom: row.lastAttempt, reason: options.reason ?? null },
    });
    return requireNeed(id);
  });
}
