#!/usr/bin/env node
/**
 * Does `mlos run` stay as fast while its graph grows? Rounds of 1,000 no-op needs (the scripted
 * `noop` model) are added to one embedded runtime, each round run to the end: tasks/s per round
 * with the views kept compiled (as `mlos run` does by default) against the same rounds with views
 * off, measured in the same run. `lastToFirst` near 1 means no slowdown as the graph grows.
 * After each round the heap is measured after a full GC: `heapMbPerRound` that keeps climbing
 * means memory held per task, which a run left alone for hours would pay for.
 * Run: npm run build && node --expose-gc bench/run-growth.mjs [rounds]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { benchRuntime, resolvedCount } from './lib/runtime.mjs';

const ROUNDS = Number(process.argv[2] ?? 4);
const PER_ROUND = 1000;
const tags = [['kernel'], ['context'], ['cleanup']];

async function rounds(compileViews) {
  const env = await benchRuntime({ compileViews });
  const perRound = [];
  const heapMb = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const started = performance.now();
      env.store.transaction(() => {
        for (let i = 0; i < PER_ROUND; i++) {
          env.store.needs.create({ title: `noop ${r}-${i}`, tags: tags[i % tags.length] });
        }
      });
      env.runtime.supervisor.kick();
      while (resolvedCount(env.store) < (r + 1) * PER_ROUND) await new Promise((res) => setTimeout(res, 20));
      perRound.push(Math.round((PER_ROUND / ((performance.now() - started) / 1000)) * 10) / 10);
      heapMb.push(settledHeapMb());
      process.stderr.write(
        `  views ${compileViews ? 'on ' : 'off'} round ${r + 1}: ${perRound.at(-1)} tasks/s, heap ${heapMb.at(-1)} MB\n`,
      );
    }
  } finally {
    await env.close();
  }
  return {
    tasksPerSec: perRound,
    lastToFirst: Math.round((perRound.at(-1) / perRound[0]) * 100) / 100,
    heapMbPerRound: heapMb,
    // Growth from the second round on (the first warms caches and prepared statements up).
    heapKbPerTask:
      ROUNDS > 2
        ? Math.round(((heapMb.at(-1) - heapMb[1]) * 1024 * 10) / ((ROUNDS - 2) * PER_ROUND)) / 10
        : null,
  };
}

/** The heap in use after a full collection (null without --expose-gc). */
function settledHeapMb() {
  if (typeof globalThis.gc !== 'function') return null;
  globalThis.gc();
  globalThis.gc();
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
}

const result = { bench: 'run-growth', rounds: ROUNDS, perRound: PER_ROUND };
result.viewsOff = await rounds(false);
result.viewsOn = await rounds(true);
result.lastRoundViewsOnToOff =
  Math.round((result.viewsOn.tasksPerSec.at(-1) / result.viewsOff.tasksPerSec.at(-1)) * 100) / 100;
console.log(JSON.stringify(result));
process.stderr.write(
  `needs in the graph at each round's end: ${Array.from({ length: ROUNDS }, (_, r) => (r + 1) * PER_ROUND).join(', ')}\n` +
    `views off tasks/s: ${result.viewsOff.tasksPerSec.join(', ')} (last/first ${result.viewsOff.lastToFirst})\n` +
    `views off heap MB: ${result.viewsOff.heapMbPerRound.join(', ')} (${result.viewsOff.heapKbPerTask} KB per task from round 2)\n` +
    `views on  heap MB: ${result.viewsOn.heapMbPerRound.join(', ')} (${result.viewsOn.heapKbPerTask} KB per task from round 2)\n` +
    `views on  tasks/s: ${result.viewsOn.tasksPerSec.join(', ')} (last/first ${result.viewsOn.lastToFirst})\n` +
    `last round, views on / off: ${result.lastRoundViewsOnToOff}\n`,
);
process.exit(0);
