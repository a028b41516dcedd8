import type { Sleep } from '../../agents/retry.js';
import type { Timers } from '../../store/index.js';

/** A Sleep on port timers: resolves after `ms`, rejects with the signal's reason when it aborts. */
export function sleepOn(timers: Timers): Sleep {
  return (ms, signal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) {
        reject(signal.reason ?? new Error('aborted'));
        return;
      }
      const onAbort = () => {
        handle.cancel();
        reject(signal?.reason ?? new Error('aborted'));
      };
      const handle = timers.setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
}

/**
 * One incarnation of a simulated process (a supervisor, a worker): the timers and sleep it is
 * given, bound to an AbortSignal. `end()` is the process dying: every callback it armed is
 * cancelled and whatever it arms afterwards never fires, so its pending sleeps never resolve and
 * no callback of the old incarnation can run (and write) once a new one exists. Its promise chains
 * stay frozen, as a dead process's would.
 */
export class Epoch {
  readonly timers: Timers;
  readonly sleep: Sleep;
  readonly #controller = new AbortController();
  readonly #armed = new Set<{ cancel(): void }>();
  /** Callbacks that would have run after the end (refused or cancelled). */
  #suppressed = 0;

  constructor(
    base: Timers,
    readonly label: string,
  ) {
    this.timers = {
      setTimeout: (fn, ms) => {
        if (this.ended) {
          this.#suppressed++;
          return { cancel() {} };
        }
        const handle = base.setTimeout(() => {
          this.#armed.delete(handle);
          if (this.ended) {
            this.#suppressed++;
            return;
          }
          fn();
        }, ms);
        this.#armed.add(handle);
        return {
          cancel: () => {
            this.#armed.delete(handle);
            handle.cancel();
          },
        };
      },
    };
    this.sleep = sleepOn(this.timers);
  }

  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get ended(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Callbacks of this incarnation refused or cancelled because it had ended. */
  get suppressed(): number {
    return this.#suppressed;
  }

  /** The process dies: cancels everything it armed. Idempotent. */
  end(): void {
    if (this.ended) return;
    this.#controller.abort(new Error(`${this.label} ended`));
    for (const handle of this.#armed) {
      handle.cancel();
      this.#suppressed++;
    }
    this.#armed.clear();
  }
}
