import { isAbsolute, resolve } from 'node:path';
import type { StoreContext } from '../context.js';
import { NotFoundError, UserError } from '../errors.js';
import { NameSchema, parseInput, type WorkspaceInput, WorkspaceInputSchema } from '../schemas.js';
import type { NeedStatus } from '../transitions.js';
import type { Workspace } from '../types.js';

interface WorkspaceRow {
  name: string;
  tags_any: string;
  tags_all: string;
  scope: string | null;
  statuses: string;
  out_dir: string;
  created_at: number;
}

export const DEFAULT_WORKSPACE = 'default';

/** Workspaces: named filters over needs, each with an output folder for its compiled views. */
export class WorkspaceRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  /** Adds a workspace, or replaces it with `replace`. The `default` workspace always exists. */
  add(input: WorkspaceInput, options: { replace?: boolean } = {}): Workspace {
    const w = parseInput(WorkspaceInputSchema, input, 'workspace');
    return this.#ctx.write(() => {
      const existing = this.get(w.name);
      if (existing && !options.replace) {
        throw new UserError(
          `workspace ${w.name} already exists: pick another name, or pass --replace to change it`,
        );
      }
      // Each workspace owns its folder: a compile removes the pages of needs it no longer holds,
      // so two workspaces in one folder would undo each other's views.
      const clash = this.list().find((o) => o.name !== w.name && sameDir(o.outDir, w.outDir));
      if (clash) {
        throw new UserError(
          `--out ${w.outDir} is the folder of workspace ${clash.name}: give each workspace its own folder`,
        );
      }
      this.#ctx
        .prepare(
          `INSERT INTO workspaces (name, tags_any, tags_all, scope, statuses, out_dir, created_at)
           VALUES (@name, @tagsAny, @tagsAll, @scope, @statuses, @outDir, @now)
           ON CONFLICT (name) DO UPDATE SET tags_any = excluded.tags_any, tags_all = excluded.tags_all,
             scope = excluded.scope, statuses = excluded.statuses, out_dir = excluded.out_dir`,
        )
        .run({
          ...w,
          tagsAny: JSON.stringify([...new Set(w.tagsAny)].sort()),
          tagsAll: JSON.stringify([...new Set(w.tagsAll)].sort()),
          statuses: JSON.stringify(w.statuses),
          now: this.#ctx.now(),
        });
      this.#ctx.emit({
        kind: existing ? 'workspace.changed' : 'workspace.added',
        entity: w.name,
        payload: {
          tagsAny: w.tagsAny,
          tagsAll: w.tagsAll,
          scope: w.scope,
          statuses: w.statuses,
          outDir: w.outDir,
        },
      });
      return this.get(w.name)!;
    });
  }

  /** The named workspace; `default` is created on first use with the output folder `views`. */
  get(name: string): Workspace | undefined {
    const row = this.#ctx
      .prepare<[string], WorkspaceRow>('SELECT * FROM workspaces WHERE name = ?')
      .get(name);
    if (row) return toWorkspace(row);
    if (name === DEFAULT_WORKSPACE) return defaultWorkspace();
    return undefined;
  }

  require(name: string): Workspace {
    parseInput(NameSchema, name, 'workspace name');
    const w = this.get(name);
    if (!w) throw new NotFoundError('workspace', name, 'list workspaces with `mlos workspace list`');
    return w;
  }

  list(): Workspace[] {
    const rows = this.#ctx
      .prepare<[], WorkspaceRow>('SELECT * FROM workspaces ORDER BY name')
      .all()
      .map(toWorkspace);
    if (!rows.some((w) => w.name === DEFAULT_WORKSPACE)) rows.unshift(defaultWorkspace());
    return rows;
  }
}

function defaultWorkspace(): Workspace {
  return {
    name: DEFAULT_WORKSPACE,
    tagsAny: [],
    tagsAll: [],
    scope: null,
    statuses: [],
    outDir: 'views',
    createdAt: 0,
  };
}

function toWorkspace(row: WorkspaceRow): Workspace {
  return {
    name: row.name,
    tagsAny: JSON.parse(row.tags_any) as string[],
    tagsAll: JSON.parse(row.tags_all) as string[],
    scope: row.scope,
    statuses: JSON.parse(row.statuses) as NeedStatus[],
    outDir: row.out_dir,
    createdAt: row.created_at,
  };
}

/** An output folder as a comparable path (relative ones are relative to the database folder). */
function comparable(dir: string): string {
  return isAbsolute(dir) ? resolve(dir) : resolve('/@db', dir);
}

function sameDir(a: string, b: string): boolean {
  return comparable(a) === comparable(b);
}
