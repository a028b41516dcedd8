import type { Artifact, Need, NeedStatus, StoredEvent, Task } from '../../store/index.js';

/**
 * The narrow read port the context pack, pointer expansion and awareness compile from. The store
 * implements it (`store.packReads`) with indexed queries; tests may implement it over anything.
 * Every list is deterministic: ties are broken by id or seq.
 */

/** One need as a summary line: never its body. */
export interface NeedLine {
  readonly id: string;
  readonly title: string;
  readonly status: NeedStatus;
  readonly priority: number;
}

/** A need reached through `depends_on`, at its smallest depth, and the need it was reached from. */
export interface DependencyEntry extends NeedLine {
  readonly depth: number;
  readonly via: string;
}

/** A need sharing tags with the pack's need; `shared` is how many tags. */
export interface NeighbourEntry extends NeedLine {
  readonly shared: number;
}

/** An artifact a task of the need produced (`produced_by`), with the task. */
export interface TaskArtifact extends Artifact {
  readonly taskId: string;
}

/** Neighbours ranked from bounded windows, and what the windows left out. */
export interface NeighbourPage {
  readonly rows: readonly NeighbourEntry[];
  /** How many distinct needs the windows held (the rows are the first of them). */
  readonly ranked: number;
  /**
   * The need's tags carried by more other needs than the window, with how many carry each:
   * exactly, or (`exact` false) more than `needs`.
   */
  readonly cut: readonly { readonly tag: string; readonly needs: number; readonly exact: boolean }[];
}

/** The first `limit` of a list and how many there are in all. */
export interface Page<T> {
  readonly rows: readonly T[];
  readonly total: number;
}

export interface PackSource {
  need(id: string): Need | undefined;
  /**
   * Needs reachable from `needId` by `depends_on`, breadth first, each once at its smallest depth,
   * ordered by depth then id; at most `limit`. `truncated` is true when more were reachable.
   */
  dependencyChain(needId: string, limit: number): { rows: readonly DependencyEntry[]; truncated: boolean };
  /** Artifacts the need references, oldest first. */
  referencedArtifacts(needId: string, limit: number): Page<Artifact>;
  /** Finished (not queued or running) tasks of the need, newest attempt first. */
  earlierTasks(needId: string, limit: number): Page<Task>;
  /** Artifacts produced by the need's tasks, newest first. */
  taskArtifacts(needId: string, limit: number): Page<TaskArtifact>;
  /**
   * Other needs sharing at least one tag, looking at the newest `window` needs of each of its
   * tags: most shared tags first, then newest; at most `limit`.
   */
  neighbours(needId: string, limit: number, window: number): NeighbourPage;
  /** Events about the need, newest first. */
  recentEvents(needId: string, limit: number): Page<StoredEvent>;
  artifact(id: string): Artifact | undefined;
  task(id: string): Task | undefined;
}

/** One open or active need in an identity's view, with the flags awareness ranks by. */
export interface ScopeNeed extends NeedLine {
  /** Unmet: actionable or active with no live lease, or flagged `unmet_since` / orphaned. */
  readonly unmet: boolean;
  readonly orphaned: boolean;
  /** Open with a `depends_on` that is not resolved. */
  readonly blocked: boolean;
  /** A task holds a live lease. */
  readonly leased: boolean;
  /** `not_before` lies in the future. */
  readonly deferred: boolean;
}

/** Needs whose tags meet `tags` and none of `excludeTags`. */
export interface ScopeQuery {
  readonly tags: readonly string[];
  readonly excludeTags: readonly string[];
}

/** An identity's slice of the need graph for one scope, as awareness renders it. */
export interface ScopeView {
  /** How many needs of the scope are in each status. */
  readonly counts: Readonly<Record<NeedStatus, number>>;
  /** How many open or active needs of the scope are unmet. */
  readonly unmet: number;
  /**
   * Open and active needs of the scope: unmet first (orphaned first among them), then priority,
   * then id; at most the limit asked for.
   */
  readonly needs: readonly ScopeNeed[];
}

export interface AwarenessSource {
  /** The store's clock: what "now" is when judging leases and not_before. */
  now(): number;
  /** The scope's counts and its first `limit` open or active needs, judged at `now`. */
  scopeView(query: ScopeQuery, now: number, limit: number): ScopeView;
}
