#!/usr/bin/env node
/**
 * Benchmark: no-op jobs through BullmqTaskQueue (enqueue with jobId = task id, consume with
 * concurrency 8) against raw BullMQ Queue/Worker no-op jobs with the same job options, measured
 * in the same run on the same Redis. Each side gets a warm-up, then rounds alternate between the
 * two and the median round counts. Goal: ratio ≥ 0.5, stretch 0.8 (issue 6).
 *
 * Run: npm run build && node bench/queue.mjs [jobs] [rounds]
 * Uses Redis at 127.0.0.1:6379 (MLOS_BENCH_REDIS_URL overrides) under a random key prefix, and
 * deletes it afterwards. Prints one JSON object on stdout and a table on stderr; without Redis,
 * `{"bench":"queue","skipped":"redis unavailable"}` and exit code 0.
 */
import { randomUUID } from 'node:crypto';
import { connect } from 'node:net';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { BullmqTaskQueue } from '../dist/scheduler/bullmq-task-queue.js';

const JOBS = Number(process.argv[2] ?? 2000);
const ROUNDS = Number(process.argv[3] ?? 3);
const CONCURRENCY = 8;
const URL_ = process.env.MLOS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `mlos-bench-${randomUUID().slice(0, 8)}`;
const KEEP = { count: 1000, age: 24 * 3600 };
const { hostname: HOST, port: PORT_TEXT } = new URL(URL_);
const PORT = Number(PORT_TEXT || 6379);

if (!(await redisAnswers())) {
  console.log(JSON.stringify({ bench: 'queue', skipped: 'redis unavailable', url: URL_ }));
  process.exit(0);
}

let seq = 0;
/** Task ids shaped like the store's: `task_01J…`, unique across the run. */
const taskId = () => `task_01J${String(++seq).padStart(23, '0')}`;

/** Our adapter: one consume()r, jobs enqueued as the supervisor's outbox drainer does. */
async function mlosSide(namespace) {
  const queue = new BullmqTaskQueue({ url: URL_, prefix: PREFIX, namespace });
  let handled = 0;
  let wake = () => {};
  queue.consume(
    ['bench'],
    async () => {
      handled++;
      wake();
      return 'done';
    },
    { concurrency: CONCURRENCY },
  );
  return {
    enqueue: (id) =>
      queue.enqueue({ taskId: id, needId: id.replace('task_', 'need_'), identity: 'bench', attempt: 1 }),
    handled: () => handled,
    onHandled: (fn) => {
      wake = fn;
    },
    close: async () => {
      await queue.obliterate().catch(() => {});
      await queue.close(5000);
    },
  };
}

/** The baseline: the same doorbell jobs with BullMQ's own Queue and Worker. */
async function rawSide(namespace) {
  const name = `${namespace}.bench`;
  const connection = { host: HOST, port: PORT, maxRetriesPerRequest: null };
  const queue = new Queue(name, { connection, prefix: PREFIX });
  let handled = 0;
  let wake = () => {};
  const worker = new Worker(
    name,
    async () => {
      handled++;
      wake();
      return 'done';
    },
    { connection, prefix: PREFIX, concurrency: CONCURRENCY },
  );
  worker.on('error', (err) => process.stderr.write(`raw worker error: ${err.message}\n`));
  return {
    enqueue: (id) =>
      queue.add(
        'task',
        { taskId: id, needId: id.replace('task_', 'need_'), identity: 'bench', attempt: 1 },
        { jobId: id, attempts: 1, removeOnComplete: KEEP, removeOnFail: KEEP },
      ),
    handled: () => handled,
    onHandled: (fn) => {
      wake = fn;
    },
    close: async () => {
      await worker.close();
      await queue.obliterate({ force: true }).catch(() => {});
      await queue.close();
    },
  };
}

/** Enqueues `n` jobs at once and waits until all were handled; returns the timings in ms. */
async function round(side, n) {
  const target = side.handled() + n;
  const done = new Promise((resolve) => {
    side.onHandled(() => {
      if (side.handled() >= target) resolve();
    });
  });
  const start = performance.now();
  await Promise.all(Array.from({ length: n }, () => side.enqueue(taskId())));
  const enqueued = performance.now();
  await done;
  const end = performance.now();
  return { enqueueMs: enqueued - start, totalMs: end - start };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

const sides = {
  raw: await rawSide(`raw${randomUUID().slice(0, 8)}`),
  mlos: await mlosSide(`mlos${randomUUID().slice(0, 8)}`),
};
const results = { raw: [], mlos: [] };
try {
  for (const side of Object.values(sides)) await round(side, Math.min(200, JOBS)); // warm-up
  for (let r = 0; r < ROUNDS; r++) {
    for (const name of r % 2 === 0 ? ['raw', 'mlos'] : ['mlos', 'raw']) {
      results[name].push(await round(sides[name], JOBS));
    }
  }
} finally {
  await Promise.all(Object.values(sides).map((side) => side.close()));
  await deletePrefix();
}

const rate = (ms) => Math.round((JOBS / ms) * 1000);
const summary = (name) => ({
  jobsPerSec: rate(median(results[name].map((r) => r.totalMs))),
  enqueuePerSec: rate(median(results[name].map((r) => r.enqueueMs))),
});
const raw = summary('raw');
const mlos = summary('mlos');
const ratio = Math.round((mlos.jobsPerSec / raw.jobsPerSec) * 100) / 100;
const out = {
  bench: 'queue',
  jobs: JOBS,
  rounds: ROUNDS,
  concurrency: CONCURRENCY,
  raw_bullmq_jobs_per_s: raw.jobsPerSec,
  mlos_bullmq_jobs_per_s: mlos.jobsPerSec,
  ratio,
  goal: 0.5,
  stretch: 0.8,
  meets_goal: ratio >= 0.5,
  raw_enqueue_per_s: raw.enqueuePerSec,
  mlos_enqueue_per_s: mlos.enqueuePerSec,
};
console.log(JSON.stringify(out));
const row = (label, s) =>
  `${label.padEnd(26)}${String(s.jobsPerSec).padStart(12)}${String(s.enqueuePerSec).padStart(14)}\n`;
process.stderr.write(
  `\n${JOBS} no-op jobs × ${ROUNDS} rounds (median), concurrency ${CONCURRENCY}, ${URL_}\n` +
    `${'side'.padEnd(26)}${'jobs/s'.padStart(12)}${'enqueue/s'.padStart(14)}\n` +
    row('raw BullMQ Queue/Worker', raw) +
    row('BullmqTaskQueue', mlos) +
    `ratio ${ratio} (goal ≥ 0.5, stretch 0.8)\n`,
);

/** Removes every key under this run's prefix (obliterate leaves none; this is the safety net). */
async function deletePrefix() {
  const client = new Redis({ host: HOST, port: PORT, lazyConnect: true });
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${PREFIX}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await client.del(...keys);
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

function redisAnswers() {
  return new Promise((resolve) => {
    const socket = connect({ host: HOST, port: PORT });
    const done = (ok) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1000, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}
