import { describe, expect, it } from 'vitest';
import type { Logger } from '../../src/scheduler/logger.js';
import {
  type Consumer,
  type JobEnd,
  type JobHandler,
  type QueuedJob,
  type TaskQueue,
  TaskQueueClosedError,
} from '../../src/scheduler/task-queue.js';

/**
 * The TaskQueue contract, run on every adapter: `task-queue.test.ts` runs it on the memory queue,
 * `task-queue.redis.test.ts` on BullMQ against a real Redis.
 */

export interface LogEntry {
  readonly level: 'info' | 'warn' | 'error' | 'debug';
  readonly obj: Record<string, unknown>;
  readonly msg: string | undefined;
}

export interface TaskQueueHarness {
  readonly queue: TaskQueue;
  /** Closes the queue (if the test did not) and removes whatever it left behind. */
  cleanup(): Promise<void>;
}

export interface TaskQueueFactory {
  readonly name: string;
  /** A fresh, isolated queue that logs through `log`. */
  create(log: Logger): Promise<TaskQueueHarness>;
}

/** A Logger that records every entry. */
export function recordingLogger(): { log: Logger; logged: LogEntry[] } {
  const logged: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg?: string): void => {
      logged.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  return { log: { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') }, logged };
}

/** Polls `check` until it holds; fails with `what` after `timeoutMs`. */
export async function waitFor(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 10_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let counter = 0;
/** A job with a task id shaped like the store's (`task_01J…`, no ':' and not all digits). */
export function makeJob(identity: string, attempt = 1): QueuedJob {
  counter++;
  const suffix = `${process.pid}${String(counter).padStart(6, '0')}`.padStart(23, '0');
  return { taskId: `task_01J${suffix}`, needId: `need_01J${suffix}`, identity, attempt };
}

/** A handler that records each delivered task id and ends its job. */
export function recordingHandler(seen: string[]): JobHandler {
  return async (job) => {
    seen.push(job.taskId);
    return 'done';
  };
}

/** A handler whose jobs run until the test lets them go. */
function gatedHandler() {
  const started: QueuedJob[] = [];
  const gates: (() => void)[] = [];
  let open = false;
  let active = 0;
  let maxActive = 0;
  let done = 0;
  const handler: JobHandler = async (job) => {
    started.push(job);
    active++;
    maxActive = Math.max(maxActive, active);
    if (!open) await new Promise<void>((resolve) => gates.push(resolve));
    active--;
    done++;
    return 'done';
  };
  return {
    handler,
    started,
    get active() {
      return active;
    },
    get maxActive() {
      return maxActive;
    },
    get done() {
      return done;
    },
    /** Lets the oldest running job finish. */
    releaseOne(): void {
      gates.shift()?.();
    },
    /** Lets every running and later job finish. */
    openAll(): void {
      open = true;
      for (const gate of gates.splice(0)) gate();
    },
  };
}

const ids = (jobs: readonly QueuedJob[]) => jobs.map((j) => j.taskId);

export function describeTaskQueueContract(factories: readonly TaskQueueFactory[]): void {
  describe.each(factories)('TaskQueue contract: $name', (factory) => {
    async function withQueue(body: (h: TaskQueueHarness) => Promise<void>): Promise<void> {
      const { log } = recordingLogger();
      const harness = await factory.create(log);
      try {
        await body(harness);
      } finally {
        await harness.cleanup();
      }
    }

    it('delivers an enqueued job, with its data and a live signal, to a consumer of its identity', () =>
      withQueue(async ({ queue }) => {
        const job = makeJob('alpha', 3);
        await queue.enqueue(job);
        const received: { job: QueuedJob; aborted: boolean }[] = [];
        queue.consume(
          ['alpha'],
          async (j, signal) => {
            received.push({ job: j, aborted: signal.aborted });
            return 'done';
          },
          { concurrency: 1 },
        );
        await waitFor('the job', () => received.length === 1);
        expect(received[0]).toEqual({ job, aborted: false });
        await waitFor('the job to end', async () => (await queue.held('alpha')).size === 0);
      }));

    it('delivers a task rung for the first time (fresh), once', () =>
      withQueue(async ({ queue }) => {
        const job = makeJob('alpha');
        await queue.enqueue(job, { fresh: true });
        await queue.enqueue(job, { fresh: true }); // waiting: a no-op
        const seen: string[] = [];
        queue.consume(['alpha'], recordingHandler(seen), { concurrency: 1 });
        await waitFor('the job', () => seen.length === 1);
        await waitFor('the job to end', async () => (await queue.held('alpha')).size === 0);
        expect(seen).toEqual([job.taskId]);
      }));

    it('delivers a task id once while it is held, and again once it has ended', () =>
      withQueue(async ({ queue }) => {
        const job = makeJob('alpha');
        await queue.enqueue(job);
        await queue.enqueue(job); // waiting: a no-op
        const gated = gatedHandler();
        queue.consume(['alpha'], gated.handler, { concurrency: 2 });
        await waitFor('the job to start', () => gated.started.length === 1);
        await queue.enqueue(job); // active: a no-op
        expect(await queue.held('alpha')).toEqual(new Set([job.taskId]));
        gated.releaseOne();
        await waitFor('the job to end', async () => (await queue.held('alpha')).size === 0);

        // A later job of the same identity proves nothing else was queued behind it.
        const sentinel = makeJob('alpha');
        await queue.enqueue(sentinel);
        gated.openAll();
        await waitFor('the sentinel', () => gated.started.length === 2);
        expect(ids(gated.started)).toEqual([job.taskId, sentinel.taskId]);

        await waitFor('the sentinel to end', async () => (await queue.held('alpha')).size === 0);
        await queue.enqueue(job); // ended: it may be added again
        await waitFor('the re-added job', () => gated.started.length === 3);
        expect(gated.started[2]).toEqual(job);
      }));

    it('runs at most `concurrency` handlers at once and uses all of them', () =>
      withQueue(async ({ queue }) => {
        const jobs = Array.from({ length: 8 }, () => makeJob('alpha'));
        for (const job of jobs) await queue.enqueue(job);
        const gated = gatedHandler();
        queue.consume(['alpha'], gated.handler, { concurrency: 3 });
        await waitFor('three running handlers', () => gated.active === 3);
        await sleep(150);
        expect(gated.started).toHaveLength(3);
        gated.openAll();
        await waitFor('every job', () => gated.done === jobs.length);
        expect(gated.maxActive).toBe(3);
        expect(new Set(ids(gated.started))).toEqual(new Set(ids(jobs)));
      }));

    it('serves several identities with one consumer, its concurrency shared across them', () =>
      withQueue(async ({ queue }) => {
        const jobs = ['alpha', 'beta', 'gamma'].flatMap((identity) => [makeJob(identity), makeJob(identity)]);
        for (const job of jobs) await queue.enqueue(job);
        const gated = gatedHandler();
        queue.consume(['alpha', 'beta', 'gamma'], gated.handler, { concurrency: 2 });
        await waitFor('two running handlers', () => gated.active === 2);
        await sleep(150);
        expect(gated.started).toHaveLength(2);
        gated.openAll();
        await waitFor('every job', () => gated.done === jobs.length);
        expect(gated.maxActive).toBe(2);
        expect(new Set(ids(gated.started))).toEqual(new Set(ids(jobs)));
      }));

    it('leaves other identities’ jobs to other consumers', () =>
      withQueue(async ({ queue }) => {
        const alpha = makeJob('alpha');
        const beta = makeJob('beta');
        await queue.enqueue(alpha);
        await queue.enqueue(beta);
        const gated = gatedHandler();
        gated.openAll();
        queue.consume(['alpha'], gated.handler, { concurrency: 4 });
        await waitFor('the alpha job', () => gated.done === 1);
        await sleep(100);
        expect(ids(gated.started)).toEqual([alpha.taskId]);
        expect(await queue.held('beta')).toEqual(new Set([beta.taskId]));
        expect(await queue.depth(['beta'])).toEqual({ beta: 1 });
      }));

    it('reports held task ids and waiting depth, both shrinking as jobs run and end', () =>
      withQueue(async ({ queue }) => {
        const jobs = [makeJob('alpha'), makeJob('alpha'), makeJob('alpha')];
        for (const job of jobs) await queue.enqueue(job);
        expect(await queue.held('alpha')).toEqual(new Set(ids(jobs)));
        expect(await queue.held('nobody')).toEqual(new Set());
        expect(await queue.depth(['alpha', 'nobody'])).toEqual({ alpha: 3, nobody: 0 });

        const gated = gatedHandler();
        queue.consume(['alpha'], gated.handler, { concurrency: 1 });
        await waitFor('the first job to start', () => gated.started.length === 1);
        // The running job is still held, no longer waiting.
        expect(await queue.held('alpha')).toEqual(new Set(ids(jobs)));
        expect(await queue.depth(['alpha'])).toEqual({ alpha: 2 });

        gated.releaseOne();
        await waitFor('the second job to start', () => gated.started.length === 2);
        await waitFor('the first job to end', async () => (await queue.held('alpha')).size === 2);
        expect(await queue.held('alpha')).toEqual(new Set(ids(jobs.slice(1))));
        expect(await queue.depth(['alpha'])).toEqual({ alpha: 1 });

        gated.openAll();
        await waitFor('every job to end', async () => (await queue.held('alpha')).size === 0);
        expect(await queue.depth(['alpha'])).toEqual({ alpha: 0 });
        expect(ids(gated.started)).toEqual(ids(jobs)); // FIFO within an identity
      }));

    it('ends a job whose handler says it was superseded', () =>
      withQueue(async ({ queue }) => {
        const job = makeJob('alpha');
        await queue.enqueue(job);
        const ends: JobEnd[] = ['superseded'];
        const seen: string[] = [];
        queue.consume(
          ['alpha'],
          async (j) => {
            seen.push(j.taskId);
            return ends.shift() ?? 'done';
          },
          { concurrency: 1 },
        );
        await waitFor(
          'the job to end',
          async () => seen.length === 1 && (await queue.held('alpha')).size === 0,
        );
        const sentinel = makeJob('alpha');
        await queue.enqueue(sentinel);
        await waitFor('the sentinel', () => seen.length === 2);
        expect(seen).toEqual([job.taskId, sentinel.taskId]);
        expect(await queue.depth(['alpha'])).toEqual({ alpha: 0 });
      }));

    it('survives a throwing handler, logs it, and never retries the job', async () => {
      const { log, logged } = recordingLogger();
      const harness = await factory.create(log);
      try {
        const { queue } = harness;
        const bad = makeJob('alpha');
        const good = makeJob('alpha');
        await queue.enqueue(bad);
        await queue.enqueue(good);
        const seen: string[] = [];
        queue.consume(
          ['alpha'],
          async (j) => {
            seen.push(j.taskId);
            if (j.taskId === bad.taskId) throw new Error('handler exploded');
            return 'done';
          },
          { concurrency: 1 },
        );
        await waitFor(
          'both jobs to end',
          async () => seen.length === 2 && (await queue.held('alpha')).size === 0,
        );
        await sleep(150);
        expect(seen).toEqual([bad.taskId, good.taskId]);
        const errors = logged.filter((e) => e.level === 'error' && e.obj['taskId'] === bad.taskId);
        expect(errors).toHaveLength(1);
        expect(String(errors[0]?.obj['err'])).toContain('handler exploded');
      } finally {
        await harness.cleanup();
      }
    });

    it('closing a consumer waits for a running handler that finishes in time, without aborting it', () =>
      withQueue(async ({ queue }) => {
        await queue.enqueue(makeJob('alpha'));
        const signals: AbortSignal[] = [];
        let finish = () => {};
        const consumer = queue.consume(
          ['alpha'],
          async (_job, signal) => {
            signals.push(signal);
            await new Promise<void>((resolve) => {
              finish = resolve;
            });
            return 'done';
          },
          { concurrency: 1 },
        );
        await waitFor('the handler', () => signals.length === 1);
        let closed = false;
        const closing = consumer.close(10_000).then(() => {
          closed = true;
        });
        await sleep(100);
        expect(closed).toBe(false);
        finish();
        await closing;
        expect(signals[0]?.aborted).toBe(false);
        await waitFor('the job to end', async () => (await queue.held('alpha')).size === 0);
      }));

    it('closing a consumer leaves the jobs it has not started to the next consumer', () =>
      withQueue(async ({ queue }) => {
        const jobs = ['alpha', 'beta', 'alpha', 'beta'].map((identity) => makeJob(identity));
        for (const job of jobs) await queue.enqueue(job);
        const first = gatedHandler();
        const consumer = queue.consume(['alpha', 'beta'], first.handler, { concurrency: 1 });
        await waitFor('the first handler', () => first.started.length === 1);
        const closing = consumer.close(10_000);
        first.openAll();
        await closing;
        expect(first.started).toHaveLength(1);
        const rest = jobs.filter((j) => j.taskId !== first.started[0]?.taskId);
        await waitFor('the unstarted jobs to wait again', async () => {
          const depth = await queue.depth(['alpha', 'beta']);
          return (depth['alpha'] ?? 0) + (depth['beta'] ?? 0) === rest.length;
        });

        const second = gatedHandler();
        second.openAll();
        queue.consume(['alpha', 'beta'], second.handler, { concurrency: 2 });
        await waitFor('the rest', () => second.done === rest.length);
        expect(new Set(ids(second.started))).toEqual(new Set(ids(rest)));
      }));

    it('closing a consumer resolves after its timeout and aborts a handler that does not finish', () =>
      withQueue(async ({ queue }) => {
        const job = makeJob('alpha');
        await queue.enqueue(job);
        const signals: AbortSignal[] = [];
        const consumer: Consumer = queue.consume(
          ['alpha'],
          (_job, signal) => {
            signals.push(signal);
            return new Promise<JobEnd>(() => {}); // ignores its signal and never ends
          },
          { concurrency: 1 },
        );
        await waitFor('the handler', () => signals.length === 1);
        await consumer.close(200);
        expect(signals[0]?.aborted).toBe(true);
        await consumer.close(200); // idempotent
        // The abandoned job is no longer held: reconciliation may enqueue its task again.
        await waitFor('the abandoned job to end', async () => !(await queue.held('alpha')).has(job.taskId));
      }));

    it('closing the queue closes its consumers, and later calls are refused with a clear error', () =>
      withQueue(async ({ queue }) => {
        const gated = gatedHandler();
        queue.consume(['alpha'], gated.handler, { concurrency: 1 });
        await queue.enqueue(makeJob('alpha'));
        await waitFor('the handler', () => gated.started.length === 1);
        const closing = queue.close(5_000);
        gated.openAll();
        await closing;
        await queue.close(); // idempotent
        const late = makeJob('alpha');
        const refused = queue.enqueue(late);
        await expect(refused).rejects.toBeInstanceOf(TaskQueueClosedError);
        await expect(refused).rejects.toThrow(`cannot enqueue task ${late.taskId}: the task queue is closed`);
        expect(() => queue.consume(['alpha'], gated.handler, { concurrency: 1 })).toThrow(
          TaskQueueClosedError,
        );
        expect(gated.started).toHaveLength(1);
      }));

    it('refuses a concurrency that is not a positive integer', () =>
      withQueue(async ({ queue }) => {
        const handler: JobHandler = async () => 'done';
        expect(() => queue.consume(['alpha'], handler, { concurrency: 0 })).toThrow(/positive integer/);
        expect(() => queue.consume(['alpha'], handler, { concurrency: 1.5 })).toThrow(/positive integer/);
      }));
  });
}
