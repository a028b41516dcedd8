#!/usr/bin/env node
/**
 * Takeover latency in distributed mode (issue 7): real processes on a real Redis — a supervisor
 * (`mlos run --redis … --listen … --no-workers`) and two `mlos worker` processes hosting the same
 * identity. In each trial a need is created; whichever worker takes it from the queue holds it:
 * its scripted model makes one step of progress after a random delay (the lease is renewed once,
 * so its expiry falls at a random phase of the supervisor's loop, as it would in production), then
 * hangs; once the lease is stable the holder is SIGKILLed. With TAKEOVER_PROGRESS=0 the model hangs
 * on its first call instead (the holder dies before any progress: its lease expires one lease
 * after the claim, which comes right after a supervisor tick, so the phase is not random).
 * Measured: the holder's lease expiry (`leases.expires_at`) to the commit of the next claim of the
 * need by another agent (the `task.started` event of the next attempt, on the guard's clock), and
 * which path won: the survivor's round-table loop (`need.claimed` with `roundTable: true`) or the
 * supervisor (lease expired on its tick, need graduated again, job taken from the queue). The killed
 * worker is restarted between trials.
 *
 * The need is renamed from "hold …" to "work …" just before the kill, so the claimant's session (the
 * scripted model matches on the title) resolves it at once and every trial ends clean.
 *
 * Goal: p99 < 100 ms plus the takeover loop's check interval (`mlos worker` uses the default,
 * DEFAULT_TAKEOVER_CHECK_MS; it has no flag for it).
 *
 * Run: npm run build && node bench/takeover.mjs [trials] (default 20)
 * Env: MLOS_BENCH_REDIS_URL (default redis://127.0.0.1:6379), TAKEOVER_LEASE_MS (1500),
 * TAKEOVER_LOOP_MS (supervisor --loop, 500: the default), TAKEOVER_HEARTBEAT_MS (200),
 * TAKEOVER_PROGRESS (1; 0: the holder makes no progress).
 * Prints one JSON object on stdout and a table on stderr. Without Redis it prints a skip and exits 0.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DEFAULT_TAKEOVER_CHECK_MS } from '../dist/roundtable/takeover-loop.js';
import { Store } from '../dist/store/index.js';
import {
  freePort,
  killAll,
  quantile,
  redisAnswers,
  spawnMlos as spawnWith,
  started,
  waitFor,
} from './lib/processes.mjs';
import { dropKeys } from './lib/redis-keys.mjs';

const TRIALS = Number(process.argv[2] ?? 20);
const REDIS = process.env.MLOS_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const LEASE_MS = Number(process.env.TAKEOVER_LEASE_MS ?? 1500);
const LOOP_MS = Number(process.env.TAKEOVER_LOOP_MS ?? 500);
const PROGRESS = process.env.TAKEOVER_PROGRESS !== '0';
/** The holder's one step of progress comes after one of PHASES delays spread over the supervisor's loop. */
const PHASES = 10;
const HEARTBEAT_MS = Number(process.env.TAKEOVER_HEARTBEAT_MS ?? 200);
const CHECK_MS = DEFAULT_TAKEOVER_CHECK_MS;
const GOAL_MS = 100 + CHECK_MS;
const TOKENS = {
  MLOS_OPERATOR_TOKEN: 'bench-operator-token',
  MLOS_WORKER_TOKEN: 'bench-worker-token',
};

/** One identity both workers host. The grace keeps the round table off a fresh need (the queue hands it out). */
const IDENTITY = `---
name: bench
objective: Hold or resolve the takeover benchmark's needs.
scope:
  primary: [takeover-bench]
model: scripted:noop
capacity: 4
budgets:
  per_task: 10000000
  per_day: 1000000000
takeover:
  grace: 5s
  peripheral_delay: 1s
  cooldown: 1m
  escalation: 10m
---
You are the takeover benchmark's agent.
`;

/**
 * "hold K …" needs: one step of progress after K phase steps, then a model call that hangs (no
 * more progress: the lease is not renewed again). "hold …" (no progress mode) hangs at once.
 * "work …" (renamed once held) resolves at once.
 */
function script() {
  const hang = `      - tool: get_need
        args: { id: "\${need.id}" }
        latency_ms: 3600000
      - tool: finish
        args: { outcome: resolved, summary: "never reached" }
`;
  const rules = [];
  for (let k = 0; k < PHASES; k++) {
    rules.push(`  - match: { title: "^hold ${k} " }
    steps:
      - tool: get_need
        args: { id: "\${need.id}" }
        latency_ms: ${Math.round((k * LOOP_MS) / PHASES)}
${hang}`);
  }
  rules.push(`  - match: { title: "^hold " }
    steps:
${hang}`);
  rules.push(`  - steps:
      - tool: finish
        args: { outcome: resolved, summary: "taken over" }
`);
  return `name: takeover-bench\nrules:\n${rules.join('')}`;
}

/** The temporary folder of this run, removed on exit whatever happens. */
let tempDir;

process.on('exit', () => {
  killAll();
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    killAll();
    process.exit(130);
  });
}

const spawnMlos = (args, cwd) => spawnWith(args, cwd, TOKENS);

async function bench() {
  const dir = mkdtempSync(join(tmpdir(), 'mlos-bench-takeover-'));
  tempDir = dir;
  const db = join(dir, 'mlos.db');
  mkdirSync(join(dir, 'identities'));
  writeFileSync(join(dir, 'identities', 'bench.md'), IDENTITY);
  const scriptPath = join(dir, 'script.yaml');
  writeFileSync(scriptPath, script());
  const port = await freePort();
  const mcp = `http://127.0.0.1:${port}/mcp`;
  let namespace;
  let store;
  try {
    const supervisor = spawnMlos(
      [
        '--db',
        db,
        'run',
        '--redis',
        REDIS,
        '--listen',
        `127.0.0.1:${port}`,
        '--no-workers',
        '--no-views',
        '--identities',
        join(dir, 'identities'),
        '--lease',
        `${LEASE_MS}ms`,
        '--heartbeat',
        `${HEARTBEAT_MS}ms`,
        '--loop',
        `${LOOP_MS}ms`,
        '--max-attempts',
        '5',
        '--log-format',
        'json',
      ],
      dir,
    );
    await started(supervisor, 'mlos run started');
    const info = await fetch(new URL('/worker/identities', mcp), {
      headers: { authorization: `Bearer ${TOKENS.MLOS_WORKER_TOKEN}` },
    }).then((r) => r.json());
    namespace = info.namespace;

    const worker = () =>
      spawnMlos(
        [
          'worker',
          '--redis',
          REDIS,
          '--mcp',
          mcp,
          '--provider',
          'scripted',
          '--model',
          scriptPath,
          '--concurrency',
          '4',
          '--heartbeat',
          `${HEARTBEAT_MS}ms`,
          '--log-format',
          'json',
        ],
        dir,
      );
    const workers = [worker(), worker()];
    for (const w of workers) await started(w, 'mlos worker started');

    store = Store.open(db, { actor: 'bench' });
    const workerPid = (agentId) => {
      const agent = agentId && store.agents.get(agentId);
      return agent ? Number(agent.worker.split(':').pop()) : undefined;
    };
    const trials = [];
    const benchStarted = performance.now();
    for (let i = 0; i < TRIALS; i++) {
      const phase = Math.floor(Math.random() * PHASES);
      const title = PROGRESS ? `hold ${phase} ${i}` : `hold ${i}`;
      const need = store.needs.create({ title, tags: ['takeover-bench'] });
      // The first attempt: taken from the queue by one of the workers, which now holds the lease.
      const first = await waitFor(
        () => store.tasks.forNeed(need.id).find((t) => t.status === 'running'),
        15_000,
        `a worker to start need ${need.id}`,
      );
      const holderPid = workerPid(first.agentId);
      const holderIndex = workers.findIndex((w) => w.child.pid === holderPid);
      if (holderIndex < 0)
        throw new Error(`need ${need.id} is held by no worker of this bench (pid ${holderPid})`);
      if (PROGRESS) {
        // Progress renews the lease (no event); wait until it stays put for 2.5 heartbeats: the
        // model now hangs, so it is final.
        let last = store.leases.get(need.id).expiresAt;
        let since = Date.now();
        await waitFor(
          () => {
            const now = store.leases.get(need.id).expiresAt;
            if (now !== last) {
              last = now;
              since = Date.now();
            }
            return store.tasks.get(first.id).progressAt !== null && Date.now() - since > 2.5 * HEARTBEAT_MS;
          },
          10_000,
          `the holder's progress on need ${need.id}`,
          5,
        );
      }
      store.needs.update(need.id, { title: `work ${i}` });
      workers[holderIndex].child.kill('SIGKILL');
      await workers[holderIndex].exited;
      const killedAt = Date.now();
      const lease = store.leases.get(need.id);
      if (lease.taskId !== first.id) throw new Error(`need ${need.id}: the lease moved before the kill`);
      const expiresAt = lease.expiresAt;
      if (expiresAt <= killedAt) throw new Error(`need ${need.id}: the lease expired before the kill`);

      // The next attempt's start: the claim committed by another agent.
      const next = await waitFor(
        () => {
          const t = store.tasks.forNeed(need.id).find((x) => x.id !== first.id && x.startedAt !== null);
          return t;
        },
        LEASE_MS + 30_000,
        `another agent to claim need ${need.id}`,
      );
      await waitFor(
        () => store.needs.require(need.id).status === 'resolved',
        15_000,
        `need ${need.id} resolved`,
        5,
      );
      const events = store.events.forNeed(need.id, 200).reverse();
      const startEvent = events.find((e) => e.kind === 'task.started' && e.entity === next.id);
      if (!startEvent) throw new Error(`need ${need.id}: no task.started event for ${next.id}`);
      const claimedAt = startEvent.at;
      const claimEvent = events.find((e) => e.kind === 'need.claimed' && e.payload?.taskId === next.id);
      const lost = store.tasks.get(first.id);
      const supervisorExpired = lost.error?.startsWith('dead') || lost.error?.startsWith('hung');
      const path = claimEvent?.payload?.roundTable
        ? supervisorExpired
          ? 'roundtable-after-regraduation'
          : 'roundtable'
        : 'queue';
      const claimantPid = workerPid(next.agentId);
      trials.push({
        trial: i,
        latencyMs: claimedAt - expiresAt,
        path,
        phase: PROGRESS ? phase : null,
        killToExpiryMs: expiresAt - killedAt,
        renewed: expiresAt !== first.startedAt + LEASE_MS,
        holder: holderPid,
        claimant: claimantPid,
      });
      if (claimantPid === holderPid) throw new Error(`need ${need.id} claimed again by the killed worker`);
      // Restart the killed worker for the next trial.
      workers[holderIndex] = worker();
      await started(workers[holderIndex], 'mlos worker started');
    }
    const seconds = (performance.now() - benchStarted) / 1000;
    return { trials, seconds };
  } finally {
    await killAll();
    store?.close();
    // This run's keys: BullMQ's `mlos:<ns>.*` and the bus's `<ns>:*`.
    if (namespace) await dropKeys(REDIS, [`mlos:${namespace}.*`, `${namespace}:*`]).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

function round(x) {
  return Math.round(x * 1000) / 1000;
}

const result = {
  bench: 'takeover',
  trials: TRIALS,
  leaseMs: LEASE_MS,
  checkIntervalMs: CHECK_MS,
  supervisorLoopMs: LOOP_MS,
  heartbeatMs: HEARTBEAT_MS,
  holderProgress: PROGRESS,
  goalP99Ms: GOAL_MS,
};
if (!(await redisAnswers(REDIS))) {
  result.skipped = `redis unavailable at ${REDIS}: takeover bench skipped`;
  console.log(JSON.stringify(result));
  console.error(result.skipped);
  process.exit(0);
}
const { trials, seconds } = await bench();
const lat = trials.map((t) => t.latencyMs).sort((a, b) => a - b);
const byPath = {};
for (const t of trials) byPath[t.path] = (byPath[t.path] ?? 0) + 1;
Object.assign(result, {
  p50Ms: quantile(lat, 0.5),
  p99Ms: quantile(lat, 0.99),
  maxMs: lat[lat.length - 1],
  minMs: lat[0],
  byPath,
  goalMet: quantile(lat, 0.99) < GOAL_MS,
  // The same goal with the supervisor's loop as the check interval.
  strictGoalMs: 100 + LOOP_MS,
  strictGoalMet: quantile(lat, 0.99) < 100 + LOOP_MS,
  seconds: round(seconds),
  samples: trials.map((t) => ({ ms: t.latencyMs, path: t.path })),
});
console.log(JSON.stringify(result));
const row = (k, v) => `${k.padEnd(40)} ${v}`;
console.error(
  [
    row('trials', `${TRIALS} (${round(seconds)} s)`),
    row('lease / heartbeat / supervisor loop ms', `${LEASE_MS} / ${HEARTBEAT_MS} / ${LOOP_MS}`),
    row('takeover check interval ms', CHECK_MS),
    row('holder progress before the kill', PROGRESS ? 'one step, random phase' : 'none'),
    row('expiry → claim p50 / p99 / max ms', `${result.p50Ms} / ${result.p99Ms} / ${result.maxMs}`),
    row(
      'claims by path',
      Object.entries(byPath)
        .map(([k, v]) => `${k} ${v}`)
        .join(', '),
    ),
    row(`goal p99 < ${GOAL_MS} ms (100 + check)`, result.goalMet ? 'met' : 'NOT met'),
    row(`p99 < ${100 + LOOP_MS} ms (100 + supervisor loop)`, result.strictGoalMet ? 'yes' : 'no'),
  ].join('\n'),
);
process.exit(0);
