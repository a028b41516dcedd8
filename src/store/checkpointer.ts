import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';
import { OwnedThread } from './thread.js';

/**
 * WAL checkpoints off the write path. SQLite's automatic checkpoint runs inside the commit that
 * fills the WAL past its threshold: that commit copies the log into the database and syncs it,
 * 7–12 ms on a plain disk, and whichever write of the run happens to be that commit waits for it
 * (a graduation, a claim). A long-running process instead turns the writer's automatic checkpoint
 * down to a safety net (`Store.deferCheckpoints`) and runs this: a worker thread with its own
 * connection that runs `PRAGMA wal_checkpoint(PASSIVE)` every `everyMs`. A passive checkpoint never
 * waits for readers or writers, so the writer never waits for it either.
 */
export interface CheckpointerOptions {
  /** Between two checkpoints, in ms. Default 1000. */
  readonly everyMs?: number;
  /** Called when a checkpoint fails (the writer's safety net still bounds the log). */
  readonly onError?: (message: string) => void;
}

/** The worker's code: CommonJS, given the resolved better-sqlite3 module and the database path. */
const SOURCE = /* js */ `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.module);
const db = new Database(workerData.path, { timeout: 5000 });
const checkpoint = () => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (error) {
    parentPort.postMessage({ error: String((error && error.message) || error) });
  }
};
const timer = setInterval(checkpoint, workerData.everyMs);
parentPort.on('message', (message) => {
  if (message !== 'close') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.close();
});
`;

const betterSqlite3 = createRequire(import.meta.url).resolve('better-sqlite3');

export class Checkpointer {
  readonly #thread: OwnedThread;

  private constructor(thread: OwnedThread) {
    this.#thread = thread;
  }

  /** Starts checkpointing the database at `path` (a file in WAL mode) in a worker thread. */
  static start(path: string, options: CheckpointerOptions = {}): Checkpointer {
    const thread = new OwnedThread(
      new Worker(SOURCE, {
        eval: true,
        workerData: { module: betterSqlite3, path, everyMs: options.everyMs ?? 1000 },
      }),
      {
        message: (m) => {
          const error = (m as { error?: string }).error;
          if (error) options.onError?.(error);
        },
        error: (error) => options.onError?.(error.message),
      },
    );
    return new Checkpointer(thread);
  }

  /** Runs a last checkpoint and stops the thread (terminated after `timeoutMs`). */
  close(timeoutMs = 5000): Promise<void> {
    return this.#thread.close(timeoutMs);
  }
}
