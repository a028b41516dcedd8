import { parentPort } from 'node:worker_threads';
import { runSimulation, type SimOptions } from './run.js';

/** A worker thread of `runSeeds`: runs the seeds it is sent, one at a time, and posts each report. */
parentPort?.on('message', (options: SimOptions) => {
  void runSimulation(options).then(
    (report) => parentPort?.postMessage({ report }),
    (error: unknown) =>
      parentPort?.postMessage({
        seed: options.seed,
        error: error instanceof Error ? error.stack : String(error),
      }),
  );
});
