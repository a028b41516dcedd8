#!/usr/bin/env node
/**
 * Does `mlos run` stay as fast while its graph grows? Rounds of 1,000 no-op needs (the scripted
 * `noop` model) are added to one embedded runtime, each round run to the end: tasks/s per round
 * with the views kept compiled in their thread (as `mlos run` does by default), against the same
 * rounds with views off and with views compiled in the supervisor's thread, measured in the same
 * run. `lastToFirst` near 1 means no slowdown as the graph grows.
 * After each round the heap is measured after a full GC: `heapMbPerRound` that keeps climbing
 * means memory held per task, which a run left alone for hours would pay for. `loopDelayMaxMs`:
 * the longest the event loop (supervisor, guard, workers) was held up in each round, by a compile
 * of the views among others.
 * Run: npm run build && node --expose-gc bench/run-growth.mjs [rounds]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { benchRuntime, resolvedCount } from './lib/runtime.mjs';

const ROUNDS = Number(process.argv[2] ?? 4);
const PER_ROUND = 1000;
const tags = [['kernel'], ['context'], ['cleanup']];

async function rounds(label, compileViews, viewThread = true) {
  const env = await benchRuntime({ compileViews, viewThread });
  const perRound = [];
  const heapMb = [];
  const loopDelayMaxMs = [];
  try {
    for (let r = 0; r < ROUNDS; r++) {
      const started = performance.now();
      env.store.transaction(() => {
        for (let i = 0; i < PER_ROUND; i++) {
          env.store.needs.create({ title: `noop ${r}-${i}`, tags: tags[i % tags.length] });
        }
      });
      // From here: the bench's own transaction above holds the loop up too.
      const delay = loopDelay();
      env.runtime.supervisor.kick();
      while (resolvedCount(env.store) < (r + 1) * PER_ROUND) await new Promise((res) => setTimeout(res, 20));
      perRound.push(Math.round((PER_ROUND / ((performance.now() - started) / 1000)) * 10) / 10);
      loopDelayMaxMs.push(delay.stop());
      heapMb.push(settledHeapMb());
      process.stderr.write(
        `  ${label} round ${r + 1}: ${perRound.at(-1)} tasks/s, heap ${heapMb.at(-1)} MB, loop held up ≤ ${loopDelayMaxMs.at(-1)} ms\n`,
      );
    }
  } finally {
    await env.close();
  }
  return {
    tasksPerSec: perRound,
    lastToFirst: Math.round((perRound.at(-1) / perRound[0]) * 100) / 100,
    heapMbPerRound: heapMb,
    loopDelayMaxMs,
    // Growth from the second round on (the first warms caches and prepared statements up).
    heapKbPerTask:
      ROUNDS > 2
        ? Math.round(((heapMb.at(-1) - heapMb[1]) * 1024 * 10) / ((ROUNDS - 2) * PER_ROUND)) / 10
        : null,
  };
}

/**
 * The longest a 5 ms timer fired late, in ms, until `stop()`: how long the event loop was held up
 * at most (perf_hooks' monitorEventLoopDelay recorded no samples in this process).
 */
function loopDelay() {
  let max = 0;
  let expected = performance.now() + 5;
  const timer = setInterval(() => {
    const now = performance.now();
    max = Math.max(max, now - expected);
    expected = now + 5;
  }, 5);
  return {
    stop() {
      clearInterval(timer);
      return Math.round(max * 10) / 10;
    },
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
const modes = [
  ['viewsOff', 'views off', false],
  ['viewsInline', "views in the supervisor's thread", true, false],
  ['viewsOn', 'views in their thread (mlos run)', true, true],
];
for (const [key, label, compileViews, viewThread] of modes)
  result[key] = await rounds(label, compileViews, viewThread);
const lastRatio = (a, b) => Math.round((a.tasksPerSec.at(-1) / b.tasksPerSec.at(-1)) * 100) / 100;
result.lastRoundViewsOnToOff = lastRatio(result.viewsOn, result.viewsOff);
result.lastRoundViewsInlineToOff = lastRatio(result.viewsInline, result.viewsOff);
console.log(JSON.stringify(result));
process.stderr.write(
  `needs in the graph at each round's end: ${Array.from({ length: ROUNDS }, (_, r) => (r + 1) * PER_ROUND).join(', ')}\n`,
);
for (const [key, label] of modes) {
  const m = result[key];
  process.stderr.write(
    `${label}:\n  tasks/s ${m.tasksPerSec.join(', ')} (last/first ${m.lastToFirst})\n` +
      `  heap MB ${m.heapMbPerRound.join(', ')} (${m.heapKbPerTask} KB per task from round 2)\n` +
      `  loop held up at most (ms) ${m.loopDelayMaxMs.join(', ')}\n`,
  );
}
process.stderr.write(
  `last round against views off: in their thread ${result.lastRoundViewsOnToOff}, in the supervisor's ${result.lastRoundViewsInlineToOff}\n`,
);
process.exit(0);
