import type { Db } from '../database.js';
import type { NeedStatus } from '../transitions.js';
import type { Need } from '../types.js';

/** A row of `needs` as SELECT_NEED reads it: the columns, and the tags as a JSON array. */
export interface NeedRow {
  id: string;
  title: string;
  body: string;
  acceptance: string;
  status: NeedStatus;
  priority: number;
  scope: string;
  mode: 'once' | 'standing';
  cadence_ms: number | null;
  not_before: number | null;
  unmet_since: number | null;
  orphaned: number;
  version: number;
  created_at: number;
  updated_at: number;
  tags: string | null;
}

/** A need's row with its tags (a JSON array, sorted), for `toNeed`. */
export const SELECT_NEED = `SELECT n.*, (SELECT json_group_array(tag) FROM (SELECT tag FROM need_tags t WHERE t.need_id = n.id ORDER BY tag)) AS tags FROM needs n`;

/** The Need a row stands for. */
export function toNeed(row: NeedRow): Need {
  return {
    id: row.id,
    title: row.title,
    body: row.body,
    acceptance: row.acceptance,
    status: row.status,
    priority: row.priority,
    scope: row.scope,
    mode: row.mode,
    cadenceMs: row.cadence_ms,
    notBefore: row.not_before,
    unmetSince: row.unmet_since,
    orphaned: row.orphaned === 1,
    version: row.version,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    tags: row.tags ? (JSON.parse(row.tags) as string[]) : [],
  };
}

/**
 * How many failures caused by an unavailable model count as one attempt. Such a failure is not
 * the need's, but an outage that never ends (a wrong base URL, a spent quota) must still
 * escalate the need in the end, and a run with `--until-idle` must stop.
 */
export const OUTAGES_PER_ATTEMPT = 4;

/**
 * Per need `n`: its failed or lost attempts after its last successful one and after the attempt an
 * operator's retry counts from (`failures_from`). A failure with a cause (its model was unavailable)
 * is mostly not the need's: OUTAGES_PER_ATTEMPT of them count as one.
 */
export const FAILURES_SINCE_SUCCESS = `(SELECT coalesce(sum(t.cause IS NULL), 0) + coalesce(sum(t.cause IS NOT NULL), 0) / ${OUTAGES_PER_ATTEMPT}
   FROM tasks t WHERE t.need_id = n.id AND t.status IN ('failed', 'lost')
   AND t.attempt > max(n.failures_from,
     coalesce((SELECT max(attempt) FROM tasks s WHERE s.need_id = n.id AND s.status = 'succeeded'), 0)))`;

/** The repository's statements, prepared once per connection (a repository is built per store handle). */
export function prepareNeedStatements(db: Db) {
  return {
    get: db.prepare<[string], NeedRow>(`${SELECT_NEED} WHERE n.id = ?`),
    insert: db.prepare(
      `INSERT INTO needs (id, title, body, acceptance, priority, scope, mode, cadence_ms, not_before, created_at, updated_at)
       VALUES (@id, @title, @body, @acceptance, @priority, @scope, @mode, @cadenceMs, @notBefore, @now, @now)`,
    ),
    insertTag: db.prepare('INSERT OR IGNORE INTO need_tags (need_id, tag) VALUES (?, ?)'),
    deleteTags: db.prepare('DELETE FROM need_tags WHERE need_id = ?'),
  };
}
