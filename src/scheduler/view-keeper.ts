import { type CompileOptions, compileWorkspace, type WorkspaceReport } from '../kernel/views/compile.js';
import type { Store, Workspace } from '../store/index.js';
import type { Logger } from './logger.js';

export interface ViewKeeperOptions {
  readonly store: Store;
  readonly log: Logger;
  /** The least time between two compiles, in ms (default 1000). */
  readonly minIntervalMs?: number;
  /**
   * The share of the process's time views may take (default 0.1): after a compile that took T ms,
   * the next waits at least T / share. A compile still reads every need of the workspace, so its
   * cost grows with the graph; without this a large graph would leave the supervisor no time.
   */
  readonly maxShare?: number;
  /**
   * How often a compile renders every page and reads every file back from disk (default 60 s), so
   * a view deleted or edited by hand is rewritten; in between, a need page whose seq has not moved
   * since this keeper wrote it is not rendered, and a file whose bytes have not changed is not read.
   */
  readonly verifyEveryMs?: number;
  /** Wall-clock ms; for tests. */
  readonly now?: () => number;
  /** The compile of one workspace; for tests. */
  readonly compile?: (store: Store, workspace: Workspace, options: CompileOptions) => WorkspaceReport;
}

/**
 * Keeps every workspace's views compiled while `mlos run` works: after the event log moved, at
 * most once per `minIntervalMs`, and no more often than keeps views within `maxShare` of the time.
 */
export class ViewKeeper {
  readonly #o: Required<Omit<ViewKeeperOptions, 'store' | 'log'>> & Pick<ViewKeeperOptions, 'store' | 'log'>;
  /** Per workspace: the header line of every file last written or found in place, by path. */
  readonly #known = new Map<string, Map<string, string>>();
  #compiledSeq = -1;
  #nextAt = Number.NEGATIVE_INFINITY;
  #verifiedAt = Number.NEGATIVE_INFINITY;
  #warnedSlow = false;

  constructor(options: ViewKeeperOptions) {
    this.#o = {
      minIntervalMs: 1000,
      maxShare: 0.1,
      verifyEveryMs: 60_000,
      now: Date.now,
      compile: compileWorkspace,
      ...options,
    };
  }

  /**
   * Compiles when the log moved since the last compile and the pacing allows it. `force` (at
   * shutdown) compiles now, checking every file on disk. Returns whether it compiled.
   */
  maybeCompile(force = false): boolean {
    const { store, log, now } = this.#o;
    const seq = store.events.headSeq();
    const started = now();
    if (!force && (seq === this.#compiledSeq || started < this.#nextAt)) return false;
    const verify = force || started - this.#verifiedAt >= this.#o.verifyEveryMs;
    const workspaces = store.workspaces.list();
    for (const name of this.#known.keys()) {
      if (!workspaces.some((w) => w.name === name)) this.#known.delete(name);
    }
    for (const workspace of workspaces) {
      let known = this.#known.get(workspace.name);
      if (!known || verify) {
        known = new Map();
        this.#known.set(workspace.name, known);
      }
      try {
        this.#o.compile(store, workspace, { known });
      } catch (error) {
        // What the failed sync left on disk is unknown: read it all back next time.
        this.#known.delete(workspace.name);
        log.warn({ err: error, workspace: workspace.name }, 'views not compiled');
      }
    }
    const took = now() - started;
    this.#compiledSeq = seq;
    this.#nextAt = started + Math.max(this.#o.minIntervalMs, took / this.#o.maxShare);
    if (verify) this.#verifiedAt = started;
    if (!this.#warnedSlow && took / this.#o.maxShare > this.#o.minIntervalMs * 5) {
      this.#warnedSlow = true;
      log.warn(
        { compileMs: Math.round(took), everyMs: Math.round(took / this.#o.maxShare) },
        'compiling the views takes long on this graph: they are refreshed less often (mlos compile writes them at once)',
      );
    }
    return true;
  }
}
