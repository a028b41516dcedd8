import type { Clock, GraduationCandidate, RetryPolicy, Store, Timers } from '../../store/index.js';
import type { SimAgent, SimAgents } from './sim-agents.js';

export interface CentralSchedulerOptions {
  /** The scheduler's store handle (its writes are attributed to it). */
  readonly store: Store;
  readonly agents: SimAgents;
  readonly clock: Clock;
  readonly timers: Timers;
  /**
   * Graduation's retry rules, which it follows too: a need that failed waits out its retry delay,
   * and one dead-lettered after `maxAttempts` failures is not dispatched again.
   */
  readonly policy: RetryPolicy;
}

/** What the central scheduler did during a run. */
export interface CentralStats {
  /** Tasks it created and handed to an agent. */
  dispatches: number;
  /** Running tasks it declared lost the moment their lease expired. */
  expired: number;
  /** Queued tasks of dead or held agents it cancelled (to dispatch the need again). */
  cancelled: number;
}

/**
 * The omniscient central scheduler: the baseline the round table is measured against. It sees the
 * whole state at once (every need, every lease, which agent processes are alive) and, whenever
 * something changed and an agent is free, assigns each actionable need without a live task, most
 * urgent first (priority, then age; with graduation's retry delay and dead letter), to the best
 * free agent: the most tags in its primary scope, then in its peripheral scope, then the least
 * loaded. No grace, no takeover loop, no queue: it creates the task and hands it to that agent's
 * own inbox, and the agent's worker starts it through the guard like any job (the same claim,
 * lease and fencing token as every other path).
 *
 * What it cannot do is break a live lease (nobody can): a crashed agent's need is dispatched again
 * at the instant its lease expires — the scheduler wakes up then, declares the task lost and
 * assigns the need in the same step — rather than at the supervisor's next tick.
 */
export class CentralScheduler {
  readonly stats: CentralStats = { dispatches: 0, expired: 0, cancelled: 0 };
  readonly #o: CentralSchedulerOptions;
  /** Tasks handed to an agent and not started yet, by agent id. */
  readonly #pending = new Map<string, Set<string>>();
  #lastHead = -1;
  /** Something changed that writes no event (an agent freed, came up or died): look again. */
  #dirty = true;
  /** The holds seen by the last step (see #holds). */
  #heldKey = '';
  #wake: { at: number; cancel(): void } | undefined;

  constructor(options: CentralSchedulerOptions) {
    this.#o = options;
  }

  /**
   * One scheduling pass, when it can matter (an agent is free, and the state changed or a lease
   * it waits for expired). Returns true when it wrote something (the driver settles again).
   */
  step(): boolean {
    const { store, clock } = this.#o;
    const now = clock.now();
    const held = this.#holds(now);
    // First, whatever else happens: a held agent's tasks would otherwise wait past the hold.
    const cancelled = this.#cancelHeldJobs(held);
    const free = this.#freeAgents(held);
    const head = store.events.headSeq();
    if (
      free.length === 0 ||
      (!this.#dirty && head === this.#lastHead && now < (this.#wake?.at ?? Number.POSITIVE_INFINITY))
    )
      return cancelled > 0;
    this.#dirty = false;
    this.#wake?.cancel();
    this.#wake = undefined;
    const expired = this.#expireLeases(now);
    let wrote = cancelled + expired.size + this.#cancelOrphanedJobs();
    for (const need of this.#candidates(now, expired)) {
      if (free.length === 0) break;
      const agent = pickAgent(need, free, (a) => this.#load(a));
      if (!agent) continue;
      this.#dispatch(need.id, agent);
      wrote++;
      if (this.#load(agent) >= agent.identity.capacity) free.splice(free.indexOf(agent), 1);
    }
    this.#armWake(now);
    this.#lastHead = store.events.headSeq();
    return wrote > 0;
  }

  /** An agent's capacity or liveness changed (a session ended, it came up or died). */
  notify(): void {
    this.#dirty = true;
  }

  /**
   * The identities held now. A hold that starts or ends writes no event the step would see: a
   * change of the set makes the step look again, and the earliest end gets a timer, so time
   * stops there even when every agent is held and idle.
   */
  #holds(now: number): Set<string> {
    const holds = this.#o.store.identities.held(now);
    const key = holds.map((h) => `${h.name}@${h.until}`).join(',');
    if (key !== this.#heldKey) {
      this.#heldKey = key;
      this.#dirty = true;
      const end = Math.min(...holds.map((h) => h.until));
      if (Number.isFinite(end)) this.#o.timers.setTimeout(() => {}, end - now);
    }
    return new Set(holds.map((h) => h.name));
  }

  /** Agents up, with room, whose identity is not held (the guard would not start their tasks). */
  #freeAgents(held: ReadonlySet<string>): SimAgent[] {
    return this.#o.agents.list.filter(
      (a) => a.alive && a.inbox && !held.has(a.identity.name) && this.#load(a) < a.identity.capacity,
    );
  }

  /** Sessions running on the agent plus tasks handed to it that have not started yet. */
  #load(agent: SimAgent): number {
    const pending = this.#pending.get(agent.id);
    if (pending)
      for (const taskId of pending)
        if (this.#o.store.tasks.get(taskId)?.status !== 'queued') pending.delete(taskId);
    return (agent.worker?.running ?? 0) + (pending?.size ?? 0);
  }

  #dispatch(needId: string, agent: SimAgent): void {
    const task = this.#o.store.tasks.create(needId, agent.identity.name);
    let pending = this.#pending.get(agent.id);
    if (!pending) {
      pending = new Set();
      this.#pending.set(agent.id, pending);
    }
    pending.add(task.id);
    this.stats.dispatches++;
    void agent.inbox!.enqueue({
      taskId: task.id,
      needId,
      identity: agent.identity.name,
      attempt: task.attempt,
    });
  }

  /**
   * Graduation's candidates, under its rules (no dead-lettered need, none whose retry delay after
   * a failure has not passed), plus the needs whose lease this step expired: those are dispatched
   * at once, as a round-table takeover claims a need at its lease expiry (the guard counts only
   * ended attempts). Most urgent first.
   */
  #candidates(now: number, expired: ReadonlySet<string>): GraduationCandidate[] {
    const { store, policy } = this.#o;
    const page = store.scheduling.graduationCandidates(now, 1000, policy);
    if (expired.size === 0) return page;
    const listed = new Set(page.map((c) => c.id));
    const lost = store.scheduling
      .graduationCandidates(now, 1000)
      .filter(
        (c) => expired.has(c.id) && !listed.has(c.id) && !(c.orphaned && c.failures >= policy.maxAttempts),
      );
    return [...page, ...lost].sort(
      (a, b) =>
        a.priority - b.priority || a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0),
    );
  }

  /** Running tasks whose lease has expired are lost now: their needs (returned) are free to dispatch again. */
  #expireLeases(now: number): Set<string> {
    const { store } = this.#o;
    const needs = new Set<string>();
    for (const task of store.scheduling.expiredRunning(now)) {
      store.tasks.transition(task.id, 'lost', {
        error: 'lease expired: dispatched again by the central scheduler',
      });
      this.stats.expired++;
      needs.add(task.needId);
    }
    return needs;
  }

  /** Tasks handed to an agent that died before starting them are cancelled, to be dispatched again. */
  #cancelOrphanedJobs(): number {
    return this.#cancelPending(
      (agent) => !agent.alive,
      (agent) => `agent ${agent.id} died before starting it`,
    );
  }

  /**
   * Tasks handed to an agent whose identity was held before it started them are cancelled, to be
   * dispatched again when the hold ends: the guard will not start them, and their job is gone.
   */
  #cancelHeldJobs(held: ReadonlySet<string>): number {
    if (held.size === 0) return 0;
    return this.#cancelPending(
      (agent) => held.has(agent.identity.name),
      (agent) => `identity ${agent.identity.name} was held before the task started`,
    );
  }

  /** Cancels the tasks still queued that were handed to the agents `which` picks; forgets them all. */
  #cancelPending(which: (agent: SimAgent) => boolean, reason: (agent: SimAgent) => string): number {
    let n = 0;
    for (const agent of this.#o.agents.list) {
      const pending = this.#pending.get(agent.id);
      if (!pending || !which(agent)) continue;
      for (const taskId of pending) {
        if (this.#o.store.tasks.get(taskId)?.status === 'queued') {
          this.#o.store.tasks.cancel(taskId, reason(agent));
          this.stats.cancelled++;
          n++;
        }
      }
      this.#pending.delete(agent.id);
    }
    return n;
  }

  /**
   * Wakes up when the earliest lease of a running task expires (its holder may be dead or hung)
   * or a failed need's retry delay ends, whichever comes first.
   */
  #armWake(now: number): void {
    const { store, timers } = this.#o;
    let at = store.scheduling.nextRetryAt(now, this.#o.policy) ?? Number.POSITIVE_INFINITY;
    for (const task of store.tasks.listByStatus(['running'])) {
      const expiresAt = store.leases.get(task.needId)?.expiresAt;
      if (expiresAt != null && expiresAt > now) at = Math.min(at, expiresAt);
    }
    if (at === Number.POSITIVE_INFINITY) return;
    const handle = timers.setTimeout(() => {}, at - now);
    this.#wake = { at, cancel: () => handle.cancel() };
  }
}

/**
 * The best free agent for a need: most tags in its primary scope, then in its peripheral scope
 * (none: not in its view), then the lowest load relative to capacity, then the lowest seat.
 */
export function pickAgent(
  need: Pick<GraduationCandidate, 'tags'>,
  free: readonly SimAgent[],
  load: (agent: SimAgent) => number,
): SimAgent | undefined {
  let best: { agent: SimAgent; score: number; load: number } | undefined;
  for (const agent of free) {
    const { primary, peripheral } = agent.identity.scope;
    const score =
      need.tags.filter((t) => primary.includes(t)).length * 1000 +
      need.tags.filter((t) => peripheral.includes(t)).length;
    if (score === 0) continue;
    const l = load(agent) / agent.identity.capacity;
    if (!best || score > best.score || (score === best.score && l < best.load))
      best = { agent, score, load: l };
  }
  return best?.agent;
}
