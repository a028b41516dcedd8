import type { StoreContext } from '../context.js';
import type { NeedStatus, TaskStatus } from '../transitions.js';
import type { ArtifactKind, Edge, EdgeRel, Need, TaskOutcome } from '../types.js';
import { type NeedRow, toNeed } from './need-rows.js';

/** The part of a workspace that selects needs: tags any/all, scope, statuses (empty means any). */
export interface NeedSelection {
  readonly tagsAny: readonly string[];
  readonly tagsAll: readonly string[];
  readonly scope: string | null;
  readonly statuses: readonly NeedStatus[];
}

/** A need without its body, acceptance and tags: what one line of PROBLEM.md shows. */
export interface NeedHead {
  readonly id: string;
  readonly title: string;
  readonly status: NeedStatus;
  readonly priority: number;
  readonly scope: string;
  readonly createdAt: number;
  readonly unmetSince: number | null;
  readonly orphaned: boolean;
}

/** The task holding a need's lease, and the identity it runs as. */
export interface LeaseHolder {
  readonly needId: string;
  readonly taskId: string;
  readonly identity: string;
  readonly agentId: string | null;
}

/** A `depends_on` edge with the status of the need depended on. */
export interface Dependency {
  readonly from: string;
  readonly to: string;
  readonly toStatus: NeedStatus;
}

/** The fields of a task that only change with an event (no heartbeat, progress or token counters). */
export interface TaskLine {
  readonly id: string;
  readonly needId: string;
  readonly identity: string;
  readonly agentId: string | null;
  readonly status: TaskStatus;
  readonly attempt: number;
  readonly outcome: TaskOutcome | null;
  readonly summary: string | null;
  readonly error: string | null;
  readonly createdAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

/** An artifact a need references, without its content. */
export interface ArtifactLine {
  readonly needId: string;
  readonly id: string;
  readonly kind: ArtifactKind;
  readonly title: string;
  readonly uri: string | null;
  readonly summary: string | null;
  readonly tokenCount: number;
  readonly createdAt: number;
}

/** An event without its payload. */
export interface EventLine {
  readonly seq: number;
  readonly at: number;
  readonly actor: string;
  readonly kind: string;
  readonly entity: string;
  readonly needId: string;
}

/**
 * The views' lookups in the tables a long run grows without bound (the event log, and the edges
 * each task adds): through indexes, one need (or workspace) at a time, so a compile costs as much
 * as the graph it shows, not as the run's history (see migrations 5 and 6). Exported for the test
 * that checks their query plans.
 */
export const VIEW_LOOKUPS = {
  /** Per need id: its latest event, and its latest as the target of an edge event. */
  needSeqs: `SELECT j.value,
      (SELECT max(seq) FROM events WHERE need_id = j.value),
      (SELECT max(seq) FROM events
       WHERE kind IN ('edge.added', 'edge.removed') AND json_extract(payload, '$.to') = j.value)
    FROM json_each(?) j`,
  maxSeq:
    'SELECT coalesce(max((SELECT max(seq) FROM events WHERE need_id = j.value)), 0) FROM json_each(?) j',
  /** The same condition as the partial index events_by_workspace, so the lookup uses it. */
  workspaceSeq: "SELECT coalesce(max(seq), 0) FROM events WHERE kind GLOB 'workspace.*' AND entity = ?",
  /** Per need id: the newest entries of its index. */
  recentEvents: `SELECT e.seq, e.at, e.actor, e.kind, e.entity, e.need_id AS needId
    FROM json_each(?) j JOIN events e ON e.seq IN (
      SELECT seq FROM events WHERE need_id = j.value ORDER BY seq DESC LIMIT ?
    )
    ORDER BY e.need_id, e.seq DESC`,
  /** Every `depends_on` edge with its target's status: through the index of those edges alone. */
  dependencies: `SELECT e.from_id, e.to_id, d.status FROM edges e JOIN needs d ON d.id = e.to_id
    WHERE e.rel = 'depends_on' ORDER BY e.from_id, e.to_id`,
} as const;

/** What an edge's far end is, for labels: a need's title and status, an artifact's title, a task's identity. */
export interface NodeLabel {
  readonly id: string;
  readonly kind: 'need' | 'task' | 'artifact';
  readonly title: string;
  readonly status: string;
}

/**
 * Read-only, set-based queries for the views compiler: each call is one query over a whole
 * workspace, so compiling 10k needs costs a handful of statements rather than one per need.
 * Every list is sorted deterministically (ties broken by id).
 */
export class ViewRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /**
   * Runs `fn` in one read transaction, so every query in it sees the same database state even
   * while other processes write (WAL readers do not block writers). Inside a transaction, just runs it.
   */
  snapshot<T>(fn: () => T): T {
    const db = this.#ctx.db;
    return db.inTransaction ? fn() : db.transaction(fn).deferred();
  }

  /** Needs a selection matches, with tags, ordered by priority, age, id. */
  needs(selection: NeedSelection): Need[] {
    const { where, params } = selectionWhere(selection);
    const sql = `SELECT n.*, (SELECT json_group_array(tag) FROM (SELECT tag FROM need_tags t WHERE t.need_id = n.id ORDER BY tag)) AS tags
      FROM needs n ${where} ORDER BY n.priority, n.created_at, n.id`;
    return this.#ctx
      .prepare<unknown[], NeedRow>(sql)
      .all(...params)
      .map(toNeed);
  }

  /** Heads of the needs a selection matches, ordered by priority, age, id. */
  needHeads(selection: NeedSelection): NeedHead[] {
    const { where, params } = selectionWhere(selection);
    const sql = `SELECT n.id, n.title, n.status, n.priority, n.scope, n.created_at, n.unmet_since, n.orphaned
      FROM needs n ${where} ORDER BY n.priority, n.created_at, n.id`;
    const rows = this.#ctx
      .prepare<unknown[], unknown[]>(sql)
      .raw()
      .all(...params);
    return rows.map((r) => ({
      id: r[0] as string,
      title: r[1] as string,
      status: r[2] as NeedStatus,
      priority: r[3] as number,
      scope: r[4] as string,
      createdAt: r[5] as number,
      unmetSince: r[6] as number | null,
      orphaned: r[7] === 1,
    }));
  }

  /** How many needs a selection matches, by status, counted in SQL: resolved needs pile up. */
  statusCounts(selection: NeedSelection): Partial<Record<NeedStatus, number>> {
    const { where, params } = selectionWhere(selection);
    const counts: Partial<Record<NeedStatus, number>> = {};
    const rows = this.#ctx
      .prepare<unknown[], [NeedStatus, number]>(
        `SELECT n.status, count(*) FROM needs n ${where} GROUP BY n.status`,
      )
      .raw()
      .all(...params);
    for (const [status, count] of rows) counts[status] = count;
    return counts;
  }

  /**
   * The seq of the latest event about a need that the selection's tags and scope match, or matched
   * until a change of its tags or scope took it out, whatever its status (0 when none). Without
   * tags or scope, that is the latest need event of the log, read from its end (NOT INDEXED keeps
   * that plan: a walk back that stops at the first need event), and no need can leave. Otherwise
   * one index lookup per matching need, and one per tag for the needs that left (see movesOutOf).
   */
  latestSeq(selection: Pick<NeedSelection, 'tagsAny' | 'tagsAll' | 'scope'>): number {
    const { where, params } = selectionWhere({ ...selection, statuses: [] });
    if (where === '') {
      const sql = 'SELECT seq FROM events NOT INDEXED WHERE need_id IS NOT NULL ORDER BY seq DESC LIMIT 1';
      return this.#ctx.prepare<[], number>(sql).pluck().get() ?? 0;
    }
    const matching = `SELECT max((SELECT max(seq) FROM events e WHERE e.need_id = n.id)) FROM needs n ${where}`;
    const left = movesOutOf(selection);
    return Math.max(
      this.#ctx
        .prepare<unknown[], number | null>(matching)
        .pluck()
        .get(...params) ?? 0,
      this.#ctx
        .prepare<unknown[], number | null>(left.sql)
        .pluck()
        .get(...left.params) ?? 0,
    );
  }

  /** Every held lease with its task's identity, by need id. */
  leaseHolders(): LeaseHolder[] {
    return this.#ctx
      .prepare<[], LeaseHolder>(
        `SELECT l.need_id AS needId, l.task_id AS taskId, t.identity AS identity, t.agent_id AS agentId
         FROM leases l JOIN tasks t ON t.id = l.task_id WHERE l.task_id IS NOT NULL ORDER BY l.need_id`,
      )
      .all();
  }

  /** Every `depends_on` edge with the status of its target, by from then to. */
  dependencies(): Dependency[] {
    const rows = this.#ctx.prepare<[], unknown[]>(VIEW_LOOKUPS.dependencies).raw().all();
    return rows.map((r) => ({ from: r[0] as string, to: r[1] as string, toStatus: r[2] as NeedStatus }));
  }

  /**
   * The seq of the latest event about each of the given needs: events carrying its id, and edge
   * events that name it as their target (an edge event carries the id of its source only). Needs
   * without events are left out. Index lookups per need: the cost does not grow with the log.
   */
  needSeqs(needIds: readonly string[]): Map<string, number> {
    const rows = this.#ctx
      .prepare<[string], [string, number | null, number | null]>(VIEW_LOOKUPS.needSeqs)
      .raw()
      .all(JSON.stringify(needIds));
    const seqs = new Map<string, number>();
    for (const [id, own, asTarget] of rows) {
      const seq = Math.max(own ?? 0, asTarget ?? 0);
      if (seq > 0) seqs.set(id, seq);
    }
    return seqs;
  }

  /** The seq of the latest event carrying one of the given need ids (0 when none). */
  maxSeq(needIds: readonly string[]): number {
    return this.#ctx.prepare<[string], number>(VIEW_LOOKUPS.maxSeq).pluck().get(JSON.stringify(needIds)) ?? 0;
  }

  /** The seq of the latest `workspace.*` event about the named workspace (0 when none). */
  workspaceSeq(name: string): number {
    return this.#ctx.prepare<[string], number>(VIEW_LOOKUPS.workspaceSeq).pluck().get(name) ?? 0;
  }

  /** Every edge leaving or arriving at one of `ids`, by from, rel, to. */
  edgesTouching(ids: readonly string[]): Edge[] {
    return this.#ctx
      .prepare<[string, string], { from: string; rel: EdgeRel; to: string; createdAt: number }>(
        `SELECT from_id AS "from", rel, to_id AS "to", created_at AS createdAt FROM edges
         WHERE from_id IN (SELECT value FROM json_each(?)) OR to_id IN (SELECT value FROM json_each(?))
         ORDER BY from_id, rel, to_id`,
      )
      .all(JSON.stringify(ids), JSON.stringify(ids));
  }

  /** Labels of the given nodes (needs, tasks, artifacts); unknown ids are left out. */
  nodeLabels(ids: readonly string[]): Map<string, NodeLabel> {
    const rows = this.#ctx
      .prepare<[string, string, string], NodeLabel>(
        `SELECT id, 'need' AS kind, title, status FROM needs WHERE id IN (SELECT value FROM json_each(?))
         UNION ALL
         SELECT id, 'task' AS kind, identity AS title, status FROM tasks WHERE id IN (SELECT value FROM json_each(?))
         UNION ALL
         SELECT id, 'artifact' AS kind, title, kind AS status FROM artifacts WHERE id IN (SELECT value FROM json_each(?))`,
      )
      .all(JSON.stringify(ids), JSON.stringify(ids), JSON.stringify(ids));
    return new Map(rows.map((r) => [r.id, r]));
  }

  /** Tasks of the given needs, by need then attempt. */
  tasksOf(needIds: readonly string[]): TaskLine[] {
    return this.#ctx
      .prepare<[string], TaskLine>(
        `SELECT id, need_id AS needId, identity, agent_id AS agentId, status, attempt, outcome, summary, error,
           created_at AS createdAt, started_at AS startedAt, finished_at AS finishedAt
         FROM tasks WHERE need_id IN (SELECT value FROM json_each(?)) ORDER BY need_id, attempt, id`,
      )
      .all(JSON.stringify(needIds));
  }

  /** Artifacts the given needs reference, by need, then age, then id. */
  artifactsOf(needIds: readonly string[]): ArtifactLine[] {
    return this.#ctx
      .prepare<[string], ArtifactLine>(
        `SELECT e.from_id AS needId, a.id, a.kind, a.title, a.uri, a.summary, a.token_count AS tokenCount,
           a.created_at AS createdAt
         FROM edges e JOIN artifacts a ON a.id = e.to_id
         WHERE e.rel = 'references' AND e.from_id IN (SELECT value FROM json_each(?))
         ORDER BY e.from_id, a.created_at, a.id`,
      )
      .all(JSON.stringify(needIds));
  }

  /**
   * The latest `perNeed` events about each of the given needs, by need then newest first: for
   * each need, the newest `perNeed` entries of its index, so the cost does not grow with the log.
   */
  recentEvents(needIds: readonly string[], perNeed: number): EventLine[] {
    return this.#ctx
      .prepare<[string, number], EventLine>(VIEW_LOOKUPS.recentEvents)
      .all(JSON.stringify(needIds), perNeed);
  }
}

/**
 * The latest `need.updated` event that changed a need's tags or scope while the selection's tags
 * and scope matched the need: its payload's `previous` holds the tags and scope before the change.
 * Such events are filed in need_moves under each previous tag and the previous scope (migration 7):
 * the query walks back the entries of the selection's tags (any of `tagsAny`, else the first of
 * `tagsAll`, else its scope), each from its newest, and stops at the first whose event matches the
 * whole selection. With `tagsAny` alone the first entry matches; otherwise the walk reads the
 * moves out of that one tag or scope since the last that left the whole selection (20,000 of them:
 * ~20 ms), never the rest of the log. Empty without tags and scope (nothing leaves the graph).
 */
export function movesOutOf(s: Pick<NeedSelection, 'tagsAny' | 'tagsAll' | 'scope'>): {
  sql: string;
  params: unknown[];
} {
  const keys = s.tagsAny.length
    ? s.tagsAny.map((t) => `tag:${t}`)
    : s.tagsAll.length
      ? [`tag:${s.tagsAll[0]}`]
      : s.scope !== null
        ? [`scope:${s.scope}`]
        : [];
  const where = ['m.key = k.value'];
  const params: unknown[] = [JSON.stringify(keys)];
  if (s.scope !== null) {
    where.push("json_extract(e.payload, '$.previous.scope') = ?");
    params.push(s.scope);
  }
  const hasTag = (test: string) =>
    `EXISTS (SELECT 1 FROM json_each(e.payload, '$.previous.tags') t WHERE t.value ${test})`;
  if (s.tagsAny.length) {
    where.push(hasTag(`IN (${s.tagsAny.map(() => '?').join(', ')})`));
    params.push(...s.tagsAny);
  }
  for (const tag of s.tagsAll) {
    where.push(hasTag('= ?'));
    params.push(tag);
  }
  const sql = `WITH k AS (SELECT value FROM json_each(?))
    SELECT max((SELECT m.seq FROM need_moves m JOIN events e ON e.seq = m.seq
                WHERE ${where.join(' AND ')} ORDER BY m.seq DESC LIMIT 1)) FROM k`;
  return { sql, params };
}

function selectionWhere(s: NeedSelection): { where: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  if (s.statuses.length) {
    where.push(`n.status IN (${s.statuses.map(() => '?').join(', ')})`);
    params.push(...s.statuses);
  }
  if (s.scope !== null) {
    where.push('n.scope = ?');
    params.push(s.scope);
  }
  if (s.tagsAny.length) {
    where.push(
      `EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag IN (${s.tagsAny.map(() => '?').join(', ')}))`,
    );
    params.push(...s.tagsAny);
  }
  for (const tag of s.tagsAll) {
    where.push('EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag = ?)');
    params.push(tag);
  }
  return { where: where.length ? `WHERE ${where.join(' AND ')}` : '', params };
}
