import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { type CompileOptions, compileWorkspace, type WorkspaceReport } from '../kernel/views/compile.js';
import type { Store, Workspace } from '../store/index.js';
import { OwnedThread } from '../store/thread.js';
import type { Logger } from './logger.js';

export interface ViewKeeperOptions {
  readonly store: Store;
  readonly log: Logger;
  /** The least time between two compiles, in ms (default 1000). */
  readonly minIntervalMs?: number;
  /**
   * The share of the time views may take (default 0.1): after a compile that took T ms, the next
   * waits at least T / share. A compile still reads every need of the workspace, so its cost grows
   * with the graph; without this a large graph would leave the supervisor no time (in its thread)
   * or no core (in the view thread, on a small machine).
   */
  readonly maxShare?: number;
  /**
   * How often a compile renders every page and reads every file back from disk (default 60 s), so
   * a view deleted or edited by hand is rewritten; in between, a need page whose seq has not moved
   * since this keeper wrote it is not rendered, and a file whose bytes have not changed is not read.
   */
  readonly verifyEveryMs?: number;
  /**
   * Compile in a worker thread with its own read-only connection, so that a large graph's compile
   * never holds up the supervisor's loop, heartbeats or pickups: the module of that thread (see
   * VIEW_THREAD). Absent (tests, the simulator) or not built (running from the TypeScript sources):
   * compiles run in this thread.
   */
  readonly thread?: URL;
  /** Wall-clock ms; for tests. */
  readonly now?: () => number;
  /** The compile of one workspace, in this thread; for tests. */
  readonly compile?: (store: Store, workspace: Workspace, options: CompileOptions) => WorkspaceReport;
}

/** The view thread's module, built next to this one (absent when running from the sources). */
export const VIEW_THREAD = new URL('./view-thread.js', import.meta.url);

/** A workspace whose compile failed, and why. */
export interface ViewFailure {
  readonly workspace: string;
  readonly message: string;
}

/** What the view thread answers to a compile request. */
export interface ViewThreadReply {
  readonly tookMs: number;
  readonly failures: readonly ViewFailure[];
}

/**
 * Compiles every workspace of a store, keeping per workspace the header of every file it last
 * wrote or found in place, so that the next compile renders and reads back only what moved. Runs
 * in the view thread, or in the supervisor's when there is none.
 */
export class WorkspaceCompiler {
  readonly #store: Store;
  readonly #compile: NonNullable<ViewKeeperOptions['compile']>;
  readonly #known = new Map<string, Map<string, string>>();

  constructor(store: Store, compile: ViewKeeperOptions['compile'] = compileWorkspace) {
    this.#store = store;
    this.#compile = compile;
  }

  /** Compiles every workspace; `verify` renders every page and reads every file back. */
  compileAll(verify: boolean): ViewFailure[] {
    const workspaces = this.#store.workspaces.list();
    for (const name of this.#known.keys()) {
      if (!workspaces.some((w) => w.name === name)) this.#known.delete(name);
    }
    const failures: ViewFailure[] = [];
    for (const workspace of workspaces) {
      let known = this.#known.get(workspace.name);
      if (!known || verify) {
        known = new Map();
        this.#known.set(workspace.name, known);
      }
      try {
        this.#compile(this.#store, workspace, { known });
      } catch (error) {
        // What the failed sync left on disk is unknown: read it all back next time.
        this.#known.delete(workspace.name);
        failures.push({ workspace: workspace.name, message: (error as Error).message ?? String(error) });
      }
    }
    return failures;
  }
}

/**
 * Keeps every workspace's views compiled while `mlos run` works: after the event log moved, at
 * most once per `minIntervalMs`, and no more often than keeps views within `maxShare` of the time.
 * With a view thread, a compile runs there while this thread goes on; one at a time.
 */
export class ViewKeeper {
  readonly #o: Required<Omit<ViewKeeperOptions, 'store' | 'log' | 'thread'>> &
    Pick<ViewKeeperOptions, 'store' | 'log'>;
  #local: WorkspaceCompiler | undefined;
  #thread: ViewThread | undefined;
  #compiledSeq = -1;
  #nextAt = Number.NEGATIVE_INFINITY;
  #verifiedAt = Number.NEGATIVE_INFINITY;
  #warnedSlow = false;
  #inFlight: Promise<void> | undefined;
  /** The thread stopped during the compile in flight, which is lost. */
  #lost = false;

  constructor(options: ViewKeeperOptions) {
    this.#o = {
      minIntervalMs: 1000,
      maxShare: 0.1,
      verifyEveryMs: 60_000,
      now: Date.now,
      compile: compileWorkspace,
      ...options,
    };
    const thread = options.thread;
    if (thread && existsSync(fileURLToPath(thread)) && options.store.path !== ':memory:') {
      this.#thread = new ViewThread(thread, options.store.path, (error) => {
        if (this.#local) return; // said already (an error, then the exit)
        // Views are still kept, at the old price: compiles hold this thread up again.
        options.log.error(
          { err: error },
          "the view thread stopped: views are compiled in the supervisor's thread from now on",
        );
        this.#thread = undefined;
        this.#local = new WorkspaceCompiler(options.store, this.#o.compile);
      });
    } else {
      this.#local = new WorkspaceCompiler(options.store, this.#o.compile);
    }
  }

  /** Whether compiles run in a view thread. */
  get threaded(): boolean {
    return this.#thread !== undefined;
  }

  /**
   * Compiles (or, with a view thread, starts a compile) when the log moved since the last compile
   * and the pacing allows it. `force` compiles now, checking every file on disk (with a view
   * thread: unless one is running). Returns whether it compiled or started one.
   */
  maybeCompile(force = false): boolean {
    const { store, now } = this.#o;
    const seq = store.events.headSeq();
    const started = now();
    if (this.#inFlight) return false;
    if (!force && (seq === this.#compiledSeq || started < this.#nextAt)) return false;
    const verify = force || started - this.#verifiedAt >= this.#o.verifyEveryMs;
    if (this.#local) {
      const failures = this.#local.compileAll(verify);
      this.#done(seq, started, verify, now() - started, failures);
      return true;
    }
    this.#inFlight = this.#thread!.compile(verify).then(
      (reply) => {
        this.#inFlight = undefined;
        this.#done(seq, started, verify, reply.tookMs, reply.failures);
      },
      () => {
        // The thread stopped (said once, by its error handler): the next compile runs here.
        this.#inFlight = undefined;
        this.#lost = true;
      },
    );
    return true;
  }

  /** Waits for the compile in flight (with a view thread); resolves at once without one. */
  async settled(): Promise<void> {
    await this.#inFlight;
  }

  /**
   * Stops keeping views. `final` (a run that worked) brings them up to date first, checking every
   * file on disk; then the view thread, if any, ends.
   */
  async close(final: boolean): Promise<void> {
    await this.settled();
    if (final) {
      this.#lost = false;
      if (this.maybeCompile(true)) await this.settled();
      // The thread stopped during that compile: this one compiles, so the views are not left behind.
      if (this.#lost) this.maybeCompile(true);
    }
    await this.#thread?.close();
  }

  #done(seq: number, started: number, verify: boolean, took: number, failures: readonly ViewFailure[]) {
    const { log } = this.#o;
    for (const f of failures) log.warn({ err: f.message, workspace: f.workspace }, 'views not compiled');
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
  }
}

/** The view thread from this side: one compile request at a time, each answered once. */
class ViewThread {
  readonly #thread: OwnedThread;
  #pending: { resolve: (reply: ViewThreadReply) => void; reject: (error: Error) => void } | undefined;

  /** `onStopped`: the thread failed or exited on its own; it compiles nothing more. */
  constructor(module: URL, path: string, onStopped: (error: Error) => void) {
    const stopped = (error: Error) => {
      this.#pending?.reject(error);
      this.#pending = undefined;
      onStopped(error);
    };
    this.#thread = new OwnedThread(new Worker(module, { workerData: { path } }), {
      message: (reply) => {
        const pending = this.#pending;
        this.#pending = undefined;
        pending?.resolve(reply as ViewThreadReply);
      },
      error: stopped,
      // An exit after an error was reported already (onStopped runs once: see ViewKeeper).
      exit: (code) => stopped(new Error(`the view thread exited (code ${code})`)),
    });
  }

  compile(verify: boolean): Promise<ViewThreadReply> {
    return this.#thread.busy(
      new Promise<ViewThreadReply>((resolve, reject) => {
        this.#pending = { resolve, reject };
        this.#thread.post({ verify });
      }),
    );
  }

  /** Closes the thread's connection and ends it (terminated after `timeoutMs`). */
  close(timeoutMs = 5000): Promise<void> {
    return this.#thread.close(timeoutMs);
  }
}
