import type { Db } from '../database.js';
import type { NeedStatus } from '../transitions.js';
import type { ArtifactRow } from './artifacts.js';

/** The statements of the pack reads (see PackReadRepository), prepared once per connection. */

export interface LineRow {
  id: string;
  title: string;
  status: NeedStatus;
  priority: number;
}

/**
 * Whether need `n` is in the scope: one of its tags is in `@tags` (a JSON array), none in
 * `@exclude`. Two probes of need_tags' primary key per need.
 */
const IN_SCOPE = /* sql */ `EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag IN (SELECT value FROM json_each(@tags)))
  AND NOT EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag IN (SELECT value FROM json_each(@exclude)))`;

/**
 * The open or active needs of the scope judged at `@now` (see `scopeView`), most telling first,
 * the first `@limit` of them with their titles, and with every row the scope's unmet total (a
 * window over the whole set, taken before the limit). Driven from the status index: the cost
 * follows the open and active needs, not the resolved ones that pile up over a long run (at
 * 50,000 needs, driving from the scope's tags took ~20 ms a call). `blocked` is only looked up for
 * open needs; live leases come from their own partial index, one probe per need.
 */
const SCOPE_FLAGS = /* sql */ `WITH flags AS (
    SELECT n.id, n.title, n.status, n.priority, n.orphaned,
      (n.unmet_since IS NOT NULL) AS flagged,
      (n.status = 'open' AND EXISTS (
        SELECT 1 FROM edges e JOIN needs d ON d.id = e.to_id
        WHERE e.from_id = n.id AND e.rel = 'depends_on' AND d.status <> 'resolved')) AS blocked,
      (n.not_before IS NOT NULL AND n.not_before > @now) AS deferred,
      EXISTS (SELECT 1 FROM leases l
        WHERE l.need_id = n.id AND l.task_id IS NOT NULL AND l.expires_at > @now) AS leased
    FROM needs n
    WHERE n.status IN ('open', 'active') AND ${IN_SCOPE}),
  judged AS (
    SELECT *, (orphaned = 1 OR flagged = 1
      OR ((status = 'active' OR (blocked = 0 AND deferred = 0)) AND leased = 0)) AS unmet
    FROM flags)
  SELECT *, sum(unmet) OVER () AS unmet_total FROM judged
  ORDER BY unmet DESC, orphaned DESC, priority, id LIMIT @limit`;

/**
 * Needs of the scope by status. Resolved ones pile up and are only counted, as the scope's size
 * (read from the tag index alone) less the others, which are counted from the status index.
 */
const SCOPE_COUNTS = /* sql */ `SELECT 'total' AS status, (SELECT count(*) FROM (
    SELECT need_id FROM need_tags WHERE tag IN (SELECT value FROM json_each(@tags))
    EXCEPT
    SELECT need_id FROM need_tags WHERE tag IN (SELECT value FROM json_each(@exclude)))) AS count
  UNION ALL
  SELECT n.status, count(*) FROM needs n
  WHERE n.status IN ('open', 'active', 'dropped') AND ${IN_SCOPE} GROUP BY n.status`;

export interface FlagRow {
  id: string;
  title: string;
  status: NeedStatus;
  priority: number;
  orphaned: number;
  blocked: number;
  deferred: number;
  leased: number;
  unmet: number;
  unmet_total: number;
}

/** The repository's statements, prepared once per connection. */
export function preparePackReads(db: Db) {
  return {
    dependsOn: db.prepare<[string], { from_id: string; to_id: string }>(
      `SELECT from_id, to_id FROM edges
         WHERE rel = 'depends_on' AND from_id IN (SELECT value FROM json_each(?)) ORDER BY from_id, to_id`,
    ),
    lines: db.prepare<[string], LineRow>(
      'SELECT id, title, status, priority FROM needs WHERE id IN (SELECT value FROM json_each(?))',
    ),
    artifact: db.prepare<[string], ArtifactRow>('SELECT * FROM artifacts WHERE id = ?'),
    referenced: db.prepare<[string, number], ArtifactRow>(
      `SELECT a.* FROM edges e JOIN artifacts a ON a.id = e.to_id
         WHERE e.from_id = ? AND e.rel = 'references' ORDER BY a.created_at, a.id LIMIT ?`,
    ),
    referencedCount: db
      .prepare<[string], number>(
        `SELECT count(*) FROM edges e JOIN artifacts a ON a.id = e.to_id
           WHERE e.from_id = ? AND e.rel = 'references'`,
      )
      .pluck(),
    earlierTaskIds: db
      .prepare<[string, number], string>(
        `SELECT id FROM tasks WHERE need_id = ? AND status NOT IN ('queued', 'running')
           ORDER BY attempt DESC LIMIT ?`,
      )
      .pluck(),
    earlierTaskCount: db
      .prepare<[string], number>(
        "SELECT count(*) FROM tasks WHERE need_id = ? AND status NOT IN ('queued', 'running')",
      )
      .pluck(),
    taskArtifacts: db.prepare<[string, number], ArtifactRow & { task_id: string }>(
      `SELECT a.*, min(t.id) AS task_id FROM tasks t
         JOIN edges e ON e.to_id = t.id AND e.rel = 'produced_by'
         JOIN artifacts a ON a.id = e.from_id
         WHERE t.need_id = ? GROUP BY a.id ORDER BY a.created_at DESC, a.id DESC LIMIT ?`,
    ),
    taskArtifactCount: db
      .prepare<[string], number>(
        `SELECT count(DISTINCT e.from_id) FROM tasks t
           JOIN edges e ON e.to_id = t.id AND e.rel = 'produced_by' WHERE t.need_id = ?`,
      )
      .pluck(),
    tagsOf: db.prepare<[string], string>('SELECT tag FROM need_tags WHERE need_id = ? ORDER BY tag').pluck(),
    newestWithTag: db
      .prepare<[string, string, number], string>(
        'SELECT need_id FROM need_tags WHERE tag = ? AND need_id <> ? ORDER BY need_id DESC LIMIT ?',
      )
      .pluck(),
    tagCount: db
      .prepare<[string, number], number>(
        'SELECT count(*) FROM (SELECT 1 FROM need_tags WHERE tag = ? LIMIT ?)',
      )
      .pluck(),
    shared: db.prepare<[string, string], { id: string; shared: number }>(
      `SELECT need_id AS id, count(*) AS shared FROM need_tags
         WHERE need_id IN (SELECT value FROM json_each(?)) AND tag IN (SELECT value FROM json_each(?))
         GROUP BY need_id`,
    ),
    eventCount: db.prepare<[string], number>('SELECT count(*) FROM events WHERE need_id = ?').pluck(),
    scopeFlags: db.prepare<Record<string, unknown>, FlagRow>(SCOPE_FLAGS),
    scopeCounts: db.prepare<Record<string, unknown>, { status: NeedStatus | 'total'; count: number }>(
      SCOPE_COUNTS,
    ),
  };
}
