#!/usr/bin/env node
/**
 * Where an idle pickup's time goes through BullMQ: `mlos run` (embedded workers on Redis, no-op
 * agents) gets one need at a time, as run-e2e's latency probe does, and each pickup is split into
 *   - toAdd: the task's creation (graduation's commit) to the start of its BullMQ add (the outbox
 *     drain);
 *   - add: the add's Redis round trip;
 *   - toPick: the add's reply to the worker's claim starting (BullMQ wakes the worker, moves the
 *     job to active, calls the processor);
 *   - claim: the claim's commit, to the task's start;
 *   - total: the task's creation to its start (run-e2e's pickup latency).
 * Each as p50/p90/p99/max in ms (whole ms: the store's clock), over the probes after the first.
 * The segments are timed by wrapping BullMQ's Queue.add and the embedded connector's startTask.
 * The baseline, measured in the same run the same way: raw BullMQ (one queue, one worker at the
 * same concurrency, a no-op processor), its add's round trip and its reply to the processor's
 * start: the floor of `add` and `toPick` on this machine.
 * Run: npm run build && node bench/pickup-anatomy.mjs [probes]
 * Prints one JSON object on stdout. Needs Redis (MLOS_BENCH_REDIS_URL, default 127.0.0.1:6379).
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { EmbeddedConnector } from '../dist/scheduler/connector.js';
import { redisAnswers } from './lib/processes.mjs';
import { benchRuntime, idleProbe } from './lib/runtime.mjs';

const PROBES = Number(process.argv[2] ?? 200);
const REDIS = process.env.MLOS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const SEGMENTS = ['toAdd', 'add', 'toPick', 'claim', 'total'];

if (!(await redisAnswers(REDIS))) {
  console.log(JSON.stringify({ bench: 'pickup-anatomy', skipped: `no Redis at ${REDIS}` }));
  process.exit(0);
}

/** Per task id: when its add started and returned, and when its claim started. */
const marks = new Map();
const mark = (taskId) => {
  let m = marks.get(taskId);
  if (!m) {
    m = {};
    marks.set(taskId, m);
  }
  return m;
};
const add = Queue.prototype.add;
Queue.prototype.add = async function (name, data, opts) {
  const m = mark(opts?.jobId);
  m.addStart = Date.now();
  const job = await add.call(this, name, data, opts);
  m.added = Date.now();
  return job;
};
const startTask = EmbeddedConnector.prototype.startTask;
EmbeddedConnector.prototype.startTask = function (taskId, agentId) {
  mark(taskId).pick = Date.now();
  return startTask.call(this, taskId, agentId);
};

const env = await benchRuntime({ redisUrl: REDIS, concurrency: 8 });
const rows = [];
try {
  for (let i = 0; i <= PROBES; i++) {
    const task = await idleProbe(env, i);
    const m = marks.get(task.id) ?? {};
    rows.push({
      toAdd: m.addStart - task.createdAt,
      add: m.added - m.addStart,
      toPick: m.pick - m.added,
      claim: task.startedAt - m.pick,
      total: task.startedAt - task.createdAt,
    });
  }
} finally {
  await env.close();
}

/** Raw BullMQ probed the same way: an add's round trip and its reply to the processor's start. */
async function rawBullmq() {
  const { hostname, port } = new URL(REDIS);
  const connection = { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null };
  const prefix = `mlos-bench-pickup-${randomUUID().slice(0, 8)}`;
  const queue = new Queue('raw', { connection, prefix });
  let began;
  const worker = new Worker('raw', async () => began(Date.now()), { connection, prefix, concurrency: 8 });
  await worker.waitUntilReady();
  const raw = [];
  try {
    for (let i = 0; i <= PROBES; i++) {
      await new Promise((r) => setTimeout(r, 50));
      const picked = new Promise((r) => {
        began = r;
      });
      const addStart = Date.now();
      await add.call(queue, 'noop', { i }, { jobId: `probe-${i}`, attempts: 1, removeOnComplete: 1000 });
      const added = Date.now();
      raw.push({ add: added - addStart, toPick: (await picked) - added });
    }
  } finally {
    await worker.close();
    await queue.obliterate({ force: true });
    await queue.close();
  }
  return raw.slice(1);
}

const quantiles = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const q = (p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
  return { p50: q(0.5), p90: q(0.9), p99: q(0.99), max: sorted[sorted.length - 1] };
};
const over = (list, names) => Object.fromEntries(names.map((s) => [s, quantiles(list.map((r) => r[s]))]));
const probes = rows.slice(1);
const raw = await rawBullmq();
console.log(
  JSON.stringify({
    bench: 'pickup-anatomy',
    probes: probes.length,
    unit: 'ms',
    segments: over(probes, SEGMENTS),
    rawBullmq: over(raw, ['add', 'toPick']),
  }),
);
