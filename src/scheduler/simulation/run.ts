import { MAX_RETRY_DELAY_MS } from '../../mcp/agent-claim.js';
import { MemoryNeedBus } from '../../roundtable/memory-need-bus.js';
import type { NeedBus } from '../../roundtable/need-bus.js';
import { createSeededPrng, type Store } from '../../store/index.js';
import { BusPublisher } from '../bus-publisher.js';
import { EmbeddedConnector } from '../connector.js';
import { MemoryTaskQueue } from '../memory-task-queue.js';
import { CentralScheduler } from './central-scheduler.js';
import { FAULT_PERIOD_MS, FaultDice, NO_FAULTS, type SimFaults } from './faults.js';
import { FaultyNeedBus } from './faulty-bus.js';
import { InvariantChecker } from './invariants.js';
import { ownership, type SimReport } from './report.js';
import { buildWorld, SIM_TIMING, type SimWorld } from './scenario.js';
import { SimAgents, type SimScheduler } from './sim-agents.js';
import { SupervisorHost } from './supervisor-host.js';
import { VirtualTime } from './virtual-time.js';

export type { SimReport } from './report.js';
export type { SimScheduler } from './sim-agents.js';

export interface SimOptions {
  readonly agents: number;
  readonly needs: number;
  readonly seed: number;
  readonly faults?: SimFaults;
  readonly scheduler?: SimScheduler;
  /** Give up after this much virtual time (ms). Default 24 h. */
  readonly maxVirtualMs?: number;
  /** Reads the final state of the run's store before it is closed (tests, investigations). */
  readonly inspect?: (store: Store) => void;
  /** Told how far the run is, every few hundred steps (a progress line; it cannot change the run). */
  readonly onProgress?: (progress: SimProgress) => void;
}

export interface SimProgress {
  readonly seed: number;
  readonly resolved: number;
  readonly needs: number;
  /** Virtual time since the start, in ms. */
  readonly virtualMs: number;
}

/** Steps between two progress reports. */
const PROGRESS_STEPS = 256;

const START = Date.UTC(2026, 0, 1);
/** Rounds of promise draining after which a step counts as never settling (a bug: see VirtualTime.settle). */
const SETTLE_MAX_ROUNDS = 1000;

/**
 * One deterministic run: the real store, guard (in-memory MCP), supervisor, memory queue and bus,
 * workers and agent sessions with the scripted model, all on virtual time in this process, with
 * the faults injected from seeded dice (one per fault family, so turning one fault up does not
 * shift the others). The driver alternates: settle pending work, check the invariants on what the
 * step changed, let the central scheduler act (in `central` mode), stop once every need is
 * resolved, else advance time to the next armed callback.
 *
 * `roundtable`: the supervisor graduates needs into the shared queue and every worker runs its
 * round-table loop. `central`: no graduation and no loops; the omniscient CentralScheduler assigns
 * every need. Both keep the supervisor for the rest of its work (leases, marks, the bus).
 */
export async function runSimulation(options: SimOptions): Promise<SimReport> {
  const faults = options.faults ?? NO_FAULTS;
  const scheduler = options.scheduler ?? 'roundtable';
  const until = START + (options.maxVirtualMs ?? 24 * 3_600_000);
  let head = () => 0;
  const time = new VirtualTime(START, () => head());
  const world = buildWorld({
    seed: options.seed,
    needs: options.needs,
    faults,
    time,
    file: faults.supervisor_restart > 0,
  });
  head = () => world.store.events.headSeq();
  try {
    return await simulate(world, time, { ...options, faults, scheduler, until });
  } finally {
    world.close();
  }
}

/** The run itself, on a built world (see runSimulation). */
async function simulate(
  world: SimWorld,
  time: VirtualTime,
  options: SimOptions & { faults: SimFaults; scheduler: SimScheduler; until: number },
): Promise<SimReport> {
  const { faults, scheduler, until } = options;
  const { store, identities, needIds } = world;
  const dice = (salt: number) => new FaultDice(createSeededPrng(options.seed ^ salt), options.seed ^ salt);
  const checker = new InvariantChecker(store, START, {
    perTask: (name) => identities.find((i) => i.name === name)?.budgets.perTask ?? 0,
    perDay: (name) => identities.find((i) => i.name === name)?.budgets.perDay ?? 0,
  });
  const queue = new MemoryTaskQueue({ timers: time.timers });
  const faultyBus =
    faults.bus_loss + faults.bus_dup + faults.bus_reorder > 0
      ? new FaultyNeedBus(new MemoryNeedBus(), {
          dice: dice(0xb005),
          rates: { loss: faults.bus_loss, dup: faults.bus_dup, reorder: faults.bus_reorder },
          timers: time.timers,
        })
      : undefined;
  const bus: NeedBus = faultyBus ?? new MemoryNeedBus();

  let supervisors: SupervisorHost | undefined;
  let central: CentralScheduler | undefined;
  const agents = new SimAgents({
    world,
    time,
    scheduler,
    faults,
    dice: dice(0xfa17),
    agents: options.agents,
    queue,
    bus,
    connector: new EmbeddedConnector(world.deps),
    onDeath: (agentId) => checker.retireAgent(agentId),
    onChange: () => {
      supervisors?.kick();
      central?.notify();
    },
  });
  supervisors = new SupervisorHost({
    time,
    queue,
    bus,
    openStore: world.openStore,
    // Central mode: the central scheduler assigns every need; the supervisor graduates nothing.
    // As mlos run's: a held identity has no capacity (its needs wait or go to another).
    slots: () => {
      if (scheduler === 'central') return [];
      const held = new Set(store.identities.held(time.clock.now()).map((h) => h.name));
      return identities.map((identity) => ({
        identity,
        capacity: held.has(identity.name) ? 0 : agents.aliveOf(identity.name) * identity.capacity,
      }));
    },
    onDeath: (actor) => checker.retireActor(actor),
  });
  central =
    scheduler === 'central'
      ? new CentralScheduler({
          store: store.as('central'),
          agents,
          clock: time.clock,
          timers: time.timers,
          policy: {
            maxAttempts: SIM_TIMING.maxAttempts,
            retryDelayMs: SIM_TIMING.retryDelayMs,
            maxRetryDelayMs: MAX_RETRY_DELAY_MS,
          },
        })
      : undefined;

  await supervisors.start();
  for (let i = 0; i < options.agents; i++) await agents.add(identities[i % identities.length]!);
  if (faults.supervisor_restart > 0 || faults.worker_restart > 0) {
    // Keyed draws (period, seat): the same restarts whatever else happens and whoever schedules.
    const restarts = dice(0x2e57);
    let n = 0;
    const period = () => {
      n++;
      if (restarts.at(`supervisor ${n}`) < faults.supervisor_restart) supervisors.restart();
      for (const agent of agents.list)
        if (agent.alive && restarts.at(`worker ${agent.seat} ${n}`) < faults.worker_restart)
          void agents.restartWorker(agent);
      time.timers.setTimeout(period, FAULT_PERIOD_MS);
    };
    time.timers.setTimeout(period, FAULT_PERIOD_MS);
  }

  let drained = false;
  let steps = 0;
  for (;;) {
    if ((await time.settle(2, SETTLE_MAX_ROUNDS)) >= SETTLE_MAX_ROUNDS)
      checker.fail('work settles', null, `pending work did not settle within ${SETTLE_MAX_ROUNDS} rounds`);
    checker.step();
    if (options.onProgress && ++steps % PROGRESS_STEPS === 0)
      options.onProgress({
        seed: options.seed,
        resolved: checker.resolvedNeeds,
        needs: needIds.length,
        virtualMs: time.clock.now() - START,
      });
    if (checker.violations.length > 0) break;
    if (checker.resolvedNeeds >= needIds.length) {
      drained = true;
      break;
    }
    if (central?.step()) continue;
    if (!time.fireNext(until)) break;
  }
  const drainMs = time.clock.now() - START;

  // Nothing runs any more unless the driver fires a timer: the processes end where they are.
  agents.stop();
  supervisors.stop();
  if (faultyBus) {
    // Every event published, then a snapshot: every subscriber must reach the head, including one
    // that waits behind a hole and one that lost the last events.
    await new BusPublisher(store.as('sim'), faultyBus, time.clock, 1).publish();
    await time.settle();
    const head = store.events.headSeq();
    for (const [i, p] of faultyBus.positions().entries())
      if (p.last !== head || p.waiting > 0)
        checker.fail(
          'bus subscribers converge',
          null,
          `subscriber ${i} at seq ${p.last} of ${head}, ${p.waiting} events held behind a hole`,
        );
  }
  checker.finish(needIds);
  const { ownership: ownersPerNeed, recovery } = ownership(store, needIds, SIM_TIMING.leaseMs);
  const report: SimReport = {
    seed: options.seed,
    scheduler,
    agents: options.agents,
    needs: options.needs,
    faults,
    drainMs,
    drained,
    resolved: checker.resolvedNeeds,
    ownersPerNeed,
    recovery,
    takeovers: agents.takeovers,
    dispatches: central?.stats.dispatches ?? 0,
    refusedStaleWrites: agents.stats.leaseLost,
    duplicateEffects: checker.duplicateEffects,
    tokens: store.budgets.totals().tokens,
    sessions: agents.stats.sessions,
    crashes: agents.stats.crashes,
    hangs: agents.stats.modelFaults.hangs,
    slowSessions: agents.stats.modelFaults.slow,
    supervisorRestarts: supervisors.restarts,
    workerRestarts: agents.stats.workerRestarts,
    outageCalls: agents.stats.modelFaults.outageCalls,
    holds: checker.holds,
    ...(faultyBus && { bus: { ...faultyBus.stats } }),
    orphanings: checker.orphanings,
    events: checker.events,
    headHash: checker.headHash,
    steps: time.fired,
    violations: checker.violations,
    ...(checker.violations.length > 0 && { tail: checker.tail(30) }),
  };
  options.inspect?.(store);
  return report;
}
