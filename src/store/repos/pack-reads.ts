import type { StoreContext } from '../context.js';
import type { Db } from '../database.js';
import type { EventLog } from '../event-log.js';
import type { NeedStatus } from '../transitions.js';
import type { Artifact, Need, StoredEvent, Task } from '../types.js';
import { type ArtifactRow, toArtifact } from './artifacts.js';
import type { NeedRepository } from './needs.js';
import type { TaskRepository } from './tasks.js';

/**
 * Read-only, indexed queries the kernel compiles context packs, pointer expansions and awareness
 * from. Each list is bounded by a limit and ordered with an id or seq as the last key, so the
 * same database always gives the same rows. The shapes match the kernel's `PackSource` and
 * `AwarenessSource` ports structurally; the store does not import them.
 */

interface LineRow {
  id: string;
  title: string;
  status: NeedStatus;
  priority: number;
}

const STATUSES: readonly NeedStatus[] = ['open', 'active', 'resolved', 'dropped'];

/**
 * The needs whose tags meet `@tags` and none of `@exclude` (JSON arrays); open or active ones with what awareness
 * judges it by at `@now`. Driven from the tag index (CROSS JOIN fixes the join order), so the cost
 * follows the size of the scope, not of the graph; `blocked` is only looked up for open needs.
 * Live leases are few and come from their own partial index instead of a join per need.
 */
const SCOPED = /* sql */ `
  WITH scoped (id) AS MATERIALIZED (
    SELECT need_id FROM need_tags WHERE tag IN (SELECT value FROM json_each(@tags))
    EXCEPT
    SELECT need_id FROM need_tags WHERE tag IN (SELECT value FROM json_each(@exclude)))`;

/**
 * The open or active needs of the scope judged at `@now` (see `scopeView`), most telling first,
 * the first `@limit` of them with their titles, and with every row the scope's unmet total (a
 * window over the whole set, taken before the limit). Live leases come from their own partial
 * index, one probe per need.
 */
const SCOPE_FLAGS = /* sql */ `${SCOPED},
  flags AS (
    SELECT n.id, n.title, n.status, n.priority, n.orphaned,
      (n.unmet_since IS NOT NULL) AS flagged,
      (n.status = 'open' AND EXISTS (
        SELECT 1 FROM edges e JOIN needs d ON d.id = e.to_id
        WHERE e.from_id = n.id AND e.rel = 'depends_on' AND d.status <> 'resolved')) AS blocked,
      (n.not_before IS NOT NULL AND n.not_before > @now) AS deferred,
      EXISTS (SELECT 1 FROM leases l
        WHERE l.need_id = n.id AND l.task_id IS NOT NULL AND l.expires_at > @now) AS leased
    FROM scoped s CROSS JOIN needs n ON n.id = s.id
    WHERE n.status IN ('open', 'active')),
  judged AS (
    SELECT *, (orphaned = 1 OR flagged = 1
      OR ((status = 'active' OR (blocked = 0 AND deferred = 0)) AND leased = 0)) AS unmet
    FROM flags)
  SELECT *, sum(unmet) OVER () AS unmet_total FROM judged
  ORDER BY unmet DESC, orphaned DESC, priority, id LIMIT @limit`;

/** Needs of the scope by status, counted in SQL: resolved needs pile up and are only counted. */
const SCOPE_COUNTS = /* sql */ `${SCOPED}
  SELECT n.status, count(*) AS count FROM scoped s CROSS JOIN needs n ON n.id = s.id GROUP BY n.status`;

interface FlagRow {
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

export class PackReadRepository {
  readonly #ctx: StoreContext;
  readonly #needs: NeedRepository;
  readonly #tasks: TaskRepository;
  readonly #events: EventLog;
  readonly #dependsOn;
  readonly #lines;
  readonly #artifact;
  readonly #referenced;
  readonly #referencedCount;
  readonly #earlierTaskIds;
  readonly #earlierTaskCount;
  readonly #taskArtifacts;
  readonly #taskArtifactCount;
  readonly #tagsOf;
  readonly #newestWithTag;
  readonly #tagCount;
  readonly #shared;
  readonly #eventCount;
  readonly #scopeFlags;
  readonly #scopeCounts;

  constructor(ctx: StoreContext, needs: NeedRepository, tasks: TaskRepository, events: EventLog) {
    this.#ctx = ctx;
    this.#needs = needs;
    this.#tasks = tasks;
    this.#events = events;
    const st = ctx.once(preparePackReads);
    this.#dependsOn = st.dependsOn;
    this.#lines = st.lines;
    this.#artifact = st.artifact;
    this.#referenced = st.referenced;
    this.#referencedCount = st.referencedCount;
    this.#earlierTaskIds = st.earlierTaskIds;
    this.#earlierTaskCount = st.earlierTaskCount;
    this.#taskArtifacts = st.taskArtifacts;
    this.#taskArtifactCount = st.taskArtifactCount;
    this.#tagsOf = st.tagsOf;
    this.#newestWithTag = st.newestWithTag;
    this.#tagCount = st.tagCount;
    this.#shared = st.shared;
    this.#eventCount = st.eventCount;
    this.#scopeFlags = st.scopeFlags;
    this.#scopeCounts = st.scopeCounts;
  }

  /** The store's clock. */
  now(): number {
    return this.#ctx.now();
  }

  need(id: string): Need | undefined {
    return this.#needs.get(id);
  }

  task(id: string): Task | undefined {
    return this.#tasks.get(id);
  }

  artifact(id: string): Artifact | undefined {
    const row = this.#artifact.get(id);
    return row && toArtifact(row);
  }

  /**
   * Needs reachable by `depends_on`, breadth first, each at its smallest depth and reached from the
   * smallest id of the level before; ordered by depth then id; at most `limit`.
   */
  dependencyChain(
    needId: string,
    limit: number,
  ): {
    rows: { id: string; title: string; status: NeedStatus; priority: number; depth: number; via: string }[];
    truncated: boolean;
  } {
    const seen = new Set([needId]);
    const found: { id: string; depth: number; via: string }[] = [];
    let frontier = [needId];
    let truncated = false;
    for (let depth = 1; frontier.length > 0 && !truncated; depth++) {
      const level: { id: string; depth: number; via: string }[] = [];
      for (const edge of this.#dependsOn.all(JSON.stringify(frontier))) {
        if (seen.has(edge.to_id)) continue;
        seen.add(edge.to_id);
        level.push({ id: edge.to_id, depth, via: edge.from_id });
      }
      level.sort((a, b) => compare(a.id, b.id));
      for (const entry of level) {
        if (found.length === limit) {
          truncated = true;
          break;
        }
        found.push(entry);
      }
      frontier = level.map((e) => e.id);
    }
    const lines = new Map(this.#lines.all(JSON.stringify(found.map((f) => f.id))).map((r) => [r.id, r]));
    return {
      rows: found.map((f) => {
        const line = lines.get(f.id)!;
        return {
          id: f.id,
          title: line.title,
          status: line.status,
          priority: line.priority,
          depth: f.depth,
          via: f.via,
        };
      }),
      truncated,
    };
  }

  referencedArtifacts(needId: string, limit: number): { rows: Artifact[]; total: number } {
    const rows = this.#referenced.all(needId, limit).map(toArtifact);
    return { rows, total: rows.length < limit ? rows.length : (this.#referencedCount.get(needId) ?? 0) };
  }

  earlierTasks(needId: string, limit: number): { rows: Task[]; total: number } {
    const rows = this.#earlierTaskIds.all(needId, limit).map((id) => this.#tasks.get(id)!);
    return { rows, total: rows.length < limit ? rows.length : (this.#earlierTaskCount.get(needId) ?? 0) };
  }

  taskArtifacts(needId: string, limit: number): { rows: (Artifact & { taskId: string })[]; total: number } {
    const rows = this.#taskArtifacts.all(needId, limit).map((r) => ({ ...toArtifact(r), taskId: r.task_id }));
    return { rows, total: rows.length < limit ? rows.length : (this.#taskArtifactCount.get(needId) ?? 0) };
  }

  /**
   * Other needs sharing a tag with `needId`, found in the newest `window` needs of each of its
   * tags (an index range scan per tag, so a tag on half the graph costs no more than a rare one):
   * most windows shared first, then newest; the rows kept show their exact shared-tag count. A
   * tag carried by more needs than the window is reported with how many, counted up to ten
   * windows (`exact` false beyond that).
   */
  neighbours(
    needId: string,
    limit: number,
    window: number,
  ): {
    rows: { id: string; title: string; status: NeedStatus; priority: number; shared: number }[];
    ranked: number;
    cut: { tag: string; needs: number; exact: boolean }[];
  } {
    const tags = this.#tagsOf.all(needId);
    const hits = new Map<string, number>();
    const cut: { tag: string; needs: number; exact: boolean }[] = [];
    const countCap = window * 10;
    for (const tag of tags) {
      const ids = this.#newestWithTag.all(tag, needId, window + 1);
      if (ids.length > window) {
        ids.pop();
        // The need itself carries the tag: one more than the others, up to the cap.
        const carried = this.#tagCount.get(tag, countCap + 2) ?? 1;
        const exact = carried <= countCap + 1;
        cut.push({ tag, needs: exact ? carried - 1 : countCap, exact });
      }
      for (const id of ids) hits.set(id, (hits.get(id) ?? 0) + 1);
    }
    const top = [...hits]
      .sort(([a, x], [b, y]) => y - x || compare(b, a))
      .slice(0, limit)
      .map(([id]) => id);
    const shared = new Map(
      this.#shared.all(JSON.stringify(top), JSON.stringify(tags)).map((r) => [r.id, r.shared]),
    );
    const lines = new Map(this.#lines.all(JSON.stringify(top)).map((r) => [r.id, r]));
    const rows = top
      .map((id) => ({ ...lines.get(id)!, shared: shared.get(id) ?? 1 }))
      .sort((a, b) => b.shared - a.shared || compare(b.id, a.id));
    return { rows, ranked: hits.size, cut };
  }

  recentEvents(needId: string, limit: number): { rows: StoredEvent[]; total: number } {
    const rows = this.#events.forNeed(needId, limit);
    return { rows, total: rows.length < limit ? rows.length : (this.#eventCount.get(needId) ?? 0) };
  }

  /**
   * An identity's slice for one scope at `now`: counts by status, how many open or active needs
   * are unmet (actionable or active with no live lease, or flagged unmet_since / orphaned), and the
   * first `limit` of them: unmet first, orphaned first among those, then priority, then id.
   */
  scopeView(
    query: { tags: readonly string[]; excludeTags: readonly string[] },
    now: number,
    limit: number,
  ): {
    counts: Record<NeedStatus, number>;
    unmet: number;
    needs: {
      id: string;
      title: string;
      status: NeedStatus;
      priority: number;
      unmet: boolean;
      orphaned: boolean;
      blocked: boolean;
      leased: boolean;
      deferred: boolean;
    }[];
  } {
    const params = {
      tags: JSON.stringify(query.tags),
      exclude: JSON.stringify(query.excludeTags),
      now,
      // One row at least: every row carries the unmet total.
      limit: Math.max(1, limit),
    };
    const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<NeedStatus, number>;
    for (const row of this.#scopeCounts.all(params)) counts[row.status] = row.count;
    const rows = this.#scopeFlags.all(params);
    return {
      counts,
      unmet: rows[0]?.unmet_total ?? 0,
      needs: rows.slice(0, limit).map((r) => ({
        id: r.id,
        title: r.title,
        status: r.status,
        priority: r.priority,
        unmet: r.unmet === 1,
        orphaned: r.orphaned === 1,
        blocked: r.blocked === 1,
        leased: r.leased === 1,
        deferred: r.deferred === 1,
      })),
    };
  }
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The repository's statements, prepared once per connection. */
function preparePackReads(db: Db) {
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
    scopeCounts: db.prepare<Record<string, unknown>, { status: NeedStatus; count: number }>(SCOPE_COUNTS),
  };
}
