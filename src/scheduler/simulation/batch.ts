import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker as Thread } from 'node:worker_threads';
import { runSimulation, type SimOptions, type SimReport } from './run.js';

export interface SeedBatchOptions {
  /** Everything but the seed. */
  readonly options: Omit<SimOptions, 'seed' | 'inspect' | 'onProgress'>;
  /** Progress of each seed, with one job only (threads report when a seed is done). */
  readonly onProgress?: SimOptions['onProgress'];
  readonly first: number;
  readonly count: number;
  /** Seeds run at once, each in its own worker thread; 1 runs them in this thread. */
  readonly jobs: number;
  /** Each report as it arrives (in seed order with one job, in completion order with several). */
  readonly onReport: (report: SimReport) => void;
}

/**
 * Runs seeds `first … first + count − 1`. Every seed is a whole, independent run, so they spread
 * over worker threads without changing any result. Rejects when a run throws (a bug of the
 * simulator or of a component, not an invariant violation, which is part of the report); the
 * other threads are stopped then.
 */
export async function runSeeds(batch: SeedBatchOptions): Promise<void> {
  const jobs = Math.max(1, Math.min(batch.jobs, batch.count));
  if (jobs === 1) {
    for (let i = 0; i < batch.count; i++)
      batch.onReport(
        await runSimulation({
          ...batch.options,
          seed: batch.first + i,
          ...(batch.onProgress && { onProgress: batch.onProgress }),
        }),
      );
    return;
  }
  const threads: Thread[] = [];
  let next = 0;
  const work = (thread: Thread) =>
    new Promise<void>((resolve, reject) => {
      let busy = false;
      const send = () => {
        busy = next < batch.count;
        if (busy) thread.postMessage({ ...batch.options, seed: batch.first + next++ });
        else resolve();
      };
      thread.on('message', (message: { report?: SimReport; seed?: number; error?: string }) => {
        if (!message.report) {
          reject(new Error(`seed ${message.seed} threw: ${message.error}`));
          return;
        }
        batch.onReport(message.report);
        send();
      });
      thread.on('error', reject);
      thread.on('exit', (code) => {
        if (busy) reject(new Error(`a simulation thread exited (code ${code}) in the middle of a seed`));
      });
      send();
    });
  try {
    for (let i = 0; i < jobs; i++) threads.push(startThread());
    await Promise.all(threads.map(work));
  } finally {
    await Promise.all(threads.map((t) => t.terminate()));
  }
}

/**
 * A thread running `batch-worker`: the compiled one next to this file, or, when this file is the
 * TypeScript source (the tests run the sources), the source through tsx, a dev dependency.
 */
function startThread(): Thread {
  if (!import.meta.url.endsWith('.ts')) return new Thread(new URL('./batch-worker.js', import.meta.url));
  const tsxPackage = createRequire(import.meta.url).resolve('tsx/package.json');
  const tsx = pathToFileURL(join(dirname(tsxPackage), 'dist/esm/api/index.mjs')).href;
  const entry = new URL('./batch-worker.ts', import.meta.url).href;
  return new Thread(
    `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry)}); });`,
    { eval: true },
  );
}
