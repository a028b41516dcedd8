// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references, resolved by the scripted provider.

import { existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import type { LlmProvider } from '../../agents/provider.js';
import type { ScriptInput } from '../../agents/providers/script-schema.js';
import { ScriptedProvider } from '../../agents/providers/scripted.js';
import type { Sleep } from '../../agents/retry.js';
import { parseIdentity } from '../../kernel/identity/index.js';
import type { Identity } from '../../kernel/identity/schema.js';
import { createGuardDeps, createKernelCompiler, type GuardDeps } from '../../mcp/index.js';
import { createIdGenerator, createSeededPrng, Store } from '../../store/index.js';
import type { SimFaults } from './faults.js';
import type { VirtualTime } from './virtual-time.js';

/** Timings of the simulated system, in virtual ms. */
export const SIM_TIMING = {
  leaseMs: 30_000,
  heartbeatMs: 5_000,
  loopMs: 500,
  checkMs: 1_000,
  latencyMs: 400,
  /** A crashed agent's process comes back (as a new agent) after this. */
  restartMs: 20_000,
  /** A dead supervisor's process comes back after this. */
  supervisorRestartMs: 2_000,
  /** A restarting worker lets its sessions finish this long, then aborts them. */
  workerDrainMs: 5_000,
  /** A restarted worker is up again this long after it stopped. */
  workerStartMs: 1_000,
  /** Events between two snapshots on the bus: a subscriber stalled behind a lost event resumes by then. */
  snapshotEvery: 50,
  maxAttempts: 10,
  /**
   * Before a failed need is tried again (doubled per failure), and the first hold of an identity
   * whose model was unavailable, as `mlos run --retry-delay` (shorter: the runs are short).
   */
  retryDelayMs: 5_000,
} as const;

/** Three scopes over tags a, b, c: each identity owns one and watches the next (overlapping). */
const SCOPES = [
  { name: 'alpha', primary: 'a', peripheral: 'b' },
  { name: 'beta', primary: 'b', peripheral: 'c' },
  { name: 'gamma', primary: 'c', peripheral: 'a' },
] as const;

export const SIM_TAGS = ['a', 'b', 'c'] as const;

function identityText(s: (typeof SCOPES)[number]): string {
  return [
    '---',
    `name: ${s.name}`,
    `objective: Serve the needs tagged ${s.primary} in the simulator.`,
    `scope: { primary: [${s.primary}], peripheral: [${s.peripheral}] }`,
    'model: scripted:default',
    'capacity: 1',
    'budgets: { per_task: 200000, per_day: 1000000000 }',
    'takeover: { grace: 5s, peripheral_delay: 5s, cooldown: 30s, escalation: 5m }',
    '---',
    `You are the simulated ${s.name} agent.`,
    '',
  ].join('\n');
}

/** Reads the need, then resolves it: two model turns, so a crash can land between them. */
export function simScript(faults: SimFaults): ScriptInput {
  return {
    name: 'sim',
    latency_ms: SIM_TIMING.latencyMs,
    failures: {
      rates: {
        server: faults.server,
        rate_limit: faults.rate_limit,
        timeout: faults.timeout,
        malformed: faults.malformed,
      },
      retry_after_ms: 1000,
    },
    rules: [
      {
        steps: [
          { tool: 'get_need', args: { id: '${need.id}' } },
          { tool: 'finish', args: { outcome: 'resolved', summary: 'simulated: done' } },
        ],
      },
    ],
  };
}

export interface SimWorld {
  /** The run's store: the guard's, the workers' and the invariants' connection. */
  readonly store: Store;
  readonly deps: GuardDeps;
  readonly identities: readonly Identity[];
  readonly needIds: readonly string[];
  /**
   * The scripted model of one incarnation of an agent, waiting on that incarnation's sleep, its
   * failure draws keyed by `failureKey` (see ScriptedProviderOptions).
   */
  readonly providerFor: (sleep: Sleep, failureKey?: (taskId: string) => string) => LlmProvider;
  /** A store handle for the supervisor (see SupervisorHostOptions.openStore). */
  readonly openStore: (actor: string) => Store;
  /** Closes the store and removes the database file, if any. */
  close(): void;
}

/**
 * The world of one run: a store on virtual time with seeded ids, the three identities pinned,
 * `needs` needs spread over the tags (about a third depend on one or two earlier needs), the
 * guard's deps, and the scripted model. With `file`, the database is a file (in /dev/shm when it
 * exists, else the temp folder) so that the supervisor can close and reopen its own connection;
 * otherwise it is in memory and the supervisor shares the connection.
 */
export function buildWorld(options: {
  readonly seed: number;
  readonly needs: number;
  readonly faults: SimFaults;
  readonly time: VirtualTime;
  readonly file?: boolean;
}): SimWorld {
  const { seed, time } = options;
  const ids = createIdGenerator(time.clock, createSeededPrng(seed));
  const path = options.file ? tempDatabase(seed) : ':memory:';
  const store = Store.open(path, { clock: time.clock, ids, actor: 'sim' });
  const identities = SCOPES.map((s) => parseIdentity(identityText(s), { file: `${s.name}.md` }));
  for (const identity of identities) store.identities.pin(identity.name, identity.hash, identity.source);
  const shape = createSeededPrng(seed ^ 0x5eed);
  const pick = (n: number) => shape.nextUint32() % n;
  const needIds: string[] = [];
  for (let i = 0; i < options.needs; i++) {
    const dependsOn: string[] = [];
    if (i > 0 && pick(3) === 0) {
      dependsOn.push(needIds[pick(i)]!);
      if (i > 1 && pick(2) === 0) dependsOn.push(needIds[pick(i)]!);
    }
    const need = store.needs.create({
      title: `Simulated need ${i + 1}`,
      tags: [SIM_TAGS[pick(SIM_TAGS.length)]!],
      priority: 1 + pick(3),
      dependsOn: [...new Set(dependsOn)],
    });
    needIds.push(need.id);
  }
  const deps = createGuardDeps(store, {
    leaseMs: SIM_TIMING.leaseMs,
    retryDelayMs: SIM_TIMING.retryDelayMs,
    runId: store.budgets.startRun(null),
    compiler: createKernelCompiler(store),
    log: () => {},
  });
  const script = simScript(options.faults);
  return {
    store,
    deps,
    identities,
    needIds,
    providerFor: (sleep, failureKey) =>
      new ScriptedProvider({
        script,
        source: 'simulator script',
        sleep,
        seed,
        ...(failureKey && { failureKey }),
      }),
    openStore: (actor) =>
      path === ':memory:' ? store.as(actor) : Store.open(path, { clock: time.clock, ids, actor }),
    close() {
      store.close();
      if (path !== ':memory:')
        for (const suffix of ['', '-wal', '-shm']) rmSync(path + suffix, { force: true });
    },
  };
}

let databases = 0;

/** A fresh database path for one run, unique in this process and across processes. */
function tempDatabase(seed: number): string {
  const dir = existsSync('/dev/shm') ? '/dev/shm' : tmpdir();
  return join(dir, `mlos-sim-${process.pid}-${threadId}-${++databases}-${seed}.db`);
}
