#!/usr/bin/env node
/**
 * Benchmark: compile PROBLEM.md for 10k open needs (goal: p50 ≤ 100 ms), and the whole default
 * workspace (10k need pages) cold and incremental. Baseline, measured in the same run: a raw
 * better-sqlite3 SELECT of the same rows joined naively into lines.
 *
 * Run: npm run build && node bench/compile-problem.mjs [needs] [runs]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { compileWorkspace, renderProblemFile } from '../dist/kernel/views/index.js';
import { createSeededPrng, ManualClock, Store } from '../dist/store/index.js';

const NEEDS = Number(process.argv[2] ?? 10_000);
const RUNS = Number(process.argv[3] ?? 30);
const GOAL_MS = 100;

const TAGS = [
  'kernel',
  'store',
  'cli',
  'views',
  'mcp',
  'agents',
  'queue',
  'docs',
  'perf',
  'ops',
  'ui',
  'sec',
];
const SCOPES = ['Sprint_A', 'Sprint_B', 'Sprint_C', 'backlog', 'infra', 'research', 'default', 'ops'];

const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-compile-'));
const dbPath = join(dir, 'bench.db');
try {
  const clock = new ManualClock();
  const prng = createSeededPrng(42);
  const rand = (n) => prng.nextUint32() % n;
  const store = Store.open(dbPath, { clock, prng: createSeededPrng(7) });
  store.identities.pin('janitor', createHash('sha256').update('janitor').digest('hex'), 'janitor');

  const seedStart = performance.now();
  const ids = [];
  for (let batch = 0; batch < NEEDS; batch += 1000) {
    store.transaction(() => {
      for (let i = batch; i < Math.min(NEEDS, batch + 1000); i++) {
        clock.advance(1 + rand(1000));
        const tags = [...new Set([TAGS[rand(TAGS.length)], TAGS[rand(TAGS.length)]])].slice(0, 1 + rand(2));
        const dependsOn =
          i > 20 && rand(10) < 3 ? [...new Set([ids[rand(i)], ids[rand(i)]])].slice(0, 1 + rand(2)) : [];
        const need = store.needs.create({
          title: `Need ${i}: make "${TAGS[rand(TAGS.length)]}" [faster] | safer`,
          body: `Body of need ${i}. `.repeat(1 + rand(5)),
          tags,
          priority: rand(5),
          scope: SCOPES[rand(SCOPES.length)],
          dependsOn,
        });
        ids.push(need.id);
        if (rand(50) === 0)
          store.needs.setFlags(need.id, { unmetSince: clock.now(), orphaned: rand(2) === 0 });
        if (rand(50) === 0) {
          const task = store.tasks.create(need.id, 'janitor');
          store.tasks.start(task.id, { leaseUntil: clock.now() + 600_000 });
        }
      }
    });
  }
  const seedMs = performance.now() - seedStart;
  const workspace = store.workspaces.require('default');

  const measure = (fn, runs = RUNS) => {
    for (let i = 0; i < 3; i++) fn();
    const times = [];
    let result;
    for (let i = 0; i < runs; i++) {
      const t = performance.now();
      result = fn();
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const at = (q) => times[Math.min(times.length - 1, Math.floor(q * times.length))];
    return {
      p50: round(at(0.5)),
      p95: round(at(0.95)),
      min: round(times[0]),
      max: round(times.at(-1)),
      result,
    };
  };

  const problem = measure(() => renderProblemFile(store, workspace));

  const raw = new Database(dbPath, { readonly: true });
  const select = raw.prepare(
    "SELECT id, title, status, priority, scope FROM needs WHERE status IN ('open', 'active') ORDER BY priority, created_at, id",
  );
  const baseline = measure(() =>
    select
      .all()
      .map((r) => `- P${r.priority} [${r.title}](needs/${r.id}.md) ${r.status} ${r.scope}`)
      .join('\n'),
  );
  raw.close();

  const out = join(dir, 'views');
  const t0 = performance.now();
  const cold = compileWorkspace(store, workspace, { outDir: out });
  const coldMs = performance.now() - t0;
  const incremental = measure(() => compileWorkspace(store, workspace, { outDir: out }), 5);
  const check = measure(() => compileWorkspace(store, workspace, { outDir: out, check: true }), 3);
  store.close();

  const result = {
    bench: 'compile-problem',
    needs: NEEDS,
    openOrActive: problem.result.content.split('\n').filter((l) => l.startsWith('- **P')).length,
    runs: RUNS,
    seedMs: round(seedMs),
    problemMs: { p50: problem.p50, p95: problem.p95, min: problem.min, max: problem.max },
    problemBytes: Buffer.byteLength(problem.result.content),
    baselineMs: { p50: baseline.p50, p95: baseline.p95, min: baseline.min, max: baseline.max },
    ratioP50: round(problem.p50 / baseline.p50),
    goalMs: GOAL_MS,
    withinGoal: problem.p50 <= GOAL_MS,
    workspace: {
      files: cold.files,
      coldCompileMs: round(coldMs),
      coldWritten: cold.written.length,
      incrementalMs: { p50: incremental.p50, p95: incremental.p95 },
      incrementalWritten: incremental.result.written.length,
      checkMs: { p50: check.p50, p95: check.p95 },
    },
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  const rows = [
    ['measure', 'p50 ms', 'p95 ms'],
    ['PROBLEM.md (mlos)', problem.p50, problem.p95],
    ['baseline: raw SELECT + join', baseline.p50, baseline.p95],
    ['ratio mlos / baseline (p50)', result.ratioP50, ''],
    [`workspace cold (${cold.files} files)`, result.workspace.coldCompileMs, ''],
    ['workspace incremental (no change)', incremental.p50, incremental.p95],
    ['workspace --check', check.p50, check.p95],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  for (const r of rows) process.stderr.write(`${r.map((v, c) => String(v).padEnd(widths[c])).join('  ')}\n`);
  process.stderr.write(
    `PROBLEM.md for ${result.openOrActive} open/active needs: p50 ${problem.p50} ms (goal ≤ ${GOAL_MS} ms: ${result.withinGoal ? 'met' : 'MISSED'})\n`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function round(ms) {
  return Math.round(ms * 100) / 100;
}
