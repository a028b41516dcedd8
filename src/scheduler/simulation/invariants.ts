import { eventHash, GENESIS_HASH } from '../../store/event-log.js';
import { type Store, type StoredEvent, utcDay } from '../../store/index.js';
import { LeaseShadow, type ShadowTask, TASK_ACTOR } from './lease-shadow.js';

/** A broken invariant: which, where (the need), and when (virtual ms since the start). */
export interface Violation {
  readonly invariant: string;
  readonly needId: string | null;
  readonly detail: string;
  readonly atMs: number;
}

export interface BudgetLimitsOf {
  /** Tokens one task of the identity may use. */
  readonly perTask: (identity: string) => number;
  /** Tokens the identity may use per UTC day. */
  readonly perDay: (identity: string) => number;
}

/** How many events of the trace are kept for a failing seed's report. */
const TRACE_KEEP = 200;

/**
 * The simulator's invariants, checked after every step and incrementally: `step()` reads only the
 * events appended since the previous step and checks what they touched.
 *  - the event chain verifies: each new event continues the previous one (seq, prev_hash) and its
 *    hash matches its contents;
 *  - at most one live lease per need, and every write a session commits about its need carries
 *    the current fencing token (see LeaseShadow), the lease rows agreeing with the replay;
 *  - no need resolved twice (`need.resolved` events per need);
 *  - no budget exceeded: each task running during the step within its identity's per-task budget,
 *    each identity that spent within its daily budget (reservations write no events, so the
 *    running tasks are read on every step);
 *  - no write by an ended incarnation: nothing by a dead supervisor's actor, no task started by a
 *    dead agent, nothing written by the sessions of a dead agent;
 *  - a held identity starts nothing: no task of an identity starts between its `identity.held`
 *    and the hold's end (or its `identity.released`).
 * At the end: the whole chain verifies again from genesis, every need is resolved (all are
 * resolvable in the scenario) and none is left orphaned.
 */
export class InvariantChecker {
  readonly violations: Violation[] = [];
  readonly #store: Store;
  readonly #start: number;
  readonly #limits: BudgetLimitsOf;
  readonly #shadow = new LeaseShadow();
  readonly #resolved = new Map<string, number>();
  /** Ended incarnations: the seq of the last event written before each ended. */
  readonly #retiredActors = new Map<string, number>();
  readonly #retiredAgents = new Map<string, number>();
  readonly #trace: StoredEvent[] = [];
  #seq = 0;
  #prevHash = GENESIS_HASH;
  #events = 0;
  #orphanings = 0;
  /** Identities held now, as the events tell: until when. */
  readonly #held = new Map<string, number>();
  #holds = 0;

  constructor(store: Store, start: number, limits: BudgetLimitsOf) {
    this.#store = store;
    this.#start = start;
    this.#limits = limits;
  }

  /** Needs resolved at least once so far. */
  get resolvedNeeds(): number {
    return this.#resolved.size;
  }

  /** Needs resolved more than once (duplicate effects). */
  get duplicateEffects(): number {
    let n = 0;
    for (const count of this.#resolved.values()) if (count > 1) n++;
    return n;
  }

  /** Escalations: needs flagged orphaned (unmet past the escalation time). */
  get orphanings(): number {
    return this.#orphanings;
  }

  /** Holds of identities whose model was unavailable (`identity.held` events). */
  get holds(): number {
    return this.#holds;
  }

  /** The hash of the last event checked. */
  get headHash(): string {
    return this.#prevHash;
  }

  /** Events checked so far. */
  get events(): number {
    return this.#events;
  }

  /** The tasks as the events tell them (for the report's metrics). */
  get tasks(): ReadonlyMap<string, ShadowTask> {
    return this.#shadow.tasks;
  }

  /** An incarnation ended now: any event written under `actor` from now on breaks an invariant. */
  retireActor(actor: string): void {
    this.#retiredActors.set(actor, this.#store.events.headSeq());
  }

  /** An agent process died now: it may start no task, and its sessions may write nothing more. */
  retireAgent(agentId: string): void {
    this.#retiredAgents.set(agentId, this.#store.events.headSeq());
  }

  /** Reads the new events and checks what they changed. */
  step(): void {
    const budgeted = new Map<string, ShadowTask>();
    for (const task of this.#shadow.runningTasks()) budgeted.set(task.id, task);
    const touched = new Set<string>();
    while (this.#store.events.headSeq() > this.#seq) {
      const events = this.#store.events.since(this.#seq, 2000);
      if (events.length === 0) break;
      for (const event of events) {
        this.#apply(event);
        if (event.needId) touched.add(event.needId);
        const task = event.kind.startsWith('task.') ? this.#shadow.tasks.get(event.entity) : undefined;
        if (task) budgeted.set(task.id, task);
      }
    }
    const at = this.#now();
    for (const needId of touched) {
      const breach = this.#shadow.check(needId, this.#store.leases.get(needId));
      if (breach) this.#fail(breach.invariant, needId, breach.detail, at);
    }
    for (const task of this.#shadow.runningTasks()) budgeted.set(task.id, task);
    this.#checkBudgets(budgeted.values(), at);
  }

  #apply(event: StoredEvent): void {
    this.#events++;
    this.#trace.push(event);
    if (this.#trace.length > 2 * TRACE_KEEP) this.#trace.splice(0, this.#trace.length - TRACE_KEEP);
    const at = event.at - this.#start;
    if (event.seq !== this.#seq + 1 || event.prevHash !== this.#prevHash) {
      this.#fail(
        'event chain verifies',
        event.needId,
        `event #${event.seq} does not continue #${this.#seq}`,
        at,
      );
    } else if (eventHash(event) !== event.hash) {
      this.#fail('event chain verifies', event.needId, `event #${event.seq}: its hash does not match`, at);
    }
    this.#seq = event.seq;
    this.#prevHash = event.hash;
    this.#checkIncarnation(event, at);
    for (const breach of this.#shadow.apply(event))
      this.#fail(breach.invariant, breach.needId, breach.detail, at);
    this.#checkHold(event, at);
    if (event.kind === 'need.flagged' && (event.payload as { orphaned?: boolean }).orphaned === true)
      this.#orphanings++;
    if (event.kind === 'need.resolved' && event.needId) {
      const count = (this.#resolved.get(event.needId) ?? 0) + 1;
      this.#resolved.set(event.needId, count);
      if (count > 1) this.#fail('need resolved once', event.needId, `resolved ${count} times`, at);
    }
  }

  #checkIncarnation(event: StoredEvent, at: number): void {
    const rule = 'no write by an ended incarnation';
    const dead = (ended: number | undefined) => ended !== undefined && event.seq > ended;
    if (dead(this.#retiredActors.get(event.actor))) {
      this.#fail(rule, event.needId, `${event.kind} #${event.seq} by ${event.actor}, which had ended`, at);
      return;
    }
    if (event.kind === 'task.started') {
      const agentId = (event.payload as { agentId?: string | null }).agentId;
      if (agentId && dead(this.#retiredAgents.get(agentId)))
        this.#fail(rule, event.needId, `task ${event.entity} started by dead agent ${agentId}`, at);
      return;
    }
    const writer = TASK_ACTOR.exec(event.actor)?.[1];
    const agentId = writer ? this.#shadow.tasks.get(writer)?.agentId : null;
    if (agentId && dead(this.#retiredAgents.get(agentId)))
      this.#fail(rule, event.needId, `${event.kind} #${event.seq} by a session of dead agent ${agentId}`, at);
  }

  #checkHold(event: StoredEvent, at: number): void {
    if (event.kind === 'identity.held') {
      this.#holds++;
      this.#held.set(event.entity, (event.payload as { until: number }).until);
    } else if (event.kind === 'identity.released') {
      this.#held.delete(event.entity);
    } else if (event.kind === 'task.started') {
      const identity = this.#shadow.tasks.get(event.entity)?.identity;
      const until = identity === undefined ? undefined : this.#held.get(identity);
      if (until !== undefined && event.at < until)
        this.#fail(
          'a held identity starts nothing',
          event.needId,
          `task ${event.entity} of ${identity} started ${until - event.at} ms before its hold ended`,
          at,
        );
    }
  }

  #checkBudgets(tasks: Iterable<ShadowTask>, at: number): void {
    const identities = new Set<string>();
    for (const task of tasks) {
      identities.add(task.identity);
      const used = this.#store.budgets.used('task', task.id);
      const limit = this.#limits.perTask(task.identity);
      if (used > limit)
        this.#fail('no budget exceeded', task.needId, `task ${task.id} used ${used} > ${limit} tokens`, at);
    }
    const day = utcDay(this.#store.clock.now());
    for (const identity of identities) {
      const used = this.#store.budgets.used('day', day, identity);
      const limit = this.#limits.perDay(identity);
      if (used > limit)
        this.#fail('no budget exceeded', null, `${identity} used ${used} > ${limit} tokens on ${day}`, at);
    }
  }

  /** The checks of the end of a run: the chain from genesis, and every need resolved, none orphaned. */
  finish(needIds: readonly string[]): void {
    this.step();
    const at = this.#now();
    const verify = this.#store.events.verify();
    if (!verify.ok) this.#fail('event chain verifies', null, JSON.stringify(verify), at);
    for (const id of needIds) {
      const need = this.#store.needs.require(id);
      if (need.status !== 'resolved') this.#fail('every need resolved', id, `status ${need.status}`, at);
      if (need.orphaned) this.#fail('none orphaned', id, 'still orphaned', at);
    }
  }

  /** Records a violation found outside the event log (the driver's own checks). */
  fail(invariant: string, needId: string | null, detail: string): void {
    this.#fail(invariant, needId, detail, this.#now());
  }

  #fail(invariant: string, needId: string | null, detail: string, atMs: number): void {
    this.violations.push({ invariant, needId, detail, atMs });
  }

  #now(): number {
    return this.#store.clock.now() - this.#start;
  }

  /** The last `n` events, one line each, for a failing seed. */
  tail(n = 30): string[] {
    return this.#trace
      .slice(-n)
      .map(
        (e) =>
          `#${e.seq} +${e.at - this.#start}ms ${e.actor} ${e.kind} ${e.entity}${e.needId && e.needId !== e.entity ? ` need=${e.needId}` : ''} ${JSON.stringify(e.payload)}`,
      );
  }
}
