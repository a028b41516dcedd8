import type { SessionEvent, SessionResult } from '../../agents/session.js';
import type { Identity } from '../../kernel/identity/schema.js';
import type { NeedBus } from '../../roundtable/need-bus.js';
import type { GuardConnector } from '../connector.js';
import { MemoryTaskQueue } from '../memory-task-queue.js';
import type { TaskQueue } from '../task-queue.js';
import { Worker } from '../worker.js';
import { Epoch } from './epoch.js';
import { type FaultDice, OUTAGE_RETRY_AFTER_MS, outageUntil, type SimFaults } from './faults.js';
import { FaultyProvider, type ModelFault } from './faulty-provider.js';
import { SIM_TIMING, type SimWorld } from './scenario.js';
import type { VirtualTime } from './virtual-time.js';

export type SimScheduler = 'roundtable' | 'central';

/** One agent seat of the run, through the incarnations of its process. */
export interface SimAgent {
  readonly seat: number;
  readonly identity: Identity;
  /** The registered agent of the current incarnation ('' while down). */
  id: string;
  alive: boolean;
  worker: Worker | undefined;
  epoch: Epoch | undefined;
  /** Central mode: the incarnation's own queue, which the central scheduler fills. */
  inbox: MemoryTaskQueue | undefined;
  /** Sessions booted by the seat, through its incarnations. */
  boots: number;
}

export interface SimAgentsOptions {
  readonly world: SimWorld;
  readonly time: VirtualTime;
  readonly scheduler: SimScheduler;
  readonly faults: SimFaults;
  readonly dice: FaultDice;
  /** Agent seats the run starts (the `agent_crash` share is needs / agents). */
  readonly agents: number;
  /** Round-table mode: the queue the supervisor fills, shared by every worker. */
  readonly queue: TaskQueue;
  readonly bus: NeedBus;
  readonly connector: GuardConnector;
  /** An agent process died (crash or restart): it may write nothing from now on. */
  readonly onDeath: (agentId: string) => void;
  /** Something changed that the schedulers want to hear about (an agent up, a session ended). */
  readonly onChange: () => void;
}

/** What happened to the agents during a run. */
export interface AgentStats {
  sessions: number;
  crashes: number;
  workerRestarts: number;
  /** Sessions that ended because the guard refused a write as stale (their lease was lost). */
  leaseLost: number;
  /** Needs claimed by the round-table loops of incarnations that are gone. */
  pastTakeovers: number;
  readonly modelFaults: { hangs: number; slow: number; outageCalls: number };
}

/**
 * The agents of a run: one worker process per agent seat, each incarnation with its own Epoch
 * (timers and sleep), its own scripted model (with the hang and slow faults) and a connector that
 * refuses to start anything once the incarnation is dead. A crash is the process dying at once:
 * its epoch ends, so its sessions freeze where they are (no heartbeat, no write, ever); the seat
 * comes back as a new agent after the restart delay. A worker restart is orderly: the worker
 * drains (its sessions get a few seconds, then are aborted), dies, and starts again as a new agent.
 */
export class SimAgents {
  readonly list: SimAgent[] = [];
  readonly stats: AgentStats = {
    sessions: 0,
    crashes: 0,
    workerRestarts: 0,
    leaseLost: 0,
    pastTakeovers: 0,
    modelFaults: { hangs: 0, slow: 0, outageCalls: 0 },
  };
  readonly #o: SimAgentsOptions;
  #stopped = false;
  /** Sessions booted per need so far, and each task's fault key (`<need>#<rank>`). */
  readonly #boots = new Map<string, number>();
  readonly #faultKey = new Map<string, string>();

  constructor(options: SimAgentsOptions) {
    this.#o = options;
  }

  /** Needs taken over by the round-table loops so far. */
  get takeovers(): number {
    let n = this.stats.pastTakeovers;
    for (const agent of this.list) if (agent.alive) n += agent.worker?.takeovers ?? 0;
    return n;
  }

  /** Agents up now, per identity name. */
  aliveOf(identity: string): number {
    let n = 0;
    for (const a of this.list) if (a.alive && a.identity.name === identity) n++;
    return n;
  }

  async add(identity: Identity): Promise<SimAgent> {
    const agent: SimAgent = {
      seat: this.list.length,
      identity,
      id: '',
      alive: false,
      worker: undefined,
      epoch: undefined,
      inbox: undefined,
      boots: 0,
    };
    this.list.push(agent);
    await this.#launch(agent);
    return agent;
  }

  /** The agent's process dies now (see the class comment); a new one comes after the restart delay. */
  crash(agent: SimAgent): void {
    // Down already (crashed, or restarted and not back yet); a draining worker can still crash.
    if (!agent.epoch || agent.epoch.ended) return;
    this.stats.crashes++;
    this.#die(agent);
    // The loop and the consumer stop taking work; running sessions stay frozen (never aborted).
    void agent.worker?.close(Number.POSITIVE_INFINITY);
    this.#o.time.timers.setTimeout(() => void this.#launch(agent), SIM_TIMING.restartMs);
  }

  /** The worker drains, stops, and starts again as a new agent. */
  async restartWorker(agent: SimAgent): Promise<void> {
    if (!agent.alive || !agent.worker) return;
    this.stats.workerRestarts++;
    agent.alive = false;
    const { worker, epoch } = agent;
    await worker.close(SIM_TIMING.workerDrainMs);
    // Crashed while draining: the crash has ended it and arranged its return.
    if (agent.epoch !== epoch || epoch?.ended) return;
    // An orderly exit deregisters its agent, as the runtime does on close.
    this.#o.world.store.agents.stop(agent.id);
    this.#die(agent);
    this.#o.time.timers.setTimeout(() => void this.#launch(agent), SIM_TIMING.workerStartMs);
  }

  /** The end of the run: every incarnation ends, nothing restarts. */
  stop(): void {
    this.#stopped = true;
    for (const agent of this.list) agent.epoch?.end();
  }

  #die(agent: SimAgent): void {
    agent.alive = false;
    this.stats.pastTakeovers += agent.worker?.takeovers ?? 0;
    agent.epoch?.end();
    if (agent.id) this.#o.onDeath(agent.id);
  }

  async #launch(agent: SimAgent): Promise<void> {
    if (this.#stopped) return;
    const { world, time, scheduler } = this.#o;
    const { identity } = agent;
    const record = world.store.agents.register(identity.name, identity.hash, 'sim', identity.capacity);
    const epoch = new Epoch(time.timers, `agent ${record.id}`);
    agent.id = record.id;
    agent.epoch = epoch;
    agent.inbox = scheduler === 'central' ? new MemoryTaskQueue({ timers: epoch.timers }) : undefined;
    const provider = new FaultyProvider({
      inner: world.providerFor(epoch.sleep, (taskId) => this.#faultKey.get(taskId) ?? taskId),
      decide: (taskId) => this.#modelFault(taskId),
      latencyMs: SIM_TIMING.latencyMs,
      sleep: epoch.sleep,
      counts: this.stats.modelFaults,
      outage: {
        until: (name) => outageUntil(this.#o.dice, this.#o.faults.outage, name, time.clock.now()),
        retryAfterMs: OUTAGE_RETRY_AFTER_MS,
      },
    });
    const worker = new Worker({
      name: `sim-${identity.name}-${agent.seat}-${record.id}`,
      queue: agent.inbox ?? this.#o.queue,
      connector: epochConnector(this.#o.connector, epoch),
      identities: [identity.name],
      concurrency: identity.capacity,
      providerFor: () => ({ provider, model: 'sim' }),
      heartbeatMs: SIM_TIMING.heartbeatMs,
      agentIdFor: () => record.id,
      clock: time.clock,
      timers: epoch.timers,
      sessionTime: { clock: time.clock, sleep: epoch.sleep, timers: epoch.timers },
      ...(scheduler === 'roundtable' && {
        takeover: {
          bus: this.#o.bus,
          seats: [{ identity, agentId: record.id }],
          checkMs: SIM_TIMING.checkMs,
        },
      }),
      onSessionEvent: (taskId, event) => this.#onSessionEvent(agent, epoch, taskId, event),
      onSessionEnd: (taskId, result) => {
        this.#faultKey.delete(taskId);
        this.#onSessionEnd(epoch, result);
      },
    });
    agent.worker = worker;
    agent.alive = true;
    await worker.start();
    this.#o.onChange();
  }

  /**
   * A session booted: its faults are keyed by its need and its rank among the need's sessions
   * (see FaultDice.at), so both schedulers meet the same ones. A crash lands within two model
   * latencies of the boot (mid-session, or just after it).
   */
  #onSessionEvent(agent: SimAgent, epoch: Epoch, taskId: string, event: SessionEvent): void {
    if (event.kind !== 'boot' || epoch.ended) return;
    this.stats.sessions++;
    const needId = this.#o.world.store.tasks.get(taskId)?.needId ?? taskId;
    const rank = (this.#boots.get(needId) ?? 0) + 1;
    this.#boots.set(needId, rank);
    const key = `${needId}#${rank}`;
    this.#faultKey.set(taskId, key);
    const { dice, faults, time } = this.#o;
    agent.boots++;
    if (dice.at(`crash ${key}`) < faults.crash || this.#agentCrashDue(agent)) {
      const at = Math.floor(dice.at(`crash-at ${key}`) * 2 * SIM_TIMING.latencyMs);
      time.timers.setTimeout(() => {
        if (agent.epoch === epoch) this.crash(agent);
      }, at);
    }
  }

  /**
   * The `agent_crash` fault: a seat drawn (keyed by the seat, the same under both schedulers) dies
   * once, during its n-th session, n uniform over its share of the work (⌈needs / agents⌉).
   */
  #agentCrashDue(agent: SimAgent): boolean {
    const { dice, faults, world } = this.#o;
    if (!(faults.agent_crash > 0) || dice.at(`agent-crash ${agent.seat}`) >= faults.agent_crash) return false;
    const share = Math.max(1, Math.ceil(world.needIds.length / this.#o.agents));
    return agent.boots === 1 + Math.floor(dice.at(`agent-crash-at ${agent.seat}`) * share);
  }

  /** The model fault of a task's session (after its boot): hang, slow (2–100×) or none. */
  #modelFault(taskId: string): ModelFault {
    const key = this.#faultKey.get(taskId) ?? taskId;
    const { dice, faults } = this.#o;
    if (dice.at(`hang ${key}`) < faults.hang) return { kind: 'hang' };
    if (dice.at(`slow ${key}`) < faults.slow)
      return { kind: 'slow', factor: 2 + Math.floor(dice.at(`factor ${key}`) * 99) };
    return { kind: 'none' };
  }

  #onSessionEnd(epoch: Epoch, result: SessionResult | null): void {
    if (result?.outcome === 'lease_lost') this.stats.leaseLost++;
    if (!epoch.ended) this.#o.onChange();
  }
}

/** The connector of one incarnation: once it is dead, it starts nothing (a dead process cannot). */
function epochConnector(inner: GuardConnector, epoch: Epoch): GuardConnector {
  return {
    startTask: (taskId, agentId) => (epoch.ended ? Promise.resolve(null) : inner.startTask(taskId, agentId)),
    needState: (needId) => inner.needState(needId),
    claimAndStart: (needId, identity, agentId) =>
      epoch.ended
        ? Promise.resolve({ refused: `agent ${agentId} is dead`, eligibleAt: null })
        : inner.claimAndStart(needId, identity, agentId),
  };
}
