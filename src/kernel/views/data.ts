import {
  type ArtifactLine,
  type Dependency,
  type Edge,
  type EventLine,
  type LeaseHolder,
  NEED_STATUSES,
  type Need,
  type NeedHead,
  type NeedSelection,
  type NeedStatus,
  type NodeLabel,
  type Store,
  type TaskLine,
  type Workspace,
} from '../../store/index.js';

/** How many of a need's latest events its page lists. */
export const RECENT_EVENTS = 10;

/** The statuses PROBLEM.md shows. */
export const PROBLEM_STATUSES: readonly NeedStatus[] = ['open', 'active'];

/** The statuses PROBLEM.md only counts, when nothing is open or active. */
const CLOSED_STATUSES: readonly NeedStatus[] = ['resolved', 'dropped'];

/** What PROBLEM.md is rendered from: stored facts only. */
export interface ProblemInput {
  readonly workspace: Workspace;
  /** Open and active needs of the workspace, by priority, age, id. */
  readonly needs: readonly NeedHead[];
  readonly holders: ReadonlyMap<string, LeaseHolder>;
  /** `depends_on` edges by source need, by target. */
  readonly dependencies: ReadonlyMap<string, readonly Dependency[]>;
  /**
   * When no need is open or active: how many of the workspace's needs are resolved and dropped
   * (the file says so, rather than only that nothing is open).
   */
  readonly closed: { readonly resolved: number; readonly dropped: number } | null;
  /**
   * The latest event about any need of the workspace's tags and scope, whatever its status (a need
   * resolved or dropped leaves the file with that event) or about one those tags and scope matched
   * until it was retagged or moved, about a need a shown one depends on, or about the workspace.
   */
  readonly seq: number;
}

/** What every file of a workspace is rendered from. */
export interface WorkspaceInput {
  readonly workspace: Workspace;
  /** Every need of the workspace, by priority, age, id. */
  readonly needs: readonly Need[];
  readonly holders: ReadonlyMap<string, LeaseHolder>;
  /** `depends_on` edges by source need, for the needs of the workspace. */
  readonly dependencies: ReadonlyMap<string, readonly Dependency[]>;
  /** Latest event seq per need, counting edge events that name it as their target. */
  readonly seqs: ReadonlyMap<string, number>;
  readonly workspaceSeq: number;
  /**
   * The latest event about a need the workspace's tags and scope match, or matched until a change
   * of its tags or scope, in any status (ViewRepository.latestSeq): a need that leaves the
   * workspace leaves its files with that event, so their seq never goes back.
   */
  readonly selectionSeq: number;
  /** PROBLEM.md's closed counts and seq (see ProblemInput). */
  readonly problem: Pick<ProblemInput, 'closed' | 'seq'>;
  /** Every edge touching a need of the workspace, by need id (each edge listed under both ends). */
  readonly edges: ReadonlyMap<string, readonly Edge[]>;
  /** Labels of every node at the far end of those edges. */
  readonly labels: ReadonlyMap<string, NodeLabel>;
  readonly tasks: ReadonlyMap<string, readonly TaskLine[]>;
  readonly artifacts: ReadonlyMap<string, readonly ArtifactLine[]>;
  /** The latest events about each need, newest first. */
  readonly events: ReadonlyMap<string, readonly EventLine[]>;
  /** Needs whose page is not rendered (see LoadOptions.skipPage); their details are not loaded. */
  readonly unrendered?: ReadonlySet<string>;
}

/** The workspace's filter with its statuses narrowed to `statuses`. */
export function narrow(workspace: Workspace, statuses: readonly NeedStatus[]): NeedSelection {
  const allowed = workspace.statuses.length ? workspace.statuses : NEED_STATUSES;
  return {
    tagsAny: workspace.tagsAny,
    tagsAll: workspace.tagsAll,
    scope: workspace.scope,
    statuses: NEED_STATUSES.filter((s) => statuses.includes(s) && allowed.includes(s)),
  };
}

/** Loads what PROBLEM.md needs and nothing more: a few set-based queries. */
export function loadProblemInput(store: Store, workspace: Workspace): ProblemInput {
  const selection = narrow(workspace, PROBLEM_STATUSES);
  const needs = selection.statuses.length ? store.views.needHeads(selection) : [];
  const dependencies = groupBy(store.views.dependencies(), (d) => d.from);
  return {
    workspace,
    needs,
    holders: byKey(store.views.leaseHolders(), (h) => h.needId),
    dependencies,
    ...closedPart(store, workspace, needs, dependencies, store.views.latestSeq(workspace)),
  };
}

/**
 * PROBLEM.md's closed counts and seq (see ProblemInput). Computed the same way by both loaders,
 * so the fast path and a full compile write the same header.
 */
function closedPart(
  store: Store,
  workspace: Workspace,
  needs: readonly NeedHead[],
  dependencies: ReadonlyMap<string, readonly Dependency[]>,
  selectionSeq: number,
): Pick<ProblemInput, 'closed' | 'seq'> {
  const seq = problemSeq(store, workspace, needs, dependencies, selectionSeq);
  if (needs.length > 0) return { closed: null, seq };
  const selection = narrow(workspace, CLOSED_STATUSES);
  if (selection.statuses.length === 0) return { closed: { resolved: 0, dropped: 0 }, seq };
  const counts = store.views.statusCounts(selection);
  return { closed: { resolved: counts.resolved ?? 0, dropped: counts.dropped ?? 0 }, seq };
}

/**
 * The seq PROBLEM.md reflects: the latest event about a need of the workspace's tags and scope in
 * any status (the file shows the open and active ones, counts the closed ones, and a need that
 * closes leaves it with its closing event, one retagged or moved out with that change: see
 * selectionSeq), about a need one of the shown needs depends on (its
 * status decides the blocker list), or about the workspace. Computed the same way by both loaders,
 * so the fast path and a full compile write the same header.
 */
function problemSeq(
  store: Store,
  workspace: Workspace,
  needs: readonly NeedHead[],
  dependencies: ReadonlyMap<string, readonly Dependency[]>,
  selectionSeq: number,
): number {
  const blockers = new Set<string>();
  for (const n of needs) for (const d of dependencies.get(n.id) ?? []) blockers.add(d.to);
  return Math.max(store.views.workspaceSeq(workspace.name), selectionSeq, store.views.maxSeq([...blockers]));
}

export interface LoadOptions {
  /**
   * Needs whose page need not be rendered: called with each need's id and the seq its page would
   * name (see needPageSeq); their tasks, artifacts and events are not loaded, and their ids are
   * listed in `unrendered`. The view keeper passes the pages it wrote at that same seq: a page's
   * seq covers everything the page shows, so its bytes are the same.
   */
  readonly skipPage?: (needId: string, seq: number) => boolean;
}

/**
 * The seq a need page names: the latest event about the need, about a need it shares an edge
 * with (their titles and statuses are shown), or about the workspace (it decides which neighbours
 * get links). Everything the page shows changes only with one of those events.
 */
export function needPageSeq(
  needId: string,
  input: Pick<WorkspaceInput, 'edges' | 'labels' | 'seqs' | 'workspaceSeq'>,
): number {
  let seq = Math.max(input.workspaceSeq, input.seqs.get(needId) ?? 0);
  for (const e of input.edges.get(needId) ?? []) {
    const other = e.from === needId ? e.to : e.from;
    if (input.labels.get(other)?.kind === 'need') seq = Math.max(seq, input.seqs.get(other) ?? 0);
  }
  return seq;
}

/** Loads everything a workspace's files show, in one query per kind of fact. */
export function loadWorkspaceInput(
  store: Store,
  workspace: Workspace,
  options: LoadOptions = {},
): WorkspaceInput {
  const needs = store.views.needs(narrow(workspace, NEED_STATUSES));
  const ids = needs.map((n) => n.id);
  const edges = store.views.edgesTouching(ids);
  const byNeed = new Map<string, Edge[]>();
  const far = new Set<string>();
  const members = new Set(ids);
  for (const e of edges) {
    for (const [end, other] of [
      [e.from, e.to],
      [e.to, e.from],
    ] as const) {
      if (!members.has(end)) continue;
      push(byNeed, end, e);
      far.add(other);
    }
  }
  const dependencies = groupBy(store.views.dependencies(), (d) => d.from);
  const labels = store.views.nodeLabels([...far].sort());
  // The pages show these needs and their neighbours; each one's seq goes into a header.
  const shown = [...ids, ...[...labels.values()].filter((l) => l.kind === 'need').map((l) => l.id)];
  const seqs = store.views.needSeqs(shown);
  const workspaceSeq = store.views.workspaceSeq(workspace.name);
  const selectionSeq = store.views.latestSeq(workspace);
  const skip = options.skipPage;
  const unrendered = new Set<string>();
  if (skip) {
    const light = { edges: byNeed, labels, seqs, workspaceSeq };
    for (const id of ids) if (skip(id, needPageSeq(id, light))) unrendered.add(id);
  }
  const rendered = unrendered.size ? ids.filter((id) => !unrendered.has(id)) : ids;
  return {
    workspace,
    needs,
    holders: byKey(store.views.leaseHolders(), (h) => h.needId),
    dependencies,
    seqs,
    workspaceSeq,
    selectionSeq,
    problem: closedPart(store, workspace, problemNeeds(workspace, needs), dependencies, selectionSeq),
    edges: byNeed,
    labels,
    tasks: groupBy(store.views.tasksOf(rendered), (t) => t.needId),
    artifacts: groupBy(store.views.artifactsOf(rendered), (a) => a.needId),
    events: groupBy(store.views.recentEvents(rendered, RECENT_EVENTS), (e) => e.needId),
    unrendered,
  };
}

/** The PROBLEM.md input contained in a workspace input (same rows, same order). */
export function problemInputOf(input: WorkspaceInput): ProblemInput {
  return {
    workspace: input.workspace,
    needs: problemNeeds(input.workspace, input.needs),
    holders: input.holders,
    dependencies: input.dependencies,
    ...input.problem,
  };
}

function problemNeeds(workspace: Workspace, needs: readonly Need[]): Need[] {
  const allowed = narrow(workspace, PROBLEM_STATUSES).statuses;
  return needs.filter((n) => allowed.includes(n.status));
}

function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const map = new Map<string, T[]>();
  for (const item of items) push(map, key(item), item);
  return map;
}

function byKey<T>(items: readonly T[], key: (item: T) => string): Map<string, T> {
  return new Map(items.map((item) => [key(item), item]));
}

function push<T>(map: Map<string, T[]>, key: string, item: T): void {
  const list = map.get(key);
  if (list) list.push(item);
  else map.set(key, [item]);
}
