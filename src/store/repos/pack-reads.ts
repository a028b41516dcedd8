import type { StoreContext } from '../context.js';
import type { EventLog } from '../event-log.js';
import type { NeedStatus } from '../transitions.js';
import type { Artifact, Need, StoredEvent, Task } from '../types.js';
import { toArtifact } from './artifacts.js';
import type { NeedRepository } from './needs.js';
import { preparePackReads } from './pack-reads-sql.js';
import type { TaskRepository } from './tasks.js';

/**
 * Read-only, indexed queries the kernel compiles context packs, pointer expansions and awareness
 * from. Each list is bounded by a limit and ordered with an id or seq as the last key, so the
 * same database always gives the same rows. The shapes match the kernel's `PackSource` and
 * `AwarenessSource` ports structurally; the store does not import them.
 */

const STATUSES: readonly NeedStatus[] = ['open', 'active', 'resolved', 'dropped'];

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
    if (tags.length === 1) return this.#neighboursOfOneTag(needId, tags[0]!, limit, window);
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

  /**
   * `neighbours` of a need with one tag: every other need shares exactly that tag, so the ranking
   * is the index order (newest first) and only the first `limit` rows are read.
   */
  #neighboursOfOneTag(
    needId: string,
    tag: string,
    limit: number,
    window: number,
  ): ReturnType<PackReadRepository['neighbours']> {
    const top = this.#newestWithTag.all(tag, needId, Math.min(limit, window));
    const cut: { tag: string; needs: number; exact: boolean }[] = [];
    let ranked = top.length;
    if (top.length === Math.min(limit, window)) {
      const countCap = window * 10;
      // The need itself carries the tag: one more than the others, up to the cap.
      const carried = this.#tagCount.get(tag, countCap + 2) ?? 1;
      ranked = Math.min(window, carried - 1);
      if (carried - 1 > window) {
        const exact = carried <= countCap + 1;
        cut.push({ tag, needs: exact ? carried - 1 : countCap, exact });
      }
    }
    const lines = new Map(this.#lines.all(JSON.stringify(top)).map((r) => [r.id, r]));
    return { rows: top.map((id) => ({ ...lines.get(id)!, shared: 1 })), ranked, cut };
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
    let total = 0;
    for (const row of this.#scopeCounts.all(params)) {
      if (row.status === 'total') total = row.count;
      else counts[row.status] = row.count;
    }
    counts.resolved = total - counts.open - counts.active - counts.dropped;
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
