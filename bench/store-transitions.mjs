#!/usr/bin/env node
/**
 * Benchmark: need-transition transactions per second through the store. Each op is one store
 * call (resolve, then reopen, alternately) = one BEGIN IMMEDIATE transaction that checks the
 * transition, revokes the lease (bumping the fencing token), updates the need and appends its
 * hash-chained event. Baseline, measured in the same run on the same kind of file with the same
 * pragmas (WAL, synchronous NORMAL): raw better-sqlite3 single-row INSERTs, each in its own
 * BEGIN IMMEDIATE transaction.
 *
 * Run: npm run build && node bench/store-transitions.mjs [seconds-per-measure]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSeededPrng, Store } from '../dist/store/index.js';

const SECONDS = Number(process.argv[2] ?? 2);
const WARMUP_OPS = 200;

const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-transitions-'));
try {
  const store = measureStore(join(dir, 'store.db'));
  const baseline = measureRaw(join(dir, 'raw.db'));
  const result = {
    bench: 'store-transitions',
    name: 'store-transitions',
    store,
    baseline,
    ratio: round(store.ops_per_sec / baseline.ops_per_sec, 3),
    pragmas: { journal_mode: 'wal', synchronous: 'NORMAL' },
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  const rows = [
    ['measure', 'ops', 'seconds', 'ops/s'],
    [store.name, store.ops, store.seconds, store.ops_per_sec],
    [baseline.name, baseline.ops, baseline.seconds, baseline.ops_per_sec],
    ['ratio store / baseline', '', '', result.ratio],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  for (const r of rows) process.stderr.write(`${r.map((v, c) => String(v).padEnd(widths[c])).join('  ')}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Runs `op` for SECONDS after a warm-up and returns the count and the elapsed time. */
function timed(name, op) {
  for (let i = 0; i < WARMUP_OPS; i++) op(i);
  let ops = 0;
  const start = performance.now();
  const until = start + SECONDS * 1000;
  let now = start;
  while (now < until) {
    op(WARMUP_OPS + ops);
    ops++;
    now = performance.now();
  }
  const seconds = (now - start) / 1000;
  return { name, ops, seconds: round(seconds, 3), ops_per_sec: round(ops / seconds, 1) };
}

function measureStore(path) {
  const store = Store.open(path, { prng: createSeededPrng(1), actor: 'bench' });
  try {
    const need = store.needs.create({ title: 'flip me', tags: ['bench'] });
    const result = timed('store need transition (resolve/reopen)', (i) => {
      if (i % 2 === 0) store.needs.resolve(need.id);
      else store.needs.transition(need.id, 'open');
    });
    const verified = store.events.verify();
    if (!verified.ok) throw new Error(`event chain broken at ${verified.brokenSeq}: ${verified.reason}`);
    return { ...result, events: verified.checked };
  } finally {
    store.close();
  }
}

function measureRaw(path) {
  const db = new Database(path);
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = NORMAL');
    db.pragma('foreign_keys = ON');
    db.exec('CREATE TABLE rows (id INTEGER PRIMARY KEY, title TEXT NOT NULL, at INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO rows (title, at) VALUES (?, ?)');
    const txn = db.transaction((i) => insert.run(`row ${i}`, i));
    return timed('raw better-sqlite3 INSERT (1 row / txn)', (i) => txn.immediate(i));
  } finally {
    db.close();
  }
}

function round(value, digits) {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
