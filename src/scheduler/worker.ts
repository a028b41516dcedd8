import { hostname } from 'node:os';
import type { LlmProvider, ToolDefinition } from '../agents/provider.js';
import type { Sleep } from '../agents/retry.js';
import {
  runAgentSession,
  type SessionEvent,
  type SessionLimits,
  type SessionResult,
} from '../agents/session.js';
import type { Identity } from '../kernel/identity/schema.js';
import type { NeedBus } from '../roundtable/need-bus.js';
import { TakeoverLoop } from '../roundtable/takeover-loop.js';
import { type Clock, realTimers, systemClock, type Timers } from '../store/index.js';
import type { GuardConnector, StartedTask } from './connector.js';
import { type Logger, silentLogger } from './logger.js';
import type { Consumer, JobEnd, QueuedJob, TaskQueue } from './task-queue.js';
import { createTakeoverPort } from './worker-takeover.js';

/** The round-table loop of a worker: what it watches and which of its agents claim. */
export interface WorkerTakeoverOptions {
  readonly bus: NeedBus;
  /** The agents that take needs over: their identity (scopes, takeover, capacity) and agent id. */
  readonly seats: readonly { readonly identity: Identity; readonly agentId: string }[];
  /** The longest pause between two evaluations, in ms (see TakeoverLoop). */
  readonly checkMs?: number;
}

export interface WorkerOptions {
  readonly queue: TaskQueue;
  readonly connector: GuardConnector;
  /** The identities this worker hosts. */
  readonly identities: readonly string[];
  /** Sessions at once across its identities. */
  readonly concurrency: number;
  /** The provider and model of an identity (its model field, after overrides). */
  readonly providerFor: (identity: Identity) => { provider: LlmProvider; model: string };
  readonly limits?: Partial<SessionLimits>;
  readonly heartbeatMs?: number;
  readonly log?: Logger;
  readonly name?: string;
  /** The registered agent of an identity on this worker, recorded on the tasks it runs. */
  readonly agentIdFor?: (identity: string) => string | undefined;
  /** Run a round-table loop that takes unmet needs over (absent: the queue only). */
  readonly takeover?: WorkerTakeoverOptions;
  readonly clock?: Clock;
  readonly timers?: Timers;
  /**
   * Passed to each session: its clock (default: the connector's, the guard's time), its sleep
   * (retry back-off) and the heartbeat timers (default: real time). The simulator sets all three
   * to virtual time.
   */
  readonly sessionTime?: { readonly clock?: Clock; readonly sleep?: Sleep; readonly timers?: Timers };
  readonly onSessionEvent?: (taskId: string, event: SessionEvent) => void;
  readonly onSessionEnd?: (taskId: string, result: SessionResult | null) => void;
}

/**
 * A worker runs agent sessions: one per job it takes from the queue (the job is only a doorbell:
 * a job whose task is no longer queued ends as superseded) and, with `takeover`, one per need its
 * round-table loop claims (started at once, no queue round trip).
 */
export class Worker {
  readonly name: string;
  readonly #o: WorkerOptions;
  readonly #log: Logger;
  #consumer: Consumer | undefined;
  #loop: TakeoverLoop | undefined;
  /** Running sessions by task id, whichever way they started. */
  readonly #active = new Map<string, { identity: string; needId: string }>();
  /** Sessions the loop started (no queue job owns them), and what aborts them on close. */
  readonly #claimed = new Set<Promise<void>>();
  readonly #abort = new AbortController();
  /** The guard's tools per identity hash, listed by the first session of each (see runAgentSession). */
  readonly #toolCache = new Map<string, readonly ToolDefinition[]>();

  constructor(options: WorkerOptions) {
    this.#o = options;
    this.#log = options.log ?? silentLogger;
    this.name = options.name ?? `${hostname()}:${process.pid}`;
  }

  get running(): number {
    return this.#active.size;
  }

  /** Needs taken over by this worker's round-table loop since it started. */
  get takeovers(): number {
    return this.#loop?.takeovers ?? 0;
  }

  /** The identity's running sessions on this worker. */
  runningOf(identity: string): number {
    let n = 0;
    for (const a of this.#active.values()) if (a.identity === identity) n++;
    return n;
  }

  /** True while a session of `identity` runs on the need here. */
  isRunning(identity: string, needId: string): boolean {
    for (const a of this.#active.values()) if (a.identity === identity && a.needId === needId) return true;
    return false;
  }

  /** Starts taking jobs and, with `takeover`, the round-table loop (resolves once it subscribed). */
  async start(): Promise<void> {
    if (this.#consumer) return;
    this.#consumer = this.#o.queue.consume(this.#o.identities, (job, signal) => this.#run(job, signal), {
      concurrency: this.#o.concurrency,
    });
    const takeover = this.#o.takeover;
    if (takeover && takeover.seats.length > 0) {
      await this.#o.connector.prepareClaims?.(
        takeover.seats.map((s) => ({ identity: s.identity.name, agentId: s.agentId })),
      );
      this.#loop = new TakeoverLoop({
        bus: takeover.bus,
        seats: takeover.seats,
        port: createTakeoverPort(this, {
          connector: this.#o.connector,
          concurrency: this.#o.concurrency,
          capacity: new Map(takeover.seats.map((s) => [s.identity.name, s.identity.capacity])),
          run: (started) => this.#runClaimed(started),
        }),
        clock: this.#o.clock ?? this.#o.connector.clock ?? systemClock,
        timers: this.#o.timers ?? realTimers,
        log: this.#log,
        ...(takeover.checkMs !== undefined && { checkMs: takeover.checkMs }),
      });
      await this.#loop.start();
    }
  }

  /**
   * Stops taking jobs and claiming needs; running sessions get `timeoutMs` to finish, then are
   * aborted. Logs how many needs the loop took over. Idempotent.
   */
  async close(timeoutMs = 30_000): Promise<void> {
    const consumer = this.#consumer;
    this.#consumer = undefined;
    const loop = this.#loop;
    this.#loop = undefined;
    if (loop) {
      await loop.close();
      this.#log.info({ worker: this.name, takeovers: loop.takeovers }, 'round-table loop stopped');
    }
    await Promise.all([consumer?.close(timeoutMs), this.#drainClaimed(timeoutMs)]);
  }

  async #drainClaimed(timeoutMs: number): Promise<void> {
    if (this.#claimed.size === 0) return;
    const timers = this.#o.timers ?? realTimers;
    let timer: { cancel(): void } | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = timers.setTimeout(resolve, timeoutMs);
    });
    await Promise.race([Promise.all(this.#claimed), timeout]);
    timer?.cancel();
    this.#abort.abort();
    await Promise.all(this.#claimed);
  }

  async #run(job: QueuedJob, signal: AbortSignal): Promise<JobEnd> {
    const started = await this.#o.connector.startTask(job.taskId, this.#o.agentIdFor?.(job.identity));
    if (!started) {
      this.#log.debug(
        { task: job.taskId },
        'job superseded: its task is no longer queued, or its identity is paused, drifted or held (the task waits, queued, and is rung again)',
      );
      return 'superseded';
    }
    await this.#session(started, signal);
    return 'done';
  }

  /** Runs a session the loop claimed, in the background; it counts as running from now on. */
  #runClaimed(started: StartedTask): void {
    const session = this.#session(started, this.#abort.signal).finally(() => this.#claimed.delete(session));
    this.#claimed.add(session);
  }

  /** Runs one session to its end; never rejects. Counted as running from the synchronous start. */
  #session(started: StartedTask, signal: AbortSignal): Promise<void> {
    this.#active.set(started.taskId, { identity: started.identity.name, needId: started.needId });
    return this.#play(started, signal);
  }

  async #play(started: StartedTask, signal: AbortSignal): Promise<void> {
    let result: SessionResult | null = null;
    try {
      const { provider, model } = this.#o.providerFor(started.identity);
      // The lease end is the guard's time: a session compares it with the guard's clock.
      const sessionClock = this.#o.sessionTime?.clock ?? this.#o.connector.clock;
      result = await runAgentSession({
        client: started.client,
        provider,
        model,
        task: {
          id: started.taskId,
          needId: started.needId,
          identity: started.identity,
          needTitle: started.needTitle,
          needTags: started.needTags,
          leaseUntil: started.leaseUntil,
        },
        signal,
        toolCache: this.#toolCache,
        ...(this.#o.limits && { limits: this.#o.limits }),
        ...(this.#o.heartbeatMs !== undefined && { heartbeatMs: this.#o.heartbeatMs }),
        ...(sessionClock && { clock: sessionClock }),
        ...(this.#o.sessionTime?.sleep && { sleep: this.#o.sessionTime.sleep }),
        ...(this.#o.sessionTime?.timers && { timers: this.#o.sessionTime.timers }),
        ...(this.#o.onSessionEvent && { onEvent: (e) => this.#o.onSessionEvent!(started.taskId, e) }),
      });
      this.#log.info(
        {
          task: started.taskId,
          need: started.needId,
          identity: started.identity.name,
          outcome: result.outcome,
          turns: result.turns,
        },
        `session ended: ${result.outcome}`,
      );
    } catch (error) {
      this.#log.error(
        { err: error, task: started.taskId },
        'session crashed; its lease will expire and the need be retried',
      );
    } finally {
      this.#active.delete(started.taskId);
      await started.close().catch(() => undefined);
      this.#loop?.poke();
      this.#o.onSessionEnd?.(started.taskId, result);
    }
  }
}

/**
 * The seats of a worker's round-table loop: each hosted agent whose identity may use claim_need
 * (an identity without it takes nothing over: the guard would refuse its claims anyway).
 */
export function takeoverSeats(
  identities: readonly Identity[],
  agents: readonly { readonly id: string; readonly identity: string }[],
  log: Logger = silentLogger,
): { identity: Identity; agentId: string }[] {
  const seats: { identity: Identity; agentId: string }[] = [];
  for (const identity of identities) {
    const agent = agents.find((a) => a.identity === identity.name);
    if (!agent) continue;
    if (!identity.tools.includes('claim_need')) {
      log.info({ identity: identity.name }, 'identity does not list claim_need: it takes no needs over');
      continue;
    }
    seats.push({ identity, agentId: agent.id });
  }
  return seats;
}
