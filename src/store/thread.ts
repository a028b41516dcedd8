import type { Worker } from 'node:worker_threads';

/**
 * A worker thread that ends when asked: the promise of its exit, taken at start (an exit that
 * happens before anyone waits is not missed), and a close that asks it to end with a `'close'`
 * message and terminates it when it has not ended within `timeoutMs`.
 */
export class OwnedThread {
  readonly worker: Worker;
  readonly #exited: Promise<void>;

  constructor(worker: Worker) {
    this.worker = worker;
    // It must never keep a finished process alive.
    worker.unref();
    this.#exited = new Promise((resolve) => worker.once('exit', () => resolve()));
  }

  async close(timeoutMs: number): Promise<void> {
    this.worker.postMessage('close');
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), timeoutMs);
    });
    if ((await Promise.race([this.#exited, late])) === 'late') await this.worker.terminate();
    clearTimeout(timer);
  }
}
