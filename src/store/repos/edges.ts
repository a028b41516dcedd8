import type { StoreContext } from '../context.js';
import type { Db } from '../database.js';
import { CycleError, NotFoundError, UserError } from '../errors.js';
import { EdgeRelSchema, NodeIdSchema, parseInput } from '../schemas.js';
import type { Edge, EdgeRel, Fence } from '../types.js';
import type { LeaseRepository } from './leases.js';

type NodeKind = 'need' | 'task' | 'artifact';

interface EdgeRow {
  from_id: string;
  rel: EdgeRel;
  to_id: string;
  created_at: number;
}

/** Which kinds of node each relation joins (from → to); `null` means any. */
const REL_KINDS: Readonly<Record<EdgeRel, { from: NodeKind | null; to: NodeKind | null; same?: boolean }>> = {
  depends_on: { from: 'need', to: 'need' },
  child_of: { from: 'need', to: 'need' },
  references: { from: null, to: null },
  produced_by: { from: 'artifact', to: 'task' },
  source_transcript: { from: 'artifact', to: 'artifact' },
  derived_from: { from: 'artifact', to: 'artifact' },
  supersedes: { from: null, to: null, same: true },
};

/** Typed edges between needs, tasks and artifacts. `depends_on` cycles are refused. */
export class EdgeRepository {
  readonly #ctx: StoreContext;
  readonly #leases: LeaseRepository;
  readonly #kind;
  readonly #insert;
  readonly #dependsOnFrom;

  constructor(ctx: StoreContext, leases: LeaseRepository) {
    this.#ctx = ctx;
    this.#leases = leases;
    const statements = ctx.once(prepareEdgeStatements);
    this.#kind = statements.kind;
    this.#insert = statements.insert;
    this.#dependsOnFrom = statements.dependsOnFrom;
  }

  /**
   * Adds `from rel to`. Both ends must exist and be of the kinds the relation joins; a
   * `depends_on` that would close a cycle is refused with the cycle named. Adding an edge that
   * already exists changes nothing. A write for a task carries its fence on the `from` need.
   */
  link(from: string, rel: string, to: string, options: { fence?: Fence } = {}): Edge {
    const r = parseInput(EdgeRelSchema, rel, 'relation');
    parseInput(NodeIdSchema, from, 'edge source');
    parseInput(NodeIdSchema, to, 'edge target');
    return this.#ctx.write(() => {
      const fromKind = this.#requireNode(from);
      const toKind = this.#requireNode(to);
      if (from === to) throw new UserError(`an edge cannot join ${from} to itself`);
      const rule = REL_KINDS[r];
      if (
        (rule.from && fromKind !== rule.from) ||
        (rule.to && toKind !== rule.to) ||
        (rule.same && fromKind !== toKind)
      ) {
        const want = rule.same
          ? 'two nodes of the same kind'
          : `a ${rule.from ?? 'node'} to a ${rule.to ?? 'node'}`;
        throw new UserError(`${r} joins ${want}, but ${from} is a ${fromKind} and ${to} is a ${toKind}`);
      }
      if (options.fence && fromKind === 'need') this.#leases.assertFence(from, options.fence);
      if (r === 'depends_on') {
        const path = this.#dependencyPath(to, from);
        if (path) throw new CycleError([from, ...path]);
      }
      const now = this.#ctx.now();
      const { changes } = this.#insert.run(from, r, to, now);
      if (changes > 0) {
        this.#ctx.emit({
          kind: 'edge.added',
          entity: `${from} ${r} ${to}`,
          needId: fromKind === 'need' ? from : toKind === 'need' ? to : null,
          payload: { from, rel: r, to },
        });
      }
      return this.get(from, r, to)!;
    });
  }

  /** Removes an edge; removing one that does not exist is an error naming it. */
  unlink(from: string, rel: string, to: string, options: { fence?: Fence } = {}): void {
    const r = parseInput(EdgeRelSchema, rel, 'relation');
    this.#ctx.write(() => {
      if (!this.get(from, r, to)) throw new NotFoundError('edge', `${from} ${r} ${to}`);
      if (options.fence && this.#nodeKind(from) === 'need') this.#leases.assertFence(from, options.fence);
      this.#ctx.prepare('DELETE FROM edges WHERE from_id = ? AND rel = ? AND to_id = ?').run(from, r, to);
      const needId = this.#nodeKind(from) === 'need' ? from : this.#nodeKind(to) === 'need' ? to : null;
      this.#ctx.emit({
        kind: 'edge.removed',
        entity: `${from} ${r} ${to}`,
        needId,
        payload: { from, rel: r, to },
      });
    });
  }

  get(from: string, rel: EdgeRel, to: string): Edge | undefined {
    const row = this.#ctx
      .prepare<[string, string, string], EdgeRow>(
        'SELECT * FROM edges WHERE from_id = ? AND rel = ? AND to_id = ?',
      )
      .get(from, rel, to);
    return row && toEdge(row);
  }

  /** Edges leaving `id`, optionally of one relation. */
  from(id: string, rel?: EdgeRel): Edge[] {
    const sql = `SELECT * FROM edges WHERE from_id = ?${rel ? ' AND rel = ?' : ''} ORDER BY rel, to_id`;
    return this.#ctx
      .prepare<string[], EdgeRow>(sql)
      .all(...(rel ? [id, rel] : [id]))
      .map(toEdge);
  }

  /** Edges arriving at `id`, optionally of one relation. */
  to(id: string, rel?: EdgeRel): Edge[] {
    const sql = `SELECT * FROM edges WHERE to_id = ?${rel ? ' AND rel = ?' : ''} ORDER BY rel, from_id`;
    return this.#ctx
      .prepare<string[], EdgeRow>(sql)
      .all(...(rel ? [id, rel] : [id]))
      .map(toEdge);
  }

  /** Every `depends_on` edge between needs (for the dependency graph view). */
  allDependencies(): Edge[] {
    return this.#ctx
      .prepare<[], EdgeRow>("SELECT * FROM edges WHERE rel = 'depends_on' ORDER BY from_id, to_id")
      .all()
      .map(toEdge);
  }

  #nodeKind(id: string): NodeKind | undefined {
    return this.#kind.get(id)?.kind;
  }

  #requireNode(id: string): NodeKind {
    const kind = this.#nodeKind(id);
    if (!kind) {
      const what = id.startsWith('need_') ? 'need' : id.startsWith('task_') ? 'task' : 'artifact';
      throw new NotFoundError(what, id);
    }
    return kind;
  }

  /** A `depends_on` path from `start` to `goal` (both included), or undefined: breadth first. */
  #dependencyPath(start: string, goal: string): string[] | undefined {
    const parent = new Map<string, string | null>([[start, null]]);
    const queue = [start];
    for (let i = 0; i < queue.length; i++) {
      const id = queue[i]!;
      if (id === goal) {
        const path: string[] = [];
        for (let at: string | null = id; at !== null; at = parent.get(at) ?? null) path.unshift(at);
        return path;
      }
      for (const next of this.#dependsOnFrom.all(id)) {
        if (!parent.has(next)) {
          parent.set(next, id);
          queue.push(next);
        }
      }
    }
    return undefined;
  }
}

function toEdge(row: EdgeRow): Edge {
  return { from: row.from_id, rel: row.rel, to: row.to_id, createdAt: row.created_at };
}

/** The repository's statements, prepared once per connection (a repository is built per store handle). */
function prepareEdgeStatements(db: Db) {
  return {
    kind: db.prepare<[string], { kind: NodeKind }>('SELECT kind FROM nodes WHERE id = ?'),
    insert: db.prepare('INSERT OR IGNORE INTO edges (from_id, rel, to_id, created_at) VALUES (?, ?, ?, ?)'),
    dependsOnFrom: db
      .prepare<[string], string>("SELECT to_id FROM edges WHERE from_id = ? AND rel = 'depends_on'")
      .pluck(),
  };
}
