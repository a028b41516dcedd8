/**
 * The SQL of the supervisor's set-based reads (see SchedulingRepository): graduation candidates,
 * what graduation skips (dead-lettered needs, needs waiting for their retry), and the compact need
 * state the round table watches.
 */
import { FAILURES_SINCE_SUCCESS } from './need-rows.js';

/** What graduation skips in SQL (see graduationCandidates). */
export interface RetryPolicy {
  readonly maxAttempts: number;
  /** The first retry's delay, doubled per failure, capped at `maxRetryDelayMs`; 0: none. */
  readonly retryDelayMs: number;
  readonly maxRetryDelayMs: number;
}

export function policyParams(policy: RetryPolicy | undefined): Record<string, number> {
  return policy
    ? { max: policy.maxAttempts, base: policy.retryDelayMs, cap: policy.maxRetryDelayMs }
    : { max: 0, base: 0, cap: 0 };
}

/** Per need `n`: when its latest task ended (what the retry delay counts from). */
export const LAST_FINISHED_AT = '(SELECT max(finished_at) FROM tasks t WHERE t.need_id = n.id)';

/**
 * Per standing need `n`: when its latest successful round ended. Its cadence counts from there; a
 * failed or lost round waits out the retry delay instead (see RETRY_AT), not a whole cadence.
 */
const LAST_SUCCEEDED_AT = `(SELECT max(finished_at) FROM tasks t WHERE t.need_id = n.id AND t.status = 'succeeded')`;

/**
 * Actionable needs without a live task (columns of GraduationCandidate); `@now` decides. A standing
 * need is a candidate once its cadence is due, so that needs not due never fill a page.
 */
export const CANDIDATES = `SELECT n.id, n.priority, n.created_at AS createdAt, n.mode, n.cadence_ms AS cadenceMs, n.orphaned,
     (SELECT json_group_array(tag) FROM need_tags t WHERE t.need_id = n.id) AS tags,
     ${FAILURES_SINCE_SUCCESS} AS failures,
     ${LAST_FINISHED_AT} AS lastFinishedAt
   FROM ready_needs n
   WHERE (n.not_before IS NULL OR n.not_before <= @now)
     AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.need_id = n.id AND t.status IN ('queued', 'running'))
     AND NOT (n.mode = 'standing' AND coalesce(${LAST_SUCCEEDED_AT} + n.cadence_ms > @now, 0))`;

/** A candidate `c` escalated after @max failures: graduation is done with it. */
export const DEAD_LETTERED = '(c.orphaned = 1 AND c.failures >= @max)';

/** When a failed candidate `c` may be retried: @base doubled per failure, at most @cap, after its last end. */
export const RETRY_AT = 'c.lastFinishedAt + min(@base * (1 << min(c.failures - 1, 30)), @cap)';

/** A candidate `c` whose retry delay has not passed (see RETRY_AT). */
export const RETRY_WAITING = `(@base > 0 AND c.failures > 0 AND c.lastFinishedAt IS NOT NULL
  AND ${RETRY_AT} > @now)`;

/**
 * The compact need state, one row per need; `@now` decides actionability. The last takeover is the
 * latest `need.claimed` event that took work over from another task or went through the round
 * table; a standing need is due again when its latest successful round's end plus its cadence has
 * passed.
 */
export const NEED_STATE_SELECT = `SELECT n.id, n.title, n.status, n.priority, n.scope, n.unmet_since AS unmetSince, n.orphaned,
   (SELECT json_group_array(tag) FROM need_tags t WHERE t.need_id = n.id) AS tags,
   (n.status = 'open' AND NOT EXISTS (SELECT 1 FROM need_blockers b WHERE b.need_id = n.id)
     AND (n.not_before IS NULL OR n.not_before <= @now)) AS actionable,
   l.task_id AS leaseTask, l.expires_at AS leaseExpiresAt, l.fencing_token AS fencingToken,
   (SELECT max(e.at) FROM events e WHERE e.need_id = n.id AND e.kind = 'need.claimed'
     AND (json_extract(e.payload, '$.takeover') = 1 OR json_extract(e.payload, '$.roundTable') = 1)) AS lastTakeoverAt,
   CASE WHEN n.mode = 'standing'
     THEN ${LAST_SUCCEEDED_AT} + coalesce(n.cadence_ms, 0) END AS dueAt
 FROM needs n JOIN leases l ON l.need_id = n.id`;

export type RawNeedState = Omit<NeedStateRow, 'tags' | 'actionable' | 'orphaned'> & {
  tags: string | null;
  actionable: number;
  orphaned: number;
};

export function toNeedStateRow(r: RawNeedState): NeedStateRow {
  return {
    ...r,
    tags: r.tags ? (JSON.parse(r.tags) as string[]).sort() : [],
    actionable: r.actionable === 1,
    orphaned: r.orphaned === 1,
  };
}

export interface NeedStateRow {
  readonly id: string;
  readonly title: string;
  readonly status: 'open' | 'active' | 'resolved' | 'dropped';
  readonly priority: number;
  readonly scope: string;
  readonly tags: readonly string[];
  readonly actionable: boolean;
  readonly leaseTask: string | null;
  readonly leaseExpiresAt: number | null;
  readonly fencingToken: number;
  readonly unmetSince: number | null;
  readonly orphaned: boolean;
  /** The latest claim that took the need over (from another task, or through the round table). */
  readonly lastTakeoverAt: number | null;
  /** A standing need: when its next cadence is due; null otherwise (or never run). */
  readonly dueAt: number | null;
}
