#!/usr/bin/env node
/**
 * End-to-end benchmark of `mlos run`'s machinery with no-op agents (the scripted `noop` model:
 * one finish call per session). Measured in one run:
 *   - distributed path: needs → graduation → outbox → BullMQ → worker → agent session through
 *     the guard → finish, against raw BullMQ no-op jobs (same Redis, same concurrency): tasks/s
 *     and the ratio (goal ≥ 0.5, stretch 0.8);
 *   - graduation-to-pickup latency on an idle system: a task's creation to its start (p50, p99;
 *     goal p99 < 10 ms), over the pickups after the first; the first after start is shown apart;
 *     beside it, raw BullMQ's own idle pickup (a job's add to its processor's start), measured the
 *     same way, as the floor this machine allows;
 *   - embedded throughput (in-process queue and bus);
 *   - this process's CPU time per task (per job for raw BullMQ): the bench keeps one core busy,
 *     so the ratio is roughly the inverse ratio of these.
 * Run: npm run build && node bench/run-e2e.mjs [tasks]
 * Prints one JSON object on stdout and a table on stderr. Without Redis, the Redis figures are
 * reported as skipped.
 */
import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { redisAnswers } from './lib/processes.mjs';
import { benchRuntime, idleProbe, resolvedCount } from './lib/runtime.mjs';

const TASKS = Number(process.argv[2] ?? 300);
const CONCURRENCY = 8;
/** Idle probes per latency figure: enough that p99 is not simply the slowest probe. */
const PROBES = Number(process.env.MLOS_BENCH_PROBES ?? 200);
const REDIS = process.env.MLOS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

const runtimeFor = (redisUrl) => benchRuntime({ redisUrl, concurrency: CONCURRENCY });

const tags = [['kernel'], ['context'], ['cleanup']];

/** Creates `n` independent needs at once and waits until all are resolved: tasks per second. */
async function throughput(redisUrl, n) {
  const env = await runtimeFor(redisUrl);
  const started = performance.now();
  const cpu = process.cpuUsage();
  env.store.transaction(() => {
    for (let i = 0; i < n; i++) env.store.needs.create({ title: `noop ${i}`, tags: tags[i % 3] });
  });
  env.runtime.supervisor.kick();
  while (resolvedCount(env.store) < n) {
    await new Promise((r) => setTimeout(r, 20));
  }
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = cpuMsSince(cpu);
  await env.close();
  return {
    tasks: n,
    seconds: round(seconds),
    tasksPerSec: round(n / seconds),
    cpuMsPerTask: round(cpuMs / n),
  };
}

/**
 * One need at a time on an idle system (50 ms after the previous one resolved): the task's
 * creation to its start (pickup). The first
 * pickup after start also pays one-time setup (BullMQ loads its scripts and opens the identity's
 * queue on the first enqueue), so it is reported apart as `firstMs` and the percentiles are taken
 * over the pickups after it.
 */
async function latency(redisUrl, samples) {
  const env = await runtimeFor(redisUrl);
  const probe = async (i) => {
    const task = await idleProbe(env, i);
    return task.startedAt - task.createdAt;
  };
  const firstMs = await probe(0);
  const lat = [];
  for (let i = 1; i <= samples; i++) lat.push(await probe(i));
  await env.close();
  return { samples, ...percentiles(lat), firstMs };
}

/**
 * Raw BullMQ's idle pickup, probed like `latency`: 50 ms after the previous job ran, one job is
 * added (with its id, as the supervisor rings a new task) and timed to its processor's start.
 */
async function rawBullmqLatency(samples) {
  const { connection, prefix } = rawConnection();
  const queue = new Queue('raw-latency', { connection, prefix });
  let began;
  let added = 0;
  const worker = new Worker('raw-latency', async () => began(performance.now() - added), {
    connection,
    prefix,
    concurrency: CONCURRENCY,
  });
  await worker.waitUntilReady();
  const probe = async (i) => {
    await new Promise((r) => setTimeout(r, 50));
    const started = new Promise((r) => {
      began = r;
    });
    added = performance.now();
    await queue.add('noop', { i }, { jobId: `probe-${i}`, attempts: 1, removeOnComplete: 1000 });
    return started;
  };
  const firstMs = await probe(0);
  const lat = [];
  for (let i = 1; i <= samples; i++) lat.push(await probe(i));
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { samples, ...percentiles(lat), firstMs: round(firstMs) };
}

function rawConnection() {
  const { hostname, port } = new URL(REDIS);
  return {
    connection: { host: hostname, port: Number(port || 6379), maxRetriesPerRequest: null },
    prefix: `mlos-bench-raw-${randomUUID().slice(0, 8)}`,
  };
}

/** p50, p99 and the slowest of a list of latencies, in ms. */
function percentiles(lat) {
  const sorted = [...lat].sort((a, b) => a - b);
  const q = (p) => round(sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]);
  return { p50Ms: q(0.5), p99Ms: q(0.99), maxMs: round(sorted[sorted.length - 1]) };
}

/** Raw BullMQ: n no-op jobs added in bulk, one worker at the same concurrency. */
async function rawBullmq(n) {
  const { connection, prefix } = rawConnection();
  const queue = new Queue('raw', { connection, prefix });
  let done = 0;
  let finish;
  const all = new Promise((r) => {
    finish = r;
  });
  const worker = new Worker('raw', async () => {}, { connection, prefix, concurrency: CONCURRENCY });
  worker.on('completed', () => {
    if (++done === n) finish();
  });
  const started = performance.now();
  const cpu = process.cpuUsage();
  for (let i = 0; i < n; i++) {
    await queue.add(
      'noop',
      { i },
      { jobId: `raw-${i}`, attempts: 1, removeOnComplete: 1000, removeOnFail: 1000 },
    );
  }
  await all;
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = cpuMsSince(cpu);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  return { jobs: n, seconds: round(seconds), jobsPerSec: round(n / seconds), cpuMsPerJob: round(cpuMs / n) };
}

/**
 * CPU time of this process (all its threads: the checkpointer's, the GC's) since `start`, in ms.
 * Per task it shows what the throughput figures come from: this bench saturates one core.
 */
function cpuMsSince(start) {
  const { user, system } = process.cpuUsage(start);
  return (user + system) / 1000;
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}

const result = { bench: 'run-e2e', tasks: TASKS, concurrency: CONCURRENCY };
result.embedded = await throughput(undefined, TASKS);
result.embeddedLatency = await latency(undefined, PROBES);
if (await redisAnswers(REDIS)) {
  result.raw = await rawBullmq(TASKS);
  result.distributed = await throughput(REDIS, TASKS);
  result.ratio = round(result.distributed.tasksPerSec / result.raw.jobsPerSec);
  result.distributedLatency = await latency(REDIS, PROBES);
  result.rawLatency = await rawBullmqLatency(PROBES);
} else {
  result.skipped = 'redis unavailable: no BullMQ figures';
}
console.log(JSON.stringify(result));
const row = (k, v) => `${k.padEnd(34)} ${v}`;
console.error(
  [
    row('embedded tasks/s', result.embedded.tasksPerSec),
    row('embedded CPU ms per task', result.embedded.cpuMsPerTask),
    row(
      'embedded pickup p50 / p99 (first) ms',
      `${result.embeddedLatency.p50Ms} / ${result.embeddedLatency.p99Ms} (${result.embeddedLatency.firstMs})`,
    ),
    ...(result.raw
      ? [
          row('raw BullMQ no-op jobs/s', result.raw.jobsPerSec),
          row('raw BullMQ CPU ms per job', result.raw.cpuMsPerJob),
          row('mlos via BullMQ tasks/s', result.distributed.tasksPerSec),
          row('mlos via BullMQ CPU ms per task', result.distributed.cpuMsPerTask),
          row('ratio (goal ≥ 0.5)', result.ratio),
          row(
            'BullMQ pickup p50 / p99 (first) ms',
            `${result.distributedLatency.p50Ms} / ${result.distributedLatency.p99Ms} (${result.distributedLatency.firstMs})`,
          ),
          row(
            'raw BullMQ pickup p50 / p99 (first) ms',
            `${result.rawLatency.p50Ms} / ${result.rawLatency.p99Ms} (${result.rawLatency.firstMs})`,
          ),
        ]
      : [row('redis', 'skipped')]),
  ].join('\n'),
);
process.exit(0);
