#!/usr/bin/env node
/**
 * Where a no-op task's time goes in SQLite: every statement `mlos run` executes for a batch of
 * no-op tasks (embedded, views off, the scripted `noop` model) is timed, and the totals are given
 * per task, most expensive first, with the commits per task. The baseline, measured in the same
 * run on the same kind of file and pragmas, is raw better-sqlite3: one single-row INSERT in its own
 * BEGIN IMMEDIATE transaction. `sqlPerTaskInRawCommits` says how many such commits a task's SQL
 * costs. (The timing wraps each call, so the figures run a little high; compare runs of this
 * bench with each other, not with run-e2e.)
 * Run: npm run build && node bench/task-anatomy.mjs [tasks]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { benchRuntime, resolvedCount } from './lib/runtime.mjs';

const TASKS = Number(process.argv[2] ?? 1000);
const WARMUP = 200;
const TOP = Number(process.env.TOP ?? 15);
const tags = [['kernel'], ['context'], ['cleanup']];

/** Times every run/get/all/iterate of every statement while `on`. */
function instrument() {
  const probe = new Database(':memory:');
  const Statement = probe.prepare('SELECT 1').constructor;
  probe.close();
  const stats = new Map();
  const state = { on: false };
  for (const method of ['run', 'get', 'all', 'iterate']) {
    const original = Statement.prototype[method];
    Statement.prototype[method] = function (...args) {
      if (!state.on) return original.apply(this, args);
      const started = process.hrtime.bigint();
      try {
        return original.apply(this, args);
      } finally {
        const us = Number(process.hrtime.bigint() - started) / 1000;
        const sql = this.source.replace(/\s+/g, ' ').trim();
        const s = stats.get(sql) ?? { calls: 0, us: 0 };
        s.calls++;
        s.us += us;
        stats.set(sql, s);
      }
    };
  }
  return { stats, state };
}

/** Raw better-sqlite3: µs per single-row INSERT committed on its own. */
function rawCommitUs() {
  const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-anatomy-'));
  try {
    const db = new Database(join(dir, 'raw.db'));
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.exec('CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO t (v) VALUES (?)');
    const one = db.transaction((v) => insert.run(v));
    for (let i = 0; i < 1000; i++) one.immediate(`warm ${i}`);
    const n = 5000;
    const started = performance.now();
    for (let i = 0; i < n; i++) one.immediate(`row ${i}`);
    const us = ((performance.now() - started) * 1000) / n;
    db.close();
    return us;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const { stats, state } = instrument();
const env = await benchRuntime({ concurrency: 8 });
try {
  const run = async (n, offset) => {
    env.store.transaction(() => {
      for (let i = 0; i < n; i++) env.store.needs.create({ title: `noop ${offset + i}`, tags: tags[i % 3] });
    });
    env.runtime.supervisor.kick();
    while (resolvedCount(env.store) < offset + n) await new Promise((r) => setTimeout(r, 20));
  };
  await run(WARMUP, 0);
  state.on = true;
  await run(TASKS, WARMUP);
  state.on = false;
} finally {
  await env.close();
}

let totalUs = 0;
let calls = 0;
for (const s of stats.values()) {
  totalUs += s.us;
  calls += s.calls;
}
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d;
const commit = stats.get('COMMIT') ?? { calls: 0, us: 0 };
const raw = rawCommitUs();
const top = [...stats]
  .sort((a, b) => b[1].us - a[1].us)
  .slice(0, TOP)
  .map(([sql, s]) => ({
    sql: sql.slice(0, 120),
    usPerTask: round(s.us / TASKS),
    callsPerTask: round(s.calls / TASKS, 2),
    usPerCall: round(s.us / s.calls),
  }));
const result = {
  bench: 'task-anatomy',
  tasks: TASKS,
  statementsPerTask: round(calls / TASKS),
  sqlUsPerTask: round(totalUs / TASKS),
  commitsPerTask: round(commit.calls / TASKS, 2),
  rawCommitUs: round(raw),
  sqlPerTaskInRawCommits: round(totalUs / TASKS / raw),
  top,
};
console.log(JSON.stringify(result));
process.stderr.write(
  `${result.statementsPerTask} statements and ${result.commitsPerTask} commits per task, ${result.sqlUsPerTask} µs of SQL ` +
    `(${result.sqlPerTaskInRawCommits} raw single-row commits of ${result.rawCommitUs} µs)\n` +
    top
      .map(
        (t) => `${String(t.usPerTask).padStart(7)} µs/task ${String(t.callsPerTask).padStart(6)}× ${t.sql}`,
      )
      .join('\n') +
    '\n',
);
process.exit(0);
