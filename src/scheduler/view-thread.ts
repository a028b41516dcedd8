import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Logger } from './logger.js';

/** What the views thread is started with. */
export interface ViewThreadData {
  readonly path: string;
  /** How often the thread looks at the event log's head, in ms. */
  readonly pollMs: number;
  /** The share of the thread's time compiles may take (see ViewKeeperOptions.maxShare). */
  readonly maxShare: number;
}

/** What the views thread sends back. */
export type ViewThreadMessage =
  | { readonly type: 'ready' }
  | { readonly type: 'closed' }
  | {
      readonly type: 'log';
      readonly level: 'info' | 'warn' | 'error' | 'debug';
      readonly obj: Record<string, unknown>;
      readonly msg?: string;
    };

/** How a views thread ended (see ViewThread.close). */
export type ViewThreadEnd = 'closed' | 'timeout' | 'dead';

interface ThreadState {
  closing: boolean;
  /** It answered `close`: its last compile (if asked for) is done. */
  compiled: boolean;
  failed: boolean;
  timedOut: boolean;
}

const WORKER = new URL('./view-thread-worker.js', import.meta.url);

/**
 * `mlos run`'s views, kept compiled in a worker thread with its own read-only connection: a
 * compile reads every need of a workspace, which on a large graph took the supervisor's thread
 * (and every session's guard calls) for a tenth of the time or more. WAL lets the thread read a
 * consistent snapshot while the run writes; it polls the event log's head and compiles when it
 * moved, paced as ViewKeeper paces. On close it compiles once more, checking every file, so the
 * views on disk match the database as the run left it.
 */
export class ViewThread {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #state: ThreadState;
  #closing: Promise<ViewThreadEnd> | undefined;

  private constructor(worker: Worker, exited: Promise<void>, state: ThreadState) {
    this.#worker = worker;
    this.#exited = exited;
    this.#state = state;
  }

  /**
   * Whether the thread's module is here: it is in the built package; under a TypeScript test
   * runner the sources have none, and the run keeps its views in its own thread.
   */
  static available(): boolean {
    return existsSync(fileURLToPath(WORKER));
  }

  /**
   * Starts the thread on the database file at `path`. `onFailure` is called once if the thread
   * dies (its views are then no longer kept; the caller decides what keeps them).
   */
  static start(
    path: string,
    options: { log: Logger; pollMs?: number; maxShare?: number; onFailure?: (error: Error) => void },
  ): ViewThread {
    const data: ViewThreadData = { path, pollMs: options.pollMs ?? 250, maxShare: options.maxShare ?? 0.25 };
    const worker = new Worker(WORKER, { workerData: data });
    // It must never keep a finished process alive.
    worker.unref();
    const state = { closing: false, compiled: false, failed: false, timedOut: false };
    const fail = (error: Error) => {
      if (state.failed) return;
      state.failed = true;
      options.log.error({ err: error }, 'the views thread failed');
      // While closing, close() reports it (the caller compiles in its own thread then).
      if (!state.closing) options.onFailure?.(error);
    };
    worker.on('message', (m: ViewThreadMessage) => {
      if (m.type === 'closed') state.compiled = true;
      if (m.type === 'log') options.log[m.level]({ ...m.obj, thread: 'views' }, m.msg);
    });
    // An uncaught error in the thread is an 'error' event, then an exit with code 1.
    worker.on('error', fail);
    const exited = new Promise<void>((resolve) =>
      worker.once('exit', (code) => {
        // Terminated by close() after its timeout: reported by close(), not as a failure.
        if (!state.compiled && code !== 0 && !(state.closing && state.timedOut))
          fail(new Error(`the views thread exited with code ${code}`));
        resolve();
      }),
    );
    return new ViewThread(worker, exited, state);
  }

  /**
   * Stops the thread: with `compile`, after one last compile that checks every file. Terminated
   * after `timeoutMs` (a compile of a huge graph is cut short: `mlos compile` writes the views).
   * Says how it ended: `closed` (its last compile, if asked for, is on disk), `timeout`, or `dead`
   * (it had failed: nothing compiled it since).
   */
  close(options: { compile: boolean; timeoutMs?: number }): Promise<ViewThreadEnd> {
    this.#closing ??= (async (): Promise<ViewThreadEnd> => {
      const state = this.#state;
      state.closing = true;
      if (state.failed) {
        await this.#exited;
        return 'dead';
      }
      this.#worker.postMessage({ type: 'close', compile: options.compile });
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<'late'>((resolve) => {
        timer = setTimeout(() => resolve('late'), options.timeoutMs ?? 30_000);
      });
      const ended = await Promise.race([this.#exited, late]);
      clearTimeout(timer);
      if (ended === 'late') {
        state.timedOut = true;
        await this.#worker.terminate();
        return 'timeout';
      }
      return state.compiled ? 'closed' : 'dead';
    })();
    return this.#closing;
  }
}
