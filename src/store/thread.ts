import type { Worker } from 'node:worker_threads';

/** What a thread's owner listens to; attached before the thread is unref'd. */
export interface ThreadListeners {
  readonly message?: (message: unknown) => void;
  readonly error?: (error: Error) => void;
  readonly exit?: (code: number) => void;
}

/**
 * A worker thread that never keeps a finished process alive, yet is waited for while its owner
 * awaits an answer (`busy`), and that ends when asked: `close` sends it a `'close'` message and
 * terminates it when it has not ended within the timeout. Its exit is watched from the start, so
 * an exit that happens before anyone waits is not missed.
 */
export class OwnedThread {
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  #closing = false;

  constructor(worker: Worker, listeners: ThreadListeners = {}) {
    this.#worker = worker;
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
    if (listeners.message) worker.on('message', listeners.message);
    if (listeners.error) worker.on('error', listeners.error);
    const onExit = listeners.exit;
    if (onExit) worker.on('exit', (code) => !this.#closing && onExit(code));
    // After the listeners: adding a 'message' listener refs the thread again.
    worker.unref();
  }

  post(message: unknown): void {
    this.#worker.postMessage(message);
  }

  /** Keeps the process alive until `answer` settles: an awaited reply must not be cut short. */
  async busy<T>(answer: Promise<T>): Promise<T> {
    this.#worker.ref();
    try {
      return await answer;
    } finally {
      this.#worker.unref();
    }
  }

  async close(timeoutMs: number): Promise<void> {
    this.#closing = true;
    this.#worker.postMessage('close');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    if ((await Promise.race([this.#exited, late])) === 'late') await this.#worker.terminate();
    clearTimeout(timer);
  }
}
