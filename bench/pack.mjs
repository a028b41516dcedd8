#!/usr/bin/env node
/**
 * Benchmark: context-pack compile time on a generated graph of 100k needs, 300k edges and 20k
 * artifacts (goal: p95 ≤ 10 ms at budget 8,000 over 200 random open or active needs), boot
 * payload compile time, and PROBLEM.md compile time on the same graph when the views compiler
 * is built. Baseline, measured in the same run: a raw better-sqlite3 SELECT of the need and its
 * referenced artifacts plus one tokenizer pass over a text as long as that need's pack — the
 * least any token-counted pack of that size can cost.
 *
 * The graph is bulk-loaded with raw better-sqlite3 into the schema `Store.open` creates (the
 * cycle-check trigger is set aside during the load: every depends_on points to an older need, so
 * the graph is acyclic by construction); each sampled need then gets earlier tasks, notes and
 * events through the real store API, and everything is measured through the real API.
 *
 * Run: npm run build && node bench/pack.mjs [needs] [samples]
 * Prints one JSON object on stdout and a table on stderr.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { countTokens } from 'gpt-tokenizer';
import { compileAwareness, loadAwarenessState } from '../dist/kernel/awareness.js';
import { compileBootPayload } from '../dist/kernel/boot.js';
import { parseIdentity } from '../dist/kernel/identity/index.js';
import { CANDIDATE_LIMITS as L } from '../dist/kernel/pack/candidates.js';
import { compilePack } from '../dist/kernel/pack/compile.js';
import { createSeededPrng, ManualClock, Store } from '../dist/store/index.js';

const NEEDS = Number(process.argv[2] ?? 100_000);
const SAMPLES = Number(process.argv[3] ?? 200);
const EDGES = NEEDS * 3;
const ARTIFACTS = Math.round(NEEDS / 5);
const BUDGET = 8_000;
const GOAL_P95_MS = 10;
const TAGS = Array.from({ length: 200 }, (_, i) => `tag-${i}`);
const WORDS =
  'need graph token pack budget agent schema lease fence view kernel store queue worker guard identity pointer artifact event compile render rank greedy header summary content the a of to and in is for with on'.split(
    ' ',
  );

const prng = createSeededPrng(2026);
const rand = (n) => prng.nextUint32() % n;
/** Skewed towards small indexes: a few tags are very common, most are rare. */
const skewed = (n) => Math.floor(n * (prng.nextUint32() / 2 ** 32) ** 2);
const words = (n) => Array.from({ length: n }, () => WORDS[rand(WORDS.length)]).join(' ');
const id = (prefix, i) => `${prefix}_01J${String(i).padStart(23, '0')}`;
const sha = (text) => createHash('sha256').update(text).digest('hex');

const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-pack-'));
const dbPath = join(dir, 'bench.db');
try {
  const seedStart = performance.now();
  Store.open(dbPath).close();
  const sampled = bulkLoad(dbPath);
  const clock = new ManualClock(Date.UTC(2026, 5, 1));
  const store = Store.open(dbPath, { clock, prng: createSeededPrng(7) });
  // A typical identity watches a few mid-popular tags; the widest one the three commonest tags.
  const identity = benchIdentity('bench', TAGS.slice(10, 13), TAGS.slice(13, 16));
  const wide = benchIdentity('wide', TAGS.slice(0, 3), TAGS.slice(3, 6));
  store.identities.pin(identity.name, identity.hash, identity.source);
  addMemory(store, clock, sampled);
  const seedMs = performance.now() - seedStart;

  const warmup = sampled.slice(SAMPLES);
  const targets = sampled.slice(0, SAMPLES);
  for (const needId of warmup) compilePack(store.packReads, needId, identity, BUDGET);

  const packs = [];
  const cold = time(targets, (needId) => packs.push(compilePack(store.packReads, needId, identity, BUDGET)));
  const warm = time(targets, (needId) => compilePack(store.packReads, needId, identity, BUDGET));
  const reads = time(targets, (needId) => readsOnly(store, needId));
  const textOf = new Map(packs.map((p) => [p.needId, p.text]));
  const baseline = time(targets, baselineOf(dbPath, textOf));
  const boot = time(targets.slice(0, 50), (needId) =>
    compileBootPayload(store.packReads, identity, needId, 16_000),
  );
  const awarenessOf = (who) =>
    compileAwareness(who, loadAwarenessState(store.packReads, who, clock.now()), 2000);
  const wideAwareness = time([0, 1, 2, 3, 4], () => awarenessOf(wide));
  const scopeSize = (who) => {
    const state = loadAwarenessState(store.packReads, who, clock.now(), 1);
    const all = (v) => Object.values(v.counts).reduce((a, b) => a + b, 0);
    return { primary: all(state.primary), peripheral: all(state.peripheral) };
  };
  const problem = await problemTime(store);
  const bootScope = scopeSize(identity);
  const wideScope = scopeSize(wide);
  store.close();

  const over = packs.filter((p) => p.tokens > BUDGET).length;
  const result = {
    bench: 'pack',
    graph: { needs: NEEDS, edges: EDGES, artifacts: ARTIFACTS, tags: TAGS.length },
    samples: targets.length,
    budget: BUDGET,
    seedMs: round(seedMs),
    packMs: cold,
    packWarmMs: warm,
    readsOnlyMs: reads,
    baselineMs: baseline,
    ratioP50: round(cold.p50 / baseline.p50),
    bootMs: boot,
    bootScope,
    awarenessWideMs: wideAwareness,
    awarenessWideScope: wideScope,
    problemMs: problem,
    packTokens: stats(packs.map((p) => p.tokens)),
    packItems: stats(packs.map((p) => p.items.length)),
    packPointers: stats(packs.map((p) => p.pointers.length)),
    overBudget: over,
    goalP95Ms: GOAL_P95_MS,
    withinGoal: cold.p95 <= GOAL_P95_MS,
    node: process.version,
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
  const rows = [
    ['measure', 'p50 ms', 'p95 ms', 'max ms'],
    [`pack @ ${BUDGET} (first compile of each need)`, cold.p50, cold.p95, cold.max],
    ['pack @ 8,000 (same needs again)', warm.p50, warm.p95, warm.max],
    ['  of which store reads', reads.p50, reads.p95, reads.max],
    ['baseline: raw SELECT + count the pack text once', baseline.p50, baseline.p95, baseline.max],
    ['boot payload @ 16,000 (50 needs)', boot.p50, boot.p95, boot.max],
    [
      'awareness, widest identity (3 commonest tags)',
      wideAwareness.p50,
      wideAwareness.p95,
      wideAwareness.max,
    ],
    ['PROBLEM.md (default workspace)', problem?.p50 ?? 'n/a', problem?.p95 ?? 'n/a', problem?.max ?? 'n/a'],
  ];
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => String(r[c]).length)));
  for (const r of rows) process.stderr.write(`${r.map((v, c) => String(v).padEnd(widths[c])).join('  ')}\n`);
  process.stderr.write(
    `${NEEDS} needs, ${EDGES} edges, ${ARTIFACTS} artifacts (seeded in ${Math.round(seedMs)} ms); packs of ${result.packTokens.p50} tokens (p50), ${over} over budget; p95 ${cold.p95} ms (goal ≤ ${GOAL_P95_MS} ms: ${result.withinGoal ? 'met' : 'MISSED'})\n`,
  );
  if (over > 0) process.exitCode = 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Bulk-loads needs, tags, artifacts and edges; returns open or active needs to sample, shuffled. */
function bulkLoad(path) {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = OFF');
  const cycleTrigger = db
    .prepare("SELECT sql FROM sqlite_schema WHERE type = 'trigger' AND name = 'edges_no_cycle'")
    .pluck()
    .get();
  db.exec('DROP TRIGGER edges_no_cycle');
  const t0 = Date.UTC(2026, 0, 1);
  const insertNeed = db.prepare(
    `INSERT INTO needs (id, title, body, acceptance, priority, scope, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
  );
  const insertTag = db.prepare('INSERT OR IGNORE INTO need_tags (need_id, tag) VALUES (?, ?)');
  const insertArtifact = db.prepare(
    `INSERT INTO artifacts (id, kind, uri, title, content, content_hash, summary, token_count, created_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`,
  );
  const insertEdge = db.prepare(
    'INSERT OR IGNORE INTO edges (from_id, rel, to_id, created_at) VALUES (?, ?, ?, ?)',
  );
  const setStatus = db.prepare('UPDATE needs SET status = ? WHERE id = ?');
  const live = [];
  db.transaction(() => {
    for (let i = 0; i < NEEDS; i++) {
      const needId = id('need', i);
      insertNeed.run(
        needId,
        `Need ${i}: ${words(3 + rand(6))}`,
        words(10 + rand(120)),
        rand(3) ? words(5 + rand(20)) : '',
        rand(5),
        `Sprint_${rand(8)}`,
        t0 + i * 1000,
        t0 + i * 1000,
      );
      for (let t = 0, n = 1 + rand(3); t < n; t++) insertTag.run(needId, TAGS[skewed(TAGS.length)]);
    }
    for (let i = 0; i < NEEDS; i++) {
      const r = rand(100);
      const status = r < 60 ? 'open' : r < 65 ? 'active' : r < 95 ? 'resolved' : 'dropped';
      if (status !== 'open') setStatus.run(status, id('need', i));
      if (status === 'open' || status === 'active') live.push(id('need', i));
    }
    for (let a = 0; a < ARTIFACTS; a++) {
      const r = rand(100);
      // Mostly small; a fifth medium; one in a hundred large, half of those with a summary.
      const content =
        r < 79 ? words(30 + rand(300)) : r < 99 ? words(400 + rand(1600)) : words(6000 + rand(6000));
      const kind = rand(4) === 0 ? 'note' : 'file';
      insertArtifact.run(
        id('art', a),
        kind,
        kind === 'file' ? `/repo/file-${a}.md` : null,
        `Artifact ${a}: ${words(3)}`,
        content,
        sha(content),
        r >= 99 && rand(2) ? `Summary of artifact ${a}: ${words(20)}` : null,
        t0 + a * 500,
      );
    }
    let edges = 0;
    // references: every artifact is referenced by one to three needs.
    for (let a = 0; a < ARTIFACTS && edges < EDGES; a++) {
      for (let k = 0, n = 1 + rand(3); k < n; k++) {
        edges += insertEdge.run(id('need', rand(NEEDS)), 'references', id('art', a), t0).changes;
      }
    }
    // child_of: a fifth of the edges.
    for (let k = 0; k < EDGES / 5; k++) {
      const i = 1 + rand(NEEDS - 1);
      edges += insertEdge.run(id('need', i), 'child_of', id('need', rand(i)), t0).changes;
    }
    // depends_on: the rest, each to an older need, mostly a recent one (chains, not a hairball).
    while (edges < EDGES) {
      const i = 1 + rand(NEEDS - 1);
      const j = Math.max(0, i - 1 - skewed(Math.min(i, 5000)));
      edges += insertEdge.run(id('need', i), 'depends_on', id('need', j), t0).changes;
    }
  })();
  db.exec(cycleTrigger);
  db.close();
  for (let i = live.length - 1; i > 0; i--) {
    const j = rand(i + 1);
    [live[i], live[j]] = [live[j], live[i]];
  }
  return live.slice(0, SAMPLES + 20);
}

/** Each sampled need gets what a takeover meets: a failed attempt with a note and a transcript. */
function addMemory(store, clock, needIds) {
  store.transaction(() => {
    needIds.forEach((needId, i) => {
      if (i % 2) return;
      const need = store.needs.require(needId);
      if (need.status === 'active') return;
      const task = store.tasks.create(needId, 'bench');
      store.tasks.start(task.id, { leaseUntil: clock.now() + 60_000 });
      clock.advance(1000);
      const note = store.artifacts.add(
        { kind: 'note', title: `what attempt 1 found on ${needId}`, content: words(60) },
        {},
      ).artifact;
      const transcript = store.artifacts.add(
        { kind: 'transcript', title: `transcript of ${task.id}`, content: words(3000) },
        {},
      ).artifact;
      store.edges.link(note.id, 'produced_by', task.id);
      store.edges.link(transcript.id, 'produced_by', task.id);
      store.tasks.transition(task.id, 'failed', { outcome: 'failed', summary: words(25), error: words(10) });
      store.needs.update(needId, { acceptance: `${need.acceptance} ${words(5)}`.trim() });
    });
  });
}

function benchIdentity(name, primary, peripheral) {
  const source = [
    '---',
    `name: ${name}`,
    'objective: Serve the benchmark graph.',
    'scope:',
    `  primary: [${primary.join(', ')}]`,
    `  peripheral: [${peripheral.join(', ')}]`,
    'model: scripted:bench',
    '---',
    '# Bench',
    '',
    'You work on the benchmark graph.',
    '',
  ].join('\n');
  return parseIdentity(source, { file: `${name}.md` });
}

/** The store reads a pack makes, without rendering or counting. */
function readsOnly(store, needId) {
  const r = store.packReads;
  r.need(needId);
  r.dependencyChain(needId, L.dependencies);
  r.earlierTasks(needId, L.tasks);
  r.taskArtifacts(needId, L.taskArtifacts);
  r.referencedArtifacts(needId, L.artifacts);
  r.neighbours(needId, L.neighbours, L.neighbourWindow);
  r.recentEvents(needId, L.events);
}

/** The floor of any pack of a need: read it and its artifacts, and count a text the pack's size once. */
function baselineOf(path, textOf) {
  const db = new Database(path, { readonly: true });
  const need = db.prepare('SELECT title, body, acceptance FROM needs WHERE id = ?');
  const refs = db.prepare(
    "SELECT a.content FROM edges e JOIN artifacts a ON a.id = e.to_id WHERE e.from_id = ? AND e.rel = 'references'",
  );
  return (needId) => {
    const n = need.get(needId);
    const read = [n.title, n.body, n.acceptance, ...refs.all(needId).map((r) => r.content ?? '')].join('\n');
    return read.length + countTokens(textOf.get(needId), { disallowedSpecial: new Set() });
  };
}

async function problemTime(store) {
  let views;
  try {
    views = await import('../dist/kernel/views/index.js');
  } catch {
    return null;
  }
  if (typeof views.renderProblemFile !== 'function') return null;
  const workspace = store.workspaces.require('default');
  views.renderProblemFile(store, workspace);
  const times = [];
  for (let i = 0; i < 5; i++) {
    const t = performance.now();
    views.renderProblemFile(store, workspace);
    times.push(performance.now() - t);
  }
  return summarize(times);
}

function time(items, fn) {
  const times = [];
  for (const item of items) {
    const t = performance.now();
    fn(item);
    times.push(performance.now() - t);
  }
  return summarize(times);
}

function summarize(times) {
  const sorted = [...times].sort((a, b) => a - b);
  const at = (q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
  return { p50: round(at(0.5)), p95: round(at(0.95)), max: round(sorted.at(-1)) };
}

function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: sorted[Math.floor(sorted.length / 2)], max: sorted.at(-1) };
}

function round(ms) {
  return Math.round(ms * 100) / 100;
}
