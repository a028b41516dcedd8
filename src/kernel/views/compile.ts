import { MlosError, type Store, type Workspace } from '../../store/index.js';
import { loadProblemInput, loadWorkspaceInput, problemInputOf, type WorkspaceInput } from './data.js';
import { seqOfHeaderLine, type ViewFile } from './header.js';
import { GRAPH_FILE, renderGraph } from './render-graph.js';
import { NEEDS_DIR, needPagePath, renderNeedPage } from './render-need.js';
import { PROBLEM_FILE, renderProblem } from './render-problem.js';
import { README_FILE, renderReadme } from './render-readme.js';
import { type SyncReport, syncViews } from './writer.js';

export interface CompileOptions {
  /** Where to write; default: the workspace's folder, resolved against the database folder. */
  readonly outDir?: string;
  /** Compare only: write nothing, report what is missing, stale or edited by hand. */
  readonly check?: boolean;
  /** Overwrite files that exist without an mlos header. */
  readonly force?: boolean;
  /** What this process last wrote in the output folder (see `SyncOptions.known`). */
  readonly known?: Map<string, string>;
}

export interface WorkspaceReport extends SyncReport {
  readonly workspace: string;
  /** How many files the workspace compiles to. */
  readonly files: number;
}

/**
 * Every file of a workspace, rendered from one input: PROBLEM.md, README.md, graph.md,
 * needs/<id>.md (but the pages of `input.unrendered`).
 */
export function renderWorkspaceInput(input: WorkspaceInput): ViewFile[] {
  const members = new Set(input.needs.map((n) => n.id));
  const skipped = input.unrendered;
  const pages = skipped?.size ? input.needs.filter((n) => !skipped.has(n.id)) : input.needs;
  return [
    renderProblem(problemInputOf(input)),
    renderReadme(input),
    renderGraph(input),
    ...pages.map((n) => renderNeedPage(n, input, members)),
  ];
}

/** Every file of a workspace as the database stands: one consistent read, then pure rendering. */
export function renderWorkspace(store: Store, workspace: Workspace): ViewFile[] {
  return renderWorkspaceInput(store.views.snapshot(() => loadWorkspaceInput(store, workspace)));
}

/** PROBLEM.md alone, loading only what it shows (the fast path measured by bench/compile-problem.mjs). */
export function renderProblemFile(store: Store, workspace: Workspace): ViewFile {
  return renderProblem(store.views.snapshot(() => loadProblemInput(store, workspace)));
}

/**
 * One file of a workspace by its path (`PROBLEM.md`, `README.md`, `graph.md`, `needs/<id>.md`),
 * the same bytes `compile` writes; undefined when the workspace compiles to no such file.
 */
export function renderView(store: Store, workspace: Workspace, path: string): ViewFile | undefined {
  if (path === PROBLEM_FILE) return renderProblemFile(store, workspace);
  if (path !== README_FILE && path !== GRAPH_FILE && !path.startsWith(`${NEEDS_DIR}/`)) return undefined;
  // One consistent read, then only the file asked for is rendered (not every need page).
  const input = store.views.snapshot(() => loadWorkspaceInput(store, workspace));
  if (path === README_FILE) return renderReadme(input);
  if (path === GRAPH_FILE) return renderGraph(input);
  const need = input.needs.find((n) => needPagePath(n.id) === path);
  return need && renderNeedPage(need, input, new Set(input.needs.map((n) => n.id)));
}

/**
 * Compiles one workspace into its folder, rewriting only files whose bytes change and removing
 * pages of needs that left it; with `check`, writes nothing and reports every file that is
 * missing, stale or edited by hand.
 */
export function compileWorkspace(
  store: Store,
  workspace: Workspace,
  options: CompileOptions = {},
): WorkspaceReport {
  const outDir = options.outDir ?? store.resolvePath(workspace.outDir);
  // A need page this process wrote at the seq it would name now has the same bytes: not rendered.
  const known = options.check ? undefined : options.known;
  const input = store.views.snapshot(() =>
    loadWorkspaceInput(
      store,
      workspace,
      known ? { skipPage: (id, seq) => seqOfHeaderLine(known.get(needPagePath(id))) === seq } : {},
    ),
  );
  const files = renderWorkspaceInput(input);
  const kept = [...(input.unrendered ?? [])].map(needPagePath);
  const report = syncViews(outDir, files, {
    check: options.check ?? false,
    force: options.force ?? false,
    managedDirs: [NEEDS_DIR],
    ...(known && { known, kept }),
  });
  return { workspace: workspace.name, files: files.length + kept.length, ...report };
}

/** `mlos compile --check` found files that do not match the database. */
export class ViewsOutOfDateError extends MlosError {
  readonly count: number;

  constructor(count: number) {
    super(
      'views_out_of_date',
      `${count} view ${count === 1 ? 'file is' : 'files are'} missing, stale or edited by hand: run mlos compile`,
    );
    this.count = count;
  }
}
