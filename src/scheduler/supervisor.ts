import { type Identity, TAKEOVER_DEFAULTS } from '../kernel/identity/schema.js';
import type { NeedBus } from '../roundtable/need-bus.js';
import { escalation, escalationFor, unmet } from '../roundtable/protocol.js';
import { type Clock, MlosError, type Store, systemClock } from '../store/index.js';
import { BusPublisher } from './bus-publisher.js';
import { Graduation } from './graduation.js';
import { type Logger, realTimers, silentLogger, type Timers } from './logger.js';
import type { TaskQueue } from './task-queue.js';

export interface SupervisorOptions {
  readonly store: Store;
  readonly queue: TaskQueue;
  readonly bus: NeedBus;
  /** The identities that may get new work now, with their capacity (drifted and paused excluded). */
  readonly slots: () => readonly { identity: Identity; capacity: number }[];
  readonly clock?: Clock;
  readonly timers?: Timers;
  readonly log?: Logger;
  /** Pause between ticks when nothing kicks the loop, in ms. */
  readonly loopMs?: number;
  /** How often SQLite and the queue are reconciled, in ms. */
  readonly reconcileMs?: number;
  /** A supervisor lock older than this is presumed dead, in ms. */
  readonly lockStaleMs?: number;
  /** Failed or lost attempts before a need is escalated instead of retried. */
  readonly maxAttempts?: number;
  /** A task whose heartbeat is older than this when its lease expires was dead, else hung. */
  readonly deadAfterMs?: number;
  /**
   * Events between two snapshots of the need state on the bus (default 1,000). A snapshot reads
   * every open or active need, so it costs as much as the graph is large: after one that held more
   * needs than this, the next waits for as many events as it held, up to four times this. A
   * subscriber that resyncs replays the stream after it, which keeps far more events (10,000 in
   * memory, ~100,000 in Redis).
   */
  readonly snapshotEvery?: number;
  /**
   * After a tick that enqueued jobs, publish on the bus this many ms later instead of at once
   * (default 0: at once). For workers in this process on a remote queue: their queue client wakes
   * for the job just enqueued, and the publication, and the round table's reading of it, would
   * run on the same thread in the meantime (the pickup took ~1 ms longer at p50).
   */
  readonly publishDelayMs?: number;
  /** The run the tasks belong to: its token budget, when it has one, parks needs like a daily one. */
  readonly runId?: string | null;
  /** The wait before a failed need's next attempt, doubled per failure (default 0: at once). */
  readonly retryDelayMs?: number;
  /** Called after each tick (views compilation, metrics, progress display). */
  readonly afterTick?: (stats: TickStats) => void;
  /** Called when the supervisor must stop (another process took its lock); the loop has stopped. */
  readonly onFatal?: (error: Error) => void;
}

export interface TickStats {
  readonly graduated: number;
  readonly enqueued: number;
  readonly expired: number;
  readonly escalated: number;
  readonly published: number;
  /** No queued or running task, and nothing that could be graduated. */
  readonly idle: boolean;
  /** Actionable needs that no runnable identity's scope covers. */
  readonly unroutable: number;
  /** Actionable needs waiting for the next UTC day: their identities' daily budgets are spent. */
  readonly budgetBlocked: number;
  /** Claims that took a need over from another task, published in this tick. */
  readonly takeovers: number;
}

type State = 'new' | 'running' | 'closing' | 'closed';

/**
 * The supervisor: one per database. On every tick it expires leases (a task without progress is
 * lost), keeps the round table's marks (unmet since when; orphaned once unmet past the escalation
 * time), escalates needs that failed too often, graduates actionable needs into tasks (task and
 * outbox row in one transaction), drains the outbox into the queue right after, and publishes
 * the event log on the need bus in seq order. It reconciles SQLite with the queue at start, on
 * every queue reconnect and on a timer, because a Redis without persistence can lose its jobs.
 */
export class Supervisor {
  readonly #o: Required<Omit<SupervisorOptions, 'afterTick' | 'onFatal'>> &
    Pick<SupervisorOptions, 'afterTick' | 'onFatal'>;
  #state: State = 'new';
  #timer: { cancel(): void } | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #lastReconcile = 0;
  #lastUpkeep = Number.NEGATIVE_INFINITY;
  readonly #publisher: BusPublisher;
  #lastStats: TickStats | undefined;
  readonly #graduation: Graduation;

  constructor(options: SupervisorOptions) {
    this.#o = {
      clock: systemClock,
      timers: realTimers,
      log: silentLogger,
      loopMs: 500,
      reconcileMs: 10_000,
      lockStaleMs: 15_000,
      maxAttempts: 3,
      deadAfterMs: 15_000,
      snapshotEvery: 1000,
      publishDelayMs: 0,
      runId: null,
      retryDelayMs: 0,
      ...options,
    };
    this.#publisher = new BusPublisher(this.#o.store, this.#o.bus, this.#o.clock, this.#o.snapshotEvery);
    this.#graduation = new Graduation({
      store: this.#o.store,
      log: this.#o.log,
      slots: this.#o.slots,
      maxAttempts: this.#o.maxAttempts,
      loopMs: this.#o.loopMs,
      runId: this.#o.runId,
      retryDelayMs: this.#o.retryDelayMs,
    });
  }

  get state(): State {
    return this.#state;
  }

  get lastStats(): TickStats | undefined {
    return this.#lastStats;
  }

  /** Takes the database's supervisor lock, reconciles, and starts the loop. */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`supervisor is ${this.#state}`);
    const { store, queue } = this.#o;
    store.scheduling.acquireLock(this.#o.lockStaleMs);
    this.#state = 'running';
    queue.onReconnect(() => {
      this.#o.log.warn({ queue: queue.kind }, 'queue reconnected: reconciling SQLite with the queue');
      this.#lastReconcile = 0;
      // A Redis restarted without persistence lost the bus snapshot too: publish a fresh one.
      this.#publisher.forceSnapshot();
      this.kick();
    });
    await this.#reconcile();
    this.kick();
  }

  /** Runs a tick as soon as possible (after the current one). */
  kick(): void {
    if (this.#state !== 'running') return;
    if (this.#ticking) {
      this.#again = true;
      return;
    }
    this.#timer?.cancel();
    this.#ticking = this.#tickSafely().finally(() => {
      this.#ticking = undefined;
      if (this.#state !== 'running') return;
      if (this.#again) {
        this.#again = false;
        this.kick();
      } else {
        this.#timer = this.#o.timers.setTimeout(() => this.kick(), this.#o.loopMs);
      }
    });
  }

  /** Stops the loop (after the current tick) and releases the lock. Idempotent. */
  async close(): Promise<void> {
    if (this.#state === 'closed' || this.#state === 'closing') return;
    if (this.#state === 'new') {
      // Never started (e.g. refused the lock): it owns nothing and must not touch the bus cursor.
      this.#state = 'closed';
      return;
    }
    this.#state = 'closing';
    this.#timer?.cancel();
    await this.#ticking;
    this.#publisher.cancelSoon();
    try {
      await this.#publisher.publish();
      this.#o.store.scheduling.releaseLock();
    } catch (error) {
      this.#o.log.warn({ err: error }, 'closing the supervisor');
    }
    this.#state = 'closed';
  }

  async #tickSafely(): Promise<void> {
    try {
      // A kick (a task ended, a need was written) ticks at once; the round table's marks over
      // every open need only need the loop's pace.
      await this.tick({ upkeep: this.#o.clock.now() - this.#lastUpkeep >= this.#o.loopMs });
    } catch (error) {
      if (error instanceof MlosError && error.code === 'supervisor_lock_lost') {
        this.#o.onFatal?.(error);
        return;
      }
      this.#o.log.error({ err: error }, 'supervisor tick failed; retrying on the next tick');
    }
  }

  /**
   * One pass of the loop. Public for tests and the simulator. `upkeep: false` only marks the
   * unmet needs not marked yet; clearing marks and escalating, which read the state of every open
   * need, wait for a tick with upkeep (the loop runs one per interval).
   */
  async tick(options: { upkeep?: boolean } = {}): Promise<TickStats> {
    const { store, clock, log } = this.#o;
    const now = clock.now();
    // Renewed once a second at most, and at least five times within the staleness limit.
    if (!store.scheduling.heartbeatLock(Math.min(1000, this.#o.lockStaleMs / 5))) {
      log.error({}, 'another process took the supervisor lock: stopping');
      this.#state = 'closing';
      throw new MlosError(
        'supervisor_lock_lost',
        'another process took the supervisor lock of this database',
      );
    }
    const expired = this.#expireLeases(now);
    if (now - this.#lastReconcile >= this.#o.reconcileMs) {
      await this.#reconcile();
      // Reservations of ended tasks past their hold: no call of theirs can still be in flight.
      store.budgets.releaseStale(now);
    }
    const upkeep = options.upkeep ?? true;
    if (upkeep) this.#lastUpkeep = now;
    const orphaned = this.#markUnmet(now, upkeep);
    const { graduated, escalated, unroutable, routable, budgetBlocked } = this.#graduation.pass(now);
    const enqueued = await this.#drainOutbox();
    let { published, takeovers } =
      enqueued > 0 && this.#o.publishDelayMs > 0 ? this.#publishSoon() : await this.#publisher.publish();
    const late = this.#publisher.takeDeferred();
    published += late.published;
    takeovers += late.takeovers;
    const work = store.scheduling.pendingWork();
    const stats: TickStats = {
      graduated,
      enqueued,
      expired,
      escalated: escalated + orphaned,
      published,
      takeovers,
      idle: work.queued === 0 && work.running === 0 && work.active === 0 && routable === 0,
      unroutable,
      budgetBlocked,
    };
    this.#lastStats = stats;
    this.#o.afterTick?.(stats);
    return stats;
  }

  /** Schedules the publication (see `publishDelayMs`); nothing is published by this tick itself. */
  #publishSoon(): { published: number; takeovers: number } {
    this.#publisher.publishSoon(this.#o.publishDelayMs, this.#o.timers, (error) => {
      this.#o.log.warn({ err: error }, 'bus publication failed; the next tick publishes again');
      this.kick();
    });
    return { published: 0, takeovers: 0 };
  }

  /** Running tasks whose lease expired become lost; the need is unmet again and will be retried. */
  #expireLeases(now: number): number {
    const { store, log } = this.#o;
    let count = 0;
    for (const task of store.scheduling.expiredRunning(now)) {
      const dead = task.heartbeatAt === null || now - task.heartbeatAt > this.#o.deadAfterMs;
      const reason = dead
        ? 'dead: no heartbeat until its lease expired'
        : 'hung: heartbeats without progress until its lease expired';
      try {
        store.tasks.transition(task.id, 'lost', { error: reason });
        count++;
        log.warn(
          { task: task.id, need: task.needId, identity: task.identity, reason },
          'lease expired: task lost',
        );
      } catch (error) {
        log.debug({ err: error, task: task.id }, 'task ended while expiring its lease');
      }
    }
    return count;
  }

  /**
   * The round table's marks, as the protocol defines unmet: an unmet need gets `unmet_since = now`
   * (a `need.flagged` event) in the tick that first sees it, before graduation, so that watchers
   * of the bus see it marked; a marked need that is no longer unmet loses the mark (a claim clears
   * it itself); an unmet need marked longer ago than the escalation time of the identities that
   * watch its tags (the shortest; the default when nobody watches them) with no claimant is
   * escalated: flagged orphaned and raised to priority 0. Returns how many were escalated.
   */
  #markUnmet(now: number, upkeep: boolean): number {
    const { store, log } = this.#o;
    const identities = this.#o.slots().map((s) => s.identity);
    const fallback = { escalation: TAKEOVER_DEFAULTS.escalation };
    const shortest = Math.min(fallback.escalation, ...identities.map((i) => i.takeover.escalation));
    let escalated = 0;
    // One commit for all the marks; each is a savepoint (see Graduation.pass).
    store.transaction(() => {
      for (const need of store.scheduling.unmetUpkeep(now, now - shortest, { unmarkedOnly: !upkeep })) {
        try {
          if (!unmet(need, now)) {
            if (need.unmetSince !== null) store.needs.setFlags(need.id, { unmetSince: null });
          } else if (need.unmetSince === null) {
            store.needs.setFlags(need.id, { unmetSince: now });
          } else if (escalation(need, escalationFor(identities, need.tags) ?? fallback, now)) {
            store.transaction(() => {
              store.needs.setFlags(need.id, { orphaned: true });
              if (need.priority > 0) store.needs.update(need.id, { priority: 0 });
            });
            escalated++;
            log.warn(
              { need: need.id, unmetSince: need.unmetSince, tags: need.tags },
              'need escalated: unmet past its escalation time with no claimant',
            );
          }
        } catch (error) {
          log.debug({ err: error, need: need.id }, 'need changed while marking it');
        }
      }
    });
    return escalated;
  }

  /**
   * Pushes outbox rows into the queue (jobId = task id, so a repeat is a no-op), then deletes
   * them. A batch is enqueued at once, not one round trip after another: on a busy process each
   * Redis reply waits behind the sessions' work, and a graduation of many tasks took as many
   * waits. Rows that could not be enqueued stay for the next tick.
   */
  async #drainOutbox(): Promise<number> {
    const { store, queue, log } = this.#o;
    let total = 0;
    for (;;) {
      const rows = store.scheduling.outbox(500);
      if (rows.length === 0) return total;
      const results = await Promise.allSettled(
        rows.map((row) =>
          queue.enqueue(
            { taskId: row.taskId, needId: row.needId, identity: row.queue, attempt: row.attempt },
            // Rung for the first time (see TaskQueue.enqueue). A task whose add was ignored (an
            // ended job of a crash kept its id) is rung again by the next reconciliation: at
            // start right after this drain, else within reconcileMs.
            { fresh: true },
          ),
        ),
      );
      const done = rows.filter((_, i) => results[i]!.status === 'fulfilled').map((row) => row.id);
      store.scheduling.drained(done);
      total += done.length;
      const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed.length > 0) {
        log.warn(
          { err: failed[0]!.reason, failed: failed.length },
          'could not enqueue; the outbox keeps these tasks for the next tick',
        );
        return total;
      }
    }
  }

  /**
   * SQLite is the truth: outbox rows are drained again, and tasks queued in SQLite but missing
   * from the queue (lost with a Redis restart) are enqueued again.
   */
  async #reconcile(): Promise<void> {
    const { store, queue, log } = this.#o;
    this.#lastReconcile = this.#o.clock.now();
    await this.#drainOutbox();
    const queued = store.scheduling.queued();
    const byIdentity = new Map<string, ReadonlySet<string>>();
    let restored = 0;
    for (const task of queued) {
      let held = byIdentity.get(task.identity);
      if (!held) {
        held = await queue.held(task.identity);
        byIdentity.set(task.identity, held);
      }
      if (held.has(task.id)) continue;
      await queue.enqueue({
        taskId: task.id,
        needId: task.needId,
        identity: task.identity,
        attempt: task.attempt,
      });
      restored++;
    }
    if (restored) log.warn({ restored }, 'reconciliation: re-enqueued tasks missing from the queue');
  }
}
