import type { Identity } from '../../kernel/identity/schema.js';
import { MemoryNeedBus } from '../../roundtable/memory-need-bus.js';
import { EmbeddedConnector } from '../connector.js';
import { MemoryTaskQueue } from '../memory-task-queue.js';
import { Supervisor } from '../supervisor.js';
import { Worker } from '../worker.js';
import { InvariantChecker, type Violation } from './invariants.js';
import { buildWorld, NO_FAULTS, SIM_TIMING, type SimFaults } from './scenario.js';
import { VirtualTime } from './virtual-time.js';

export type SimScheduler = 'roundtable' | 'central';

export interface SimOptions {
  readonly agents: number;
  readonly needs: number;
  readonly seed: number;
  readonly faults?: SimFaults;
  readonly scheduler?: SimScheduler;
  /** Give up after this much virtual time (ms). Default 24 h. */
  readonly maxVirtualMs?: number;
}

export interface SimReport {
  readonly seed: number;
  readonly scheduler: SimScheduler;
  readonly agents: number;
  readonly needs: number;
  readonly faults: SimFaults;
  /** Virtual ms from the start until every need was resolved (or until the run gave up). */
  readonly drainMs: number;
  readonly drained: boolean;
  readonly resolved: number;
  /** Distinct agents that started a task on a need (needs with at least one). */
  readonly ownersPerNeed: { readonly mean: number; readonly max: number };
  /** Sessions started by the workers' round-table loops (claims that won). */
  readonly takeovers: number;
  /** Tool calls a session made after its lease was lost, refused by the guard ("lease lost"). */
  readonly refusedStaleWrites: number;
  /** Needs resolved more than once. */
  readonly duplicateEffects: number;
  readonly tokens: number;
  readonly crashes: number;
  readonly sessions: number;
  /** Timer callbacks fired (the driver's steps). */
  readonly steps: number;
  readonly violations: readonly Violation[];
  /** The last events of the trace, when an invariant broke. */
  readonly tail?: readonly string[];
}

interface Agent {
  readonly identity: Identity;
  id: string;
  worker: Worker;
  alive: boolean;
  generation: number;
}

const START = Date.UTC(2026, 0, 1);

/**
 * One deterministic run: the real store, guard (in-memory MCP), supervisor, memory queue and bus,
 * workers (with their round-table loops in `roundtable` mode) and agent sessions with the scripted
 * provider, all on virtual time in this process. The driver alternates: settle pending work, check
 * the invariants on the new events, stop once every need is resolved, else advance time to the next
 * armed callback. Crashes abort the agent's sessions and stop its worker (its lease expires, the
 * need is retried or taken over); the agent comes back as a new agent after a restart delay.
 *
 * `central` runs the supervisor's graduation only (no takeover loops): a first baseline, not yet
 * the omniscient central scheduler of issue #7.
 */
export async function runSimulation(options: SimOptions): Promise<SimReport> {
  const faults = options.faults ?? NO_FAULTS;
  const scheduler = options.scheduler ?? 'roundtable';
  const maxVirtualMs = options.maxVirtualMs ?? 24 * 3_600_000;
  let storeRef: { events: { headSeq(): number } } | undefined;
  const time = new VirtualTime(START, () => storeRef?.events.headSeq() ?? 0);
  const world = buildWorld({ seed: options.seed, needs: options.needs, faults, time });
  const { store, deps, identities, needIds, provider, faultPrng } = world;
  storeRef = store;
  const checker = new InvariantChecker(store, START);
  const chance = (p: number) => p > 0 && faultPrng.nextUint32() / 0x1_0000_0000 < p;
  const queue = new MemoryTaskQueue({ timers: time.timers });
  const bus = new MemoryNeedBus();
  const connector = new EmbeddedConnector(deps);
  const agents: Agent[] = [];
  let crashes = 0;
  let sessions = 0;
  let refusedStaleWrites = 0;
  let takeovers = 0;

  const supervisor = new Supervisor({
    store: store.as('supervisor'),
    queue,
    bus,
    clock: time.clock,
    timers: time.timers,
    loopMs: SIM_TIMING.loopMs,
    maxAttempts: SIM_TIMING.maxAttempts,
    deadAfterMs: 3 * SIM_TIMING.heartbeatMs,
    slots: () =>
      identities.map((identity) => ({
        identity,
        capacity:
          agents.filter((a) => a.alive && a.identity.name === identity.name).length * identity.capacity,
      })),
  });

  const crash = (agent: Agent, generation: number) => {
    if (!agent.alive || agent.generation !== generation) return;
    agent.alive = false;
    crashes++;
    takeovers += agent.worker.takeovers;
    void agent.worker.close(0);
    time.timers.setTimeout(() => void launch(agent), SIM_TIMING.restartMs);
  };

  const launch = async (agent: Agent) => {
    const record = store.agents.register(
      agent.identity.name,
      agent.identity.hash,
      'sim',
      agent.identity.capacity,
    );
    agent.id = record.id;
    agent.generation++;
    agent.alive = true;
    const generation = agent.generation;
    agent.worker = new Worker({
      name: `sim-${agent.identity.name}-${agents.indexOf(agent)}.${generation}`,
      queue,
      connector,
      identities: [agent.identity.name],
      concurrency: agent.identity.capacity,
      providerFor: () => ({ provider, model: 'sim' }),
      heartbeatMs: SIM_TIMING.heartbeatMs,
      agentIdFor: () => agent.id,
      clock: time.clock,
      timers: time.timers,
      sessionTime: { clock: time.clock, sleep: time.sleep, timers: time.timers },
      ...(scheduler === 'roundtable' && {
        takeover: {
          bus,
          seats: [{ identity: agent.identity, agentId: agent.id }],
          checkMs: SIM_TIMING.checkMs,
        },
      }),
      onSessionEvent: (_taskId, event) => {
        if (event.kind === 'boot') {
          sessions++;
          if (chance(faults.crash)) {
            const at = Math.floor((faultPrng.nextUint32() / 0x1_0000_0000) * 2 * SIM_TIMING.latencyMs);
            time.timers.setTimeout(() => crash(agent, generation), at);
          }
        }
        if (event.kind === 'tool' && event.isError && /lease lost/.test(event.text)) refusedStaleWrites++;
      },
      onSessionEnd: () => supervisor.kick(),
    });
    await agent.worker.start();
    supervisor.kick();
  };

  await supervisor.start();
  for (let i = 0; i < options.agents; i++) {
    const identity = identities[i % identities.length]!;
    const agent = { identity, id: '', worker: undefined as unknown as Worker, alive: false, generation: 0 };
    agents.push(agent);
    await launch(agent);
  }

  let drained = false;
  for (;;) {
    await time.settle();
    checker.step();
    if (checker.resolvedNeeds >= needIds.length) {
      drained = true;
      break;
    }
    if (checker.violations.length > 0) break;
    if (!time.fireNext(START + maxVirtualMs)) break;
  }
  const drainMs = time.clock.now() - START;
  checker.finish({
    perTaskBudget: (name) => identities.find((i) => i.name === name)?.budgets.perTask ?? 0,
  });
  checker.checkDrained(needIds);
  for (const agent of agents) if (agent.alive) takeovers += agent.worker.takeovers;

  let owners = 0;
  let maxOwners = 0;
  let owned = 0;
  for (const id of needIds) {
    const distinct = new Set(
      store.tasks
        .forNeed(id)
        .filter((t) => t.startedAt !== null)
        .map((t) => t.agentId ?? t.identity),
    ).size;
    if (distinct === 0) continue;
    owned++;
    owners += distinct;
    maxOwners = Math.max(maxOwners, distinct);
  }
  const report: SimReport = {
    seed: options.seed,
    scheduler,
    agents: options.agents,
    needs: options.needs,
    faults,
    drainMs,
    drained,
    resolved: checker.resolvedNeeds,
    ownersPerNeed: { mean: owned ? round(owners / owned) : 0, max: maxOwners },
    takeovers,
    refusedStaleWrites,
    duplicateEffects: checker.duplicateEffects,
    tokens: store.budgets.totals().tokens,
    crashes,
    sessions,
    steps: time.fired,
    violations: checker.violations,
    ...(checker.violations.length > 0 && { tail: checker.tail(30) }),
  };
  // Nothing runs any more unless the driver fires a timer: the store can be closed under the loops.
  store.close();
  return report;
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}
