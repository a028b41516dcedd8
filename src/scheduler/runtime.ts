import { existsSync } from 'node:fs';
import { createProvider, createProviders, type ProviderOverrides } from '../agents/providers/index.js';
import { IdentityWatcher, resolveRunnableIdentities, syncIdentities } from '../kernel/identity/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import { preloadTokenizer } from '../kernel/tokens.js';
import {
  createGuardDeps,
  createKernelCompiler,
  DEFAULT_AWARENESS_MAX_AGE_MS,
  type GuardDeps,
  GuardHttpServer,
} from '../mcp/index.js';
import type { NeedBus } from '../roundtable/need-bus.js';
import { Checkpointer, type Store, UserError } from '../store/index.js';
import { EmbeddedConnector } from './connector.js';
import { type Logger, silentLogger } from './logger.js';
import { Supervisor, type TickStats } from './supervisor.js';
import type { TaskQueue } from './task-queue.js';
import { VIEW_THREAD, ViewKeeper } from './view-keeper.js';
import { takeoverSeats, Worker } from './worker.js';

export interface RuntimeConfig {
  readonly store: Store;
  readonly queue: TaskQueue;
  readonly bus: NeedBus;
  /** The identities folder to pin and watch (skipped when it does not exist). */
  readonly identitiesDir: string;
  /** Host workers in this process (embedded); false when only remote workers run tasks. */
  readonly embeddedWorkers: boolean;
  readonly concurrency: number;
  readonly leaseMs: number;
  readonly heartbeatMs: number;
  readonly loopMs: number;
  readonly maxAttempts: number;
  readonly providerOverrides: ProviderOverrides;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Serve the guard over HTTP (distributed mode, /healthz, /metrics). */
  readonly listen?: {
    host: string;
    port: number;
    operatorToken: string;
    workerToken: string;
    tokensConfigured: boolean;
    namespace: string;
  };
  readonly compileViews: boolean;
  /** Compile views in the view thread (default) or, `false`, in this one: for benchmarks. */
  readonly viewThread?: boolean;
  /**
   * Checkpoint the WAL in a worker thread instead of in whichever commit fills it (see
   * Checkpointer): what `mlos run` does, so no graduation or claim waits for a checkpoint.
   */
  readonly backgroundCheckpoints?: boolean;
  /** Run the round-table loop in the embedded worker (default true): agents take unmet needs over. */
  readonly takeover?: boolean;
  /** The takeover loop's longest pause between evaluations, in ms (default 1000). */
  readonly takeoverCheckMs?: number;
  readonly runTokenLimit: number | null;
  /** The wait before a failed need's next attempt, doubled per failure (default 0: at once). */
  readonly retryDelayMs?: number;
  readonly log?: Logger;
  readonly afterTick?: (stats: TickStats) => void;
  /** The run must stop: another process took the supervisor lock. */
  readonly onFatal?: (error: Error) => void;
  readonly metricsRoute?: GuardHttpServerExtraRoute;
}

export type GuardHttpServerExtraRoute = ConstructorParameters<typeof GuardHttpServer>[1]['extraRoutes'];

/** A supervisor lock whose heartbeat is older than this is presumed dead. */
const LOCK_STALE_MS = 15_000;

/**
 * With embedded workers on BullMQ, how long after an enqueue the bus publication waits (see
 * SupervisorOptions.publishDelayMs): an idle pickup takes ~2–5 ms, and the round table's delays
 * are seconds, so 5 ms costs nothing a watcher of the bus could notice.
 */
const PUBLISH_AFTER_ENQUEUE_MS = 5;

/**
 * The composition root of `mlos run`: store, guard, supervisor, queue, bus, identity watcher and
 * (embedded) workers, wired once. CLI files only parse flags and call this.
 */
export class Runtime {
  readonly store: Store;
  readonly supervisor: Supervisor;
  readonly deps: GuardDeps;
  readonly runId: string;
  readonly #config: RuntimeConfig;
  readonly #log: Logger;
  #worker: Worker | undefined;
  #watcher: IdentityWatcher | undefined;
  #checkpointer: Checkpointer | undefined;
  #http: GuardHttpServer | undefined;
  #url: string | undefined;
  #agents: { id: string; identity: string }[] = [];
  /** The holds logged (identity: until), so each is logged once. */
  readonly #holdsLogged = new Map<string, number>();
  #agentTimer: NodeJS.Timeout | undefined;
  readonly #views: ViewKeeper | undefined;
  /** Whether the supervisor started: a run refused at start has no views to bring up to date. */
  #supervised = false;
  #closed = false;
  #kickPending = false;

  constructor(config: RuntimeConfig) {
    this.#config = config;
    this.#log = config.log ?? silentLogger;
    this.store = config.store.as('supervisor');
    // The lock first: a refused second run must write nothing (no pins, no run, no views).
    this.store.scheduling.acquireLock(LOCK_STALE_MS);
    if (existsSync(config.identitiesDir)) {
      const report = syncIdentities(this.store, config.identitiesDir);
      for (const e of report.errors) this.#log.error({ err: e.message }, 'identity file does not lint');
      for (const d of report.drift) this.#log.warn({ identity: d.name }, d.error.message);
    }
    this.runId = this.store.budgets.startRun(config.runTokenLimit);
    this.#views = config.compileViews
      ? new ViewKeeper({
          store: this.store,
          log: this.#log,
          ...(config.viewThread !== false && { thread: VIEW_THREAD }),
        })
      : undefined;
    this.deps = createGuardDeps(this.store, {
      leaseMs: config.leaseMs,
      runId: this.runId,
      maxAttempts: config.maxAttempts,
      retryDelayMs: config.retryDelayMs ?? 0,
      compiler: createKernelCompiler(this.store, { awarenessMaxAgeMs: DEFAULT_AWARENESS_MAX_AGE_MS }),
      log: (message, error) => this.#log.error({ err: error }, message),
    });
    this.supervisor = new Supervisor({
      store: this.store,
      queue: config.queue,
      bus: config.bus,
      slots: () => this.slots(),
      loopMs: config.loopMs,
      maxAttempts: config.maxAttempts,
      runId: this.runId,
      retryDelayMs: config.retryDelayMs ?? 0,
      deadAfterMs: Math.max(3 * config.heartbeatMs, 1000),
      // Workers in this process on Redis: let them pick a job up before the bus publication.
      ...(config.embeddedWorkers &&
        config.queue.kind === 'bullmq' && { publishDelayMs: PUBLISH_AFTER_ENQUEUE_MS }),
      log: this.#log,
      afterTick: (stats) => {
        this.#views?.maybeCompile();
        config.afterTick?.(stats);
      },
      onFatal: (error) => {
        this.#log.error({ err: error }, 'the supervisor stopped');
        config.onFatal?.(error);
      },
    });
  }

  get url(): string | undefined {
    return this.#url;
  }

  /**
   * Whether this run's token budget (`runTokenLimit`) cannot cover one more task of any runnable
   * identity (`budgets.per_task`): nothing more can graduate or be taken over in this run.
   */
  runBudgetSpent(): boolean {
    const limit = this.store.budgets.runLimit(this.runId);
    if (limit === null) return false;
    const left = limit - this.store.budgets.used('run', this.runId);
    const identities = resolveRunnableIdentities(this.store).identities;
    return identities.length > 0 && identities.every((i) => i.budgets.perTask > left);
  }

  /**
   * The identities runnable now, each with the capacity its live agents offer (0 without one, and
   * 0 while the identity is held: its needs stay routable and wait for the hold to end).
   */
  slots(): { identity: Identity; capacity: number }[] {
    const runnable = resolveRunnableIdentities(this.store).identities;
    const now = this.store.clock.now();
    const held = this.#noteHolds(now);
    const since = now - Math.max(5 * this.#config.heartbeatMs, 5000);
    const capacity = new Map<string, number>();
    for (const agent of this.store.agents.live(since)) {
      capacity.set(agent.identity, (capacity.get(agent.identity) ?? 0) + agent.capacity);
    }
    // Identities without a live agent stay in the list with no capacity: their needs are
    // routable (someone may start a worker for them) but get no task until an agent registers.
    return runnable.map((identity) => ({
      identity,
      capacity: held.has(identity.name) ? 0 : (capacity.get(identity.name) ?? 0),
    }));
  }

  /** The identities held at `now`; logs each hold once when graduation first sees it, and its end. */
  #noteHolds(now: number): Set<string> {
    const held = new Set<string>();
    for (const hold of this.store.identities.held(now)) {
      held.add(hold.name);
      if (this.#holdsLogged.get(hold.name) === hold.until) continue;
      this.#holdsLogged.set(hold.name, hold.until);
      this.#log.warn(
        { identity: hold.name, until: new Date(hold.until).toISOString(), reason: hold.reason },
        `identity ${hold.name} is held: its model was unavailable, so it gets no new work until the hold ends (its needs wait, or go to another identity whose scope covers them; a failure of this kind counts a quarter of an attempt); mlos identity resume ${hold.name} ends it now`,
      );
    }
    for (const name of this.#holdsLogged.keys()) {
      if (held.has(name)) continue;
      this.#holdsLogged.delete(name);
      this.#log.info({ identity: name }, `identity ${name} is no longer held: it gets work again`);
    }
    return held;
  }

  async start(): Promise<void> {
    const { queue, listen } = this.#config;
    // A run with nothing to run refuses at once, before it starts anything or goes over the backlog.
    const identities = this.#config.embeddedWorkers ? resolveRunnableIdentities(this.store).identities : [];
    if (this.#config.embeddedWorkers && identities.length === 0) {
      throw new UserError(
        'no runnable identity: add identity files (mlos init) and accept drifted ones (mlos identity accept)',
      );
    }
    // Each model set up now: a missing API key refuses the run here, not in every session.
    const providers = createProviders(identities, this.#config.env, this.#config.providerOverrides);
    // The guard counts tokens for every boot payload: load the tokenizer before the first one.
    preloadTokenizer();
    if (this.#config.backgroundCheckpoints && this.store.path !== ':memory:') {
      this.store.deferCheckpoints();
      this.#checkpointer = Checkpointer.start(this.store.path, {
        onError: (message) => this.#log.warn({ error: message }, 'background WAL checkpoint failed'),
      });
    }
    if (listen) {
      this.#http = new GuardHttpServer(this.deps, {
        ...listen,
        ...(this.#config.metricsRoute && { extraRoutes: this.#config.metricsRoute }),
      });
      this.#url = (await this.#http.start()).url;
    }
    if (existsSync(this.#config.identitiesDir)) {
      this.#watcher = new IdentityWatcher({
        store: this.store,
        dir: this.#config.identitiesDir,
        onChange: (report) => {
          for (const d of report.drift) this.#log.warn({ identity: d.name }, d.error.message);
        },
        onError: (error) => this.#log.warn({ err: error }, 'identity watcher'),
      });
      this.#watcher.start();
    }
    await this.supervisor.start();
    this.#supervised = true;
    if (this.#config.embeddedWorkers) {
      for (const identity of identities) {
        const agent = this.store.agents.register(identity.name, identity.hash, 'embedded', identity.capacity);
        this.#agents.push({ id: agent.id, identity: identity.name });
      }
      this.#agentTimer = setInterval(() => {
        // Each agent's load: the sessions its identity runs here (mlos status shows it).
        for (const a of this.#agents)
          this.store.agents.heartbeat(a.id, this.#worker?.runningOf(a.identity) ?? 0);
      }, this.#config.heartbeatMs);
      this.#agentTimer.unref();
      this.#worker = new Worker({
        queue,
        connector: new EmbeddedConnector(this.deps),
        identities: identities.map((i) => i.name),
        concurrency: this.#config.concurrency,
        heartbeatMs: this.#config.heartbeatMs,
        log: this.#log,
        providerFor: (identity) => {
          const key = `${identity.name}:${identity.hash}`;
          let entry = providers.get(key);
          if (!entry) {
            entry = createProvider(identity.model, this.#config.env, this.#config.providerOverrides);
            providers.set(key, entry);
          }
          return entry;
        },
        agentIdFor: (identity) => this.#agents.find((a) => a.identity === identity)?.id,
        clock: this.store.clock,
        ...(this.#config.takeover !== false && {
          takeover: {
            bus: this.#config.bus,
            seats: takeoverSeats(identities, this.#agents, this.#log),
            ...(this.#config.takeoverCheckMs !== undefined && { checkMs: this.#config.takeoverCheckMs }),
          },
        }),
        onSessionEnd: () => this.#kickSoon(),
      });
      await this.#worker.start();
      this.supervisor.kick();
    }
  }

  /**
   * A tick on the next turn of the event loop: the sessions that end in one turn share one tick
   * (each tick runs a graduation pass over the open needs), instead of one tick each.
   */
  #kickSoon(): void {
    if (this.#kickPending) return;
    this.#kickPending = true;
    setImmediate(() => {
      this.#kickPending = false;
      this.supervisor.kick();
    });
  }

  get runningSessions(): number {
    return this.#worker?.running ?? 0;
  }

  /**
   * Graceful stop: no new graduations, running sessions get `drainMs` to finish (then are
   * aborted and their leases released), then queue, bus, guard and lock are closed. Idempotent.
   */
  async close(drainMs = 30_000): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.supervisor.close();
    await this.#worker?.close(drainMs);
    clearInterval(this.#agentTimer);
    // Sessions that did not finish in time: their tasks are cancelled (the lease is revoked with
    // them), so the next run retries the needs at once instead of waiting for expiry. Cancelled,
    // not lost: a stop is no failure of the need, and must not spend one of its attempts.
    for (const task of this.store.tasks.listByStatus(['running'])) {
      if (this.#agents.some((a) => a.id === task.agentId)) {
        this.store.tasks.cancel(task.id, 'the run stopped before the session finished');
      }
    }
    for (const a of this.#agents) this.store.agents.stop(a.id);
    await this.#watcher?.close();
    await this.#http?.close();
    await this.#config.queue.close(5000);
    await this.#config.bus.close();
    this.store.budgets.stopRun(this.runId);
    this.store.scheduling.releaseLock();
    await this.#views?.close(this.#supervised);
    await this.#checkpointer?.close();
  }
}
