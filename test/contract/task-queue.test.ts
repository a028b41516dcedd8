import { describe, expect, it } from 'vitest';
import type { Timers } from '../../src/scheduler/logger.js';
import { MemoryTaskQueue } from '../../src/scheduler/memory-task-queue.js';
import type { JobEnd } from '../../src/scheduler/task-queue.js';
import { describeTaskQueueContract, makeJob, recordingHandler, waitFor } from './task-queue-suite.js';

// The BullMQ run of the same suite needs Redis: task-queue.redis.test.ts.
describeTaskQueueContract([
  {
    name: 'memory',
    async create(log) {
      const queue = new MemoryTaskQueue({ log });
      return { queue, cleanup: () => queue.close(1000) };
    },
  },
]);

describe('MemoryTaskQueue on virtual time', () => {
  /** Timers that fire only when the test says so, counting what was set. */
  function manualTimers() {
    const pending: (() => void)[] = [];
    let set = 0;
    const timers: Timers = {
      setTimeout(fn) {
        set++;
        pending.push(fn);
        return { cancel: () => pending.splice(pending.indexOf(fn), 1) };
      },
    };
    return {
      timers,
      get set() {
        return set;
      },
      fireAll: () => {
        for (const fn of pending.splice(0)) fn();
      },
    };
  }

  it('runs jobs without setting a timer, and times out a close only through the Timers port', async () => {
    const manual = manualTimers();
    const queue = new MemoryTaskQueue({ timers: manual.timers });
    const seen: string[] = [];
    const consumer = queue.consume(['alpha'], recordingHandler(seen), {
      concurrency: 2,
    });
    const jobs = [makeJob('alpha'), makeJob('alpha'), makeJob('alpha')];
    for (const job of jobs) await queue.enqueue(job);
    await waitFor('every job', () => seen.length === jobs.length);
    await consumer.close(1000); // nothing running: resolves at once
    expect(manual.set).toBe(0);

    let aborted = false;
    const stuck = queue.consume(
      ['alpha'],
      (_job, signal) => {
        signal.addEventListener('abort', () => {
          aborted = true;
        });
        return new Promise<JobEnd>(() => {});
      },
      { concurrency: 1 },
    );
    const job = makeJob('alpha');
    await queue.enqueue(job);
    await waitFor('the stuck handler', async () => (await queue.depth(['alpha']))['alpha'] === 0);
    let closed = false;
    const closing = stuck.close(60_000).then(() => {
      closed = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(closed).toBe(false);
    expect(manual.set).toBe(1);
    manual.fireAll(); // the simulator advances virtual time past the timeout
    await closing;
    expect(aborted).toBe(true);
    expect(await queue.held('alpha')).toEqual(new Set());
    await queue.close();
  });

  it("on Node's timers, starts each handler on a macrotask: a backlog of handlers that never wait holds no timer up", async () => {
    const queue = new MemoryTaskQueue();
    const ended: number[] = [];
    let seenByTimer = -1;
    const consumer = queue.consume(
      ['alpha'],
      async () => {
        ended.push(ended.length);
        return 'done';
      },
      { concurrency: 1 },
    );
    setTimeout(() => {
      seenByTimer = ended.length;
    }, 0);
    for (let i = 0; i < 200; i++) await queue.enqueue(makeJob('alpha'));
    await waitFor('every job', () => ended.length === 200);
    // The timer ran while jobs were left (on microtask starts, the whole backlog ran first).
    expect(seenByTimer).toBeGreaterThanOrEqual(0);
    expect(seenByTimer).toBeLessThan(200);
    await consumer.close(1000);
    await queue.close();
  });

  it('never calls onReconnect', async () => {
    const queue = new MemoryTaskQueue();
    let calls = 0;
    queue.onReconnect(() => calls++);
    await queue.enqueue(makeJob('alpha'));
    await queue.close();
    expect(calls).toBe(0);
  });
});
