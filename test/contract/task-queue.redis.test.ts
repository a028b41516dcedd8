import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { BullmqTaskQueue, type BullmqTaskQueueOptions } from '../../src/scheduler/bullmq-task-queue.js';
import type { JobEnd, QueuedJob } from '../../src/scheduler/task-queue.js';
import { probeRedis, redisUrl } from '../helpers/redis.js';
import {
  describeTaskQueueContract,
  makeJob,
  recordingHandler,
  recordingLogger,
  sleep,
  waitFor,
} from './task-queue-suite.js';

const PREFIX = 'mlos-test';

/** A namespace no other test (or test file) uses. */
function freshNamespace(): string {
  return `t${randomUUID().replaceAll('-', '').slice(0, 16)}`;
}

/** Deletes whatever a namespace left in Redis, through a fresh instance (the tested one may be closed). */
async function obliterate(options: BullmqTaskQueueOptions): Promise<void> {
  const cleaner = new BullmqTaskQueue(options);
  try {
    await cleaner.obliterate();
  } finally {
    await cleaner.close(1000);
  }
}

describe.skipIf(!inject('redisAvailable'))('BullmqTaskQueue on a real Redis', () => {
  describeTaskQueueContract([
    {
      name: 'bullmq',
      async create(log) {
        const options = { url: redisUrl(), prefix: PREFIX, namespace: freshNamespace() };
        const queue = new BullmqTaskQueue({ ...options, log });
        return {
          queue,
          async cleanup() {
            await queue.close(1000);
            await obliterate(options);
          },
        };
      },
    },
  ]);

  describe('BullMQ specifics', () => {
    const cleanups: (() => Promise<void>)[] = [];
    afterEach(async () => {
      for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
    });

    function open(namespace = freshNamespace()): { queue: BullmqTaskQueue; options: BullmqTaskQueueOptions } {
      const options = { url: redisUrl(), prefix: PREFIX, namespace };
      const queue = new BullmqTaskQueue(options);
      cleanups.push(async () => {
        await queue.close(1000);
        await obliterate(options);
      });
      return { queue, options };
    }

    it('shares held jobs between instances on one namespace and isolates namespaces', async () => {
      const { queue: first, options } = open();
      const { queue: second } = open(options.namespace);
      const { queue: other } = open();
      const job = makeJob('alpha');
      await first.enqueue(job);
      await second.enqueue(job); // another process enqueueing the same task: a no-op
      expect(await second.held('alpha')).toEqual(new Set([job.taskId]));
      expect(await second.depth(['alpha'])).toEqual({ alpha: 1 });
      expect(await other.held('alpha')).toEqual(new Set());

      const seen: string[] = [];
      other.consume(['alpha'], recordingHandler(seen), { concurrency: 1 });
      second.consume(['alpha'], recordingHandler(seen), { concurrency: 1 });
      await waitFor('the job', () => seen.length === 1);
      await sleep(100);
      expect(seen).toEqual([job.taskId]);
    });

    it('a fresh enqueue skips the lookup of an ended job: kept, it makes the add a no-op, which a plain enqueue repairs', async () => {
      const { queue } = open();
      const seen: string[] = [];
      queue.consume(['alpha'], recordingHandler(seen), { concurrency: 1 });
      const job = makeJob('alpha');
      await queue.enqueue(job, { fresh: true });
      await waitFor('the job', () => seen.length === 1);
      await waitFor('the job to end', async () => (await queue.held('alpha')).size === 0);
      // The ended job is kept under its id (for inspection): a fresh add of the same id is
      // ignored, as after a crash between an add and the outbox delete…
      await queue.enqueue(job, { fresh: true });
      await sleep(200);
      expect(seen).toEqual([job.taskId]);
      expect(await queue.held('alpha')).toEqual(new Set());
      // …and reconciliation, seeing the task missing from the held jobs, rings it the plain way.
      await queue.enqueue(job);
      await waitFor('the job again', () => seen.length === 2);
    });

    it('obliterate removes every queue of its namespace and nothing else', async () => {
      const { queue, options } = open();
      const { queue: other } = open();
      await queue.enqueue(makeJob('alpha'));
      await queue.enqueue(makeJob('beta'));
      const kept = makeJob('alpha');
      await other.enqueue(kept);
      // A fresh instance never touched these identities: it finds them in Redis.
      await obliterate(options);
      expect(await queue.held('alpha')).toEqual(new Set());
      expect(await queue.depth(['alpha', 'beta'])).toEqual({ alpha: 0, beta: 0 });
      expect(await other.held('alpha')).toEqual(new Set([kept.taskId]));
    });

    it('fails calls with a clear error, instead of hanging, while Redis cannot be reached', async () => {
      const port = await freePort(); // nothing listens there
      const queue = new BullmqTaskQueue({
        url: `redis://:secret@127.0.0.1:${port}`,
        prefix: PREFIX,
        namespace: freshNamespace(),
        waitForRedisMs: 200,
      });
      try {
        const job = makeJob('alpha');
        const refused = queue.enqueue(job);
        await expect(refused).rejects.toMatchObject({ code: 'redis_unavailable' });
        await expect(refused).rejects.toThrow(
          `cannot enqueue task ${job.taskId}: Redis at redis://:***@127.0.0.1:${port} did not answer within 200 ms`,
        );
        await expect(queue.held('alpha')).rejects.toMatchObject({ code: 'redis_unavailable' });
        await expect(queue.depth(['alpha'])).rejects.toMatchObject({ code: 'redis_unavailable' });
      } finally {
        await queue.close(200);
      }
    });

    it('refuses names BullMQ cannot store, saying which and why', () => {
      expect(() => new BullmqTaskQueue({ url: redisUrl(), namespace: 'a:b' })).toThrow(
        /namespace "a:b" must match/,
      );
      expect(() => new BullmqTaskQueue({})).toThrow(/needs a Redis `url`/);
      const { queue } = open();
      const digits: QueuedJob = { ...makeJob('alpha'), taskId: '12345' };
      return Promise.all([
        expect(queue.enqueue(digits)).rejects.toThrow(/task id "12345" cannot be a BullMQ job id/),
        expect(queue.enqueue({ ...makeJob('al:pha') })).rejects.toThrow(/identity "al:pha"/),
      ]);
    });
  });

  describe('a Redis server that goes away and comes back', () => {
    let server: ChildProcess | null = null;
    afterEach(async () => {
      await stopRedis(server);
      server = null;
    });

    it('keeps consuming, calls onReconnect once, and delivers a job enqueued after the restart', async () => {
      const port = await freePort();
      const url = `redis://127.0.0.1:${port}`;
      server = await startRedis(port);
      const { log, logged } = recordingLogger();
      const queue = new BullmqTaskQueue({
        url,
        prefix: PREFIX,
        namespace: freshNamespace(),
        log,
        waitForRedisMs: 500,
      });
      try {
        let reconnects = 0;
        queue.onReconnect(() => reconnects++);
        const seen: string[] = [];
        queue.consume(['alpha'], recordingHandler(seen), { concurrency: 2 });

        const before = makeJob('alpha');
        await queue.enqueue(before);
        await waitFor('the job before the outage', () => seen.length === 1);

        await stopRedis(server);
        server = null;
        // During the outage an enqueue fails (the outbox keeps the task) instead of hanging.
        await expect(queue.enqueue(makeJob('alpha'))).rejects.toThrow();
        expect(reconnects).toBe(0);
        expect(logged.some((e) => e.level === 'warn' && /lost the connection/.test(e.msg ?? ''))).toBe(true);

        server = await startRedis(port);
        await waitFor('onReconnect', () => reconnects === 1);
        const after = makeJob('alpha');
        await queue.enqueue(after);
        await waitFor('the job after the restart', () => seen.includes(after.taskId));
        await sleep(300);
        expect(reconnects).toBe(1);
        expect(seen).toEqual([before.taskId, after.taskId]);
      } finally {
        await queue.close(1000);
      }
    });

    it('closes within its bounds while Redis is away, aborting a running handler', async () => {
      const port = await freePort();
      server = await startRedis(port);
      const queue = new BullmqTaskQueue({
        url: `redis://127.0.0.1:${port}`,
        prefix: PREFIX,
        namespace: freshNamespace(),
      });
      const signals: AbortSignal[] = [];
      queue.consume(['alpha', 'beta'], recordingHandler([]), { concurrency: 1 });
      queue.consume(
        ['gamma'],
        (_job, signal) => {
          signals.push(signal);
          return new Promise<JobEnd>(() => {});
        },
        { concurrency: 1 },
      );
      await queue.enqueue(makeJob('gamma'));
      await waitFor('the running handler', () => signals.length === 1);
      await stopRedis(server);
      server = null;
      // BullMQ alone would wait forever here (for an 'end' ioredis never emits while reconnecting).
      await queue.close(200);
      expect(signals[0]?.aborted).toBe(true);
    });
  });
});

async function freePort(): Promise<number> {
  const probe = createServer();
  probe.listen(0, '127.0.0.1');
  await once(probe, 'listening');
  const address = probe.address();
  probe.close();
  await once(probe, 'close');
  if (!address || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

async function startRedis(port: number): Promise<ChildProcess> {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    { stdio: 'ignore' },
  );
  await waitFor(`redis-server on port ${port}`, () => probeRedis(`redis://127.0.0.1:${port}`), 5000);
  return child;
}

async function stopRedis(child: ChildProcess | null): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}
