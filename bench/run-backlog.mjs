#!/usr/bin/env node
/**
 * Does `mlos run` keep its pace when the backlog is deep? For each backlog size, a fresh embedded
 * runtime (views off) gets that many no-op needs at once (the scripted `noop` model) and runs them
 * all; tasks/s and this process's CPU ms per task are measured after a warm-up of 200 tasks. The
 * baseline is the smallest backlog, measured in the same run: `deepToShallow` near 1 means a
 * tick, a boot and a claim cost the same with thousands of needs waiting as with a few hundred.
 * Run: npm run build && node bench/run-backlog.mjs [sizes, comma-separated; default 500,2000,6000]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { benchRuntime, resolvedCount } from './lib/runtime.mjs';

const SIZES = (process.argv[2] ?? '500,2000,6000').split(',').map(Number);
const WARMUP = 200;
const tags = [['kernel'], ['context'], ['cleanup']];

async function backlog(size) {
  const env = await benchRuntime({ concurrency: 8 });
  try {
    const run = async (n, offset) => {
      env.store.transaction(() => {
        for (let i = 0; i < n; i++)
          env.store.needs.create({ title: `noop ${offset + i}`, tags: tags[i % 3] });
      });
      env.runtime.supervisor.kick();
      while (resolvedCount(env.store) < offset + n) await new Promise((r) => setTimeout(r, 20));
    };
    await run(WARMUP, 0);
    const cpu = process.cpuUsage();
    const started = performance.now();
    await run(size, WARMUP);
    const seconds = (performance.now() - started) / 1000;
    const { user, system } = process.cpuUsage(cpu);
    return {
      backlog: size,
      seconds: round(seconds),
      tasksPerSec: round(size / seconds),
      cpuMsPerTask: round((user + system) / 1000 / size),
    };
  } finally {
    await env.close();
  }
}

function round(x) {
  return Math.round(x * 100) / 100;
}

const rows = [];
for (const size of SIZES) {
  rows.push(await backlog(size));
  const r = rows.at(-1);
  process.stderr.write(
    `  backlog ${r.backlog}: ${r.tasksPerSec} tasks/s, ${r.cpuMsPerTask} CPU ms per task\n`,
  );
}
const result = {
  bench: 'run-backlog',
  rows,
  deepToShallow: round(rows.at(-1).tasksPerSec / rows[0].tasksPerSec),
};
console.log(JSON.stringify(result));
process.stderr.write(`deepest / shallowest backlog tasks/s: ${result.deepToShallow}\n`);
process.exit(0);
