import { checkVersion, type StoreContext } from '../context.js';
import { IllegalTransitionError, NotFoundError, UserError } from '../errors.js';
import {
  type NeedFilter,
  NeedFilterSchema,
  NeedIdSchema,
  type NeedPatch,
  NeedPatchSchema,
  type NewNeed,
  NewNeedSchema,
  parseInput,
} from '../schemas.js';
import { assertTransition, type NeedStatus } from '../transitions.js';
import type { Fence, Need } from '../types.js';
import type { EdgeRepository } from './edges.js';
import type { LeaseRepository } from './leases.js';
import { retryNeed, setNeedFlags } from './need-flags.js';
import { type NeedRow, prepareNeedStatements, SELECT_NEED, toNeed } from './need-rows.js';
import type { TaskRepository } from './tasks.js';

export interface StatusChangeOptions {
  readonly fence?: Fence;
  readonly reason?: string;
  readonly expectedVersion?: number;
}

/** Needs: create, read, update with optimistic concurrency, and status transitions. */
export class NeedRepository {
  readonly #ctx: StoreContext;
  readonly #leases: LeaseRepository;
  readonly #edges: () => EdgeRepository;
  readonly #tasks: () => TaskRepository;
  readonly #get;
  readonly #insert;
  readonly #insertTag;
  readonly #deleteTags;

  constructor(
    ctx: StoreContext,
    leases: LeaseRepository,
    edges: () => EdgeRepository,
    tasks: () => TaskRepository,
  ) {
    this.#ctx = ctx;
    this.#leases = leases;
    this.#edges = edges;
    this.#tasks = tasks;
    const statements = ctx.once(prepareNeedStatements);
    this.#get = statements.get;
    this.#insert = statements.insert;
    this.#insertTag = statements.insertTag;
    this.#deleteTags = statements.deleteTags;
  }

  get(id: string): Need | undefined {
    const row = this.#get.get(id);
    return row && toNeed(row);
  }

  require(id: string): Need {
    const need = this.get(id);
    if (!need) {
      parseInput(NeedIdSchema, id, 'need id');
      throw new NotFoundError('need', id, 'list needs with `mlos need list`');
    }
    return need;
  }

  /** Creates an open need with its tags and `depends_on` edges, in one transaction. */
  create(input: NewNeed): Need {
    const n = parseInput(NewNeedSchema, input, 'need');
    if (n.mode === 'standing' && n.cadenceMs === null) {
      throw new UserError('invalid need: a standing need needs a cadence (e.g. --cadence 1h)');
    }
    if (n.mode === 'once' && n.cadenceMs !== null) {
      throw new UserError('invalid need: a cadence only applies to a standing need (add --standing)');
    }
    return this.#ctx.write(() => {
      const id = this.#ctx.ids.next('need');
      const now = this.#ctx.now();
      for (const dep of n.dependsOn) this.require(dep);
      this.#insert.run({ ...n, id, now });
      const tags = [...new Set(n.tags)].sort();
      for (const tag of tags) this.#insertTag.run(id, tag);
      this.#ctx.emit({
        kind: 'need.created',
        entity: id,
        needId: id,
        payload: {
          title: n.title,
          body: n.body,
          acceptance: n.acceptance,
          tags,
          priority: n.priority,
          scope: n.scope,
          mode: n.mode,
          cadenceMs: n.cadenceMs,
          notBefore: n.notBefore,
        },
      });
      for (const dep of n.dependsOn) this.#edges().link(id, 'depends_on', dep);
      return this.require(id);
    });
  }

  /**
   * Changes fields of a need. `expectedVersion` guards against lost updates: a mismatch is a
   * ConflictError carrying the current version. A write made for a task carries its fence.
   */
  update(id: string, patch: NeedPatch, options: { expectedVersion?: number; fence?: Fence } = {}): Need {
    const p = parseInput(NeedPatchSchema, patch, 'need update');
    return this.#ctx.write(() => {
      const need = this.require(id);
      checkVersion(`need ${id}`, options.expectedVersion, need.version);
      if (options.fence) this.#leases.assertFence(id, options.fence);
      const changed: Record<string, unknown> = {};
      const columns: Record<string, string> = {
        title: 'title',
        body: 'body',
        acceptance: 'acceptance',
        priority: 'priority',
        scope: 'scope',
        cadenceMs: 'cadence_ms',
        notBefore: 'not_before',
      };
      const sets: string[] = [];
      const params: Record<string, unknown> = { id, now: this.#ctx.now() };
      for (const [key, column] of Object.entries(columns)) {
        const value = (p as Record<string, unknown>)[key];
        if (value === undefined || value === (need as unknown as Record<string, unknown>)[key]) continue;
        if (key === 'cadenceMs' && need.mode === 'once' && value !== null) {
          throw new UserError(`need ${id} is not standing: a cadence only applies to a standing need`);
        }
        if (key === 'cadenceMs' && need.mode === 'standing' && value === null) {
          throw new UserError(`need ${id} is standing and needs a cadence: drop it to stop it recurring`);
        }
        sets.push(`${column} = @${key}`);
        params[key] = value;
        changed[key] = value;
      }
      if (p.tags) {
        const tags = [...new Set(p.tags)].sort();
        if (tags.join(',') !== need.tags.join(',')) {
          this.#deleteTags.run(id);
          for (const tag of tags) this.#insertTag.run(id, tag);
          changed['tags'] = tags;
        }
      }
      if (Object.keys(changed).length === 0) return need;
      this.#ctx
        .prepare(
          `UPDATE needs SET ${[...sets, 'version = version + 1', 'updated_at = @now'].join(', ')} WHERE id = @id`,
        )
        .run(params);
      // A need whose tags or scope change may leave a workspace's selection: its tags and scope
      // before the change stay in the log, so that workspace's views can still count the event.
      const moved = 'tags' in changed || 'scope' in changed;
      this.#ctx.emit({
        kind: 'need.updated',
        entity: id,
        needId: id,
        payload: {
          changed,
          ...(moved && { previous: { tags: need.tags, scope: need.scope } }),
          version: need.version + 1,
        },
      });
      return this.require(id);
    });
  }

  /**
   * Moves a need to another status through the transition table. Without a fence this is an
   * operator transition: the fencing token is bumped and a live task is cancelled, so whoever
   * was working on the need is stopped at their next write.
   */
  transition(id: string, to: NeedStatus, options: StatusChangeOptions = {}): Need {
    return this.#ctx.write(() => {
      const need = this.require(id);
      checkVersion(`need ${id}`, options.expectedVersion, need.version);
      if (need.status === to) return need;
      assertTransition('need', id, need.status, to);
      if (to === 'resolved' && need.mode === 'standing') {
        throw new IllegalTransitionError(
          `need ${id}`,
          need.status,
          to,
          'a standing need is never resolved: drop it to stop it',
        );
      }
      if (options.fence) {
        this.#leases.assertFence(id, options.fence);
      } else if (to !== 'active') {
        const live = this.#tasks().liveFor(id);
        if (live)
          this.#tasks().transition(live.id, 'cancelled', { error: `need ${to} by ${this.#ctx.actor}` });
        this.#leases.revoke(id);
      }
      this.#ctx
        .prepare(
          `UPDATE needs SET status = ?, version = version + 1, updated_at = ?,
           unmet_since = CASE WHEN ? IN ('resolved', 'dropped') THEN NULL ELSE unmet_since END,
           orphaned = CASE WHEN ? IN ('resolved', 'dropped') THEN 0 ELSE orphaned END WHERE id = ?`,
        )
        .run(to, this.#ctx.now(), to, to, id);
      // Cancelling a live task above may already have bumped the version: report the stored one.
      const changed = this.require(id);
      this.#ctx.emit({
        kind: `need.${to === 'open' && need.status !== 'active' ? 'reopened' : to}`,
        entity: id,
        needId: id,
        payload: { from: need.status, to, reason: options.reason ?? null, version: changed.version },
      });
      return changed;
    });
  }

  resolve(id: string, options: StatusChangeOptions = {}): Need {
    return this.transition(id, 'resolved', options);
  }

  drop(id: string, options: StatusChangeOptions = {}): Need {
    return this.transition(id, 'dropped', options);
  }

  /** Needs matching a filter, ordered by priority then age (oldest first). */
  list(filter: NeedFilter = {}): Need[] {
    const f = parseInput(NeedFilterSchema, filter, 'need filter');
    const where: string[] = [];
    const params: unknown[] = [];
    if (f.status?.length) {
      where.push(`n.status IN (${f.status.map(() => '?').join(', ')})`);
      params.push(...f.status);
    }
    if (f.scope) {
      where.push('n.scope = ?');
      params.push(f.scope);
    }
    if (f.tagsAny?.length) {
      where.push(
        `EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag IN (${f.tagsAny.map(() => '?').join(', ')}))`,
      );
      params.push(...f.tagsAny);
    }
    for (const tag of f.tagsAll ?? []) {
      where.push('EXISTS (SELECT 1 FROM need_tags t WHERE t.need_id = n.id AND t.tag = ?)');
      params.push(tag);
    }
    if (f.text) {
      where.push('(instr(lower(n.title), lower(?)) > 0 OR instr(lower(n.body), lower(?)) > 0)');
      params.push(f.text, f.text);
    }
    const sql = `${SELECT_NEED} ${where.length ? `WHERE ${where.join(' AND ')}` : ''}
      ORDER BY n.priority, n.created_at, n.id LIMIT ? OFFSET ?`;
    params.push(f.limit ?? -1, f.offset ?? 0);
    return this.#ctx
      .prepare<unknown[], NeedRow>(sql)
      .all(...params)
      .map(toNeed);
  }

  /** Open needs whose dependencies are all resolved and whose not_before has passed. */
  actionable(now: number, limit = 1000): Need[] {
    return this.#ctx
      .prepare<[number, number], NeedRow>(
        `${SELECT_NEED.replace('FROM needs n', 'FROM ready_needs n')}
         WHERE (n.not_before IS NULL OR n.not_before <= ?) ORDER BY n.priority, n.created_at, n.id LIMIT ?`,
      )
      .all(now, limit)
      .map(toNeed);
  }

  /**
   * Candidates for the round table: actionable or active needs whose lease is not live at `now`
   * (never claimed, expired, or released after a failure).
   */
  unmetCandidates(now: number, limit = 1000): Need[] {
    return this.#ctx
      .prepare<[number, number, number], NeedRow>(
        `${SELECT_NEED} JOIN leases l ON l.need_id = n.id
         WHERE (n.status = 'active' OR (n.id IN (SELECT id FROM ready_needs) AND (n.not_before IS NULL OR n.not_before <= ?)))
           AND (l.task_id IS NULL OR l.expires_at <= ?)
         ORDER BY n.priority, n.created_at, n.id LIMIT ?`,
      )
      .all(now, now, limit)
      .map(toNeed);
  }

  /** See setNeedFlags. */
  setFlags(id: string, flags: { unmetSince?: number | null; orphaned?: boolean }): Need {
    return setNeedFlags(this.#ctx, (n) => this.require(n), id, flags);
  }

  /** See retryNeed. */
  retry(id: string, options: { reason?: string } = {}): Need {
    return retryNeed(this.#ctx, (n) => this.require(n), id, options);
  }

  /**
   * Whether a need is actionable at `now` (open, every `depends_on` resolved, not_before passed),
   * and if not, why, in words a caller can act on.
   */
  isActionable(
    id: string,
    now: number,
  ): { ok: true } | { ok: false; reason: string; eligibleAt: number | null } {
    const need = this.require(id);
    if (need.status !== 'open')
      return { ok: false, reason: `need ${id} is ${need.status}, not open`, eligibleAt: null };
    const blockers = this.#ctx
      .prepare<[string], { blocker_id: string; blocker_status: string }>(
        'SELECT blocker_id, blocker_status FROM need_blockers WHERE need_id = ? ORDER BY blocker_id',
      )
      .all(id);
    if (blockers.length) {
      const list = blockers.map((b) => `${b.blocker_id} (${b.blocker_status})`).join(', ');
      return { ok: false, reason: `need ${id} is not actionable: it waits for ${list}`, eligibleAt: null };
    }
    if (need.notBefore !== null && need.notBefore > now) {
      return {
        ok: false,
        reason: `need ${id} is not actionable before ${new Date(need.notBefore).toISOString()}`,
        eligibleAt: need.notBefore,
      };
    }
    return { ok: true };
  }

  /** Counts of needs by status and scope. */
  counts(): { status: NeedStatus; scope: string; count: number }[] {
    return this.#ctx
      .prepare<[], { status: NeedStatus; scope: string; count: number }>(
        'SELECT status, scope, count(*) AS count FROM needs GROUP BY status, scope ORDER BY scope, status',
      )
      .all();
  }
}
