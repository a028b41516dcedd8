#!/usr/bin/env node
/**
 * Benchmark: the cost of a budget reservation as the day fills up. Every model call reserves
 * against its task's, its identity's daily and the run's budget; the day's and the run's totals
 * are running sums kept by triggers, so a reservation should cost the same with 50,000 entries
 * that day as with 1,000. Baseline, measured in the same run on the same database: the query a
 * check would need without the totals (summing the day's entries of the identity).
 *
 * Run: npm run build && node bench/budget-checks.mjs
 * Prints one JSON object on stdout and a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Store, utcDay } from '../dist/store/index.js';

const SIZES = [1_000, 10_000, 50_000];
const SAMPLES = 200;
const IDENTITY = 'janitor';

const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-budget-'));
try {
  const store = Store.open(join(dir, 'mlos.db'), { actor: 'bench' });
  store.identities.pin(IDENTITY, 'a'.repeat(64), 'janitor');
  const runId = store.budgets.startRun();
  const limits = { task: null, day: 1e15, run: null };
  // A task makes a few calls: a fresh task every ten reservations, as a run of many tasks would.
  let task;
  let made = 0;
  const reserve = () => {
    if (made % 10 === 0) {
      const need = store.needs.create({ title: `spend ${made}` });
      task = store.tasks.start(store.tasks.create(need.id, IDENTITY).id, {
        leaseUntil: Date.now() + 3_600_000,
      });
    }
    made++;
    return store.budgets.reserve(task.id, 10, limits, runId);
  };
  const day = utcDay(store.clock.now());
  const sql = `SELECT coalesce(sum(CASE state WHEN 'reserved' THEN reserved_tokens WHEN 'settled' THEN used_tokens ELSE 0 END), 0)
    FROM budget_entries WHERE day = ? AND identity = ?`;
  // The baseline reads through a second connection to the same file (WAL: it sees each commit).
  const raw = new Database(join(dir, 'mlos.db'), { readonly: true });
  const sum = raw.prepare(sql).pluck();
  const rows = [];
  for (const size of SIZES) {
    store.transaction(() => {
      while (made < size - SAMPLES) reserve();
    });
    // The reservation itself (one commit, its checks and its entry) and the check alone.
    let t = performance.now();
    for (let i = 0; i < SAMPLES; i++) reserve();
    const reserveUs = ((performance.now() - t) * 1000) / SAMPLES;
    t = performance.now();
    for (let i = 0; i < SAMPLES; i++) store.budgets.used('day', day, IDENTITY);
    const checkUs = ((performance.now() - t) * 1000) / SAMPLES;
    t = performance.now();
    for (let i = 0; i < SAMPLES; i++) sum.get(day, IDENTITY);
    const baselineSumUs = ((performance.now() - t) * 1000) / SAMPLES;
    rows.push({
      entries: size,
      reserveUs: round(reserveUs),
      checkUs: round(checkUs),
      baselineSumUs: round(baselineSumUs),
    });
  }
  raw.close();
  store.close();
  const result = { bench: 'budget-checks', samples: SAMPLES, rows };
  console.log(JSON.stringify(result));
  console.error(
    [
      'entries today   reserve µs   day check µs   baseline: sum the day µs',
      ...rows.map(
        (r) =>
          `${String(r.entries).padStart(13)}   ${String(r.reserveUs).padStart(10)}   ${String(r.checkUs).padStart(12)}   ${String(r.baselineSumUs).padStart(24)}`,
      ),
    ].join('\n'),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}

function round(x) {
  return Math.round(x * 10) / 10;
}
