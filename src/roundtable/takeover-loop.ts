import type { Identity } from '../kernel/identity/schema.js';
import type { Clock, Timers } from '../store/index.js';
import type { BusEvent, BusSubscription, NeedBus, NeedSnapshot, NeedState } from './need-bus.js';
import { claimEligibility, scopeClass } from './protocol.js';
import { changed, RetryTimes, urgency } from './takeover-state.js';

/** One agent a worker hosts: the identity it runs as and its registered agent id. */
export interface TakeoverSeat {
  readonly identity: Pick<Identity, 'name' | 'scope' | 'takeover'>;
  readonly agentId: string;
}

/** How a claim through the guard ended: a session started, or the guard refused (a normal outcome). */
export type ClaimAttempt =
  | { readonly started: true; readonly taskId: string }
  | {
      readonly started: false;
      /** The guard's reason (another agent won, not eligible yet on its clock…). */
      readonly reason: string;
      /** When the guard said the claim becomes eligible, if it said (ms since the epoch). */
      readonly eligibleAt: number | null;
    };

/**
 * What the takeover loop needs from the worker that hosts it ("claim and run"): its free
 * capacity, the sessions it runs, need states from the guard, and an atomic claim through the
 * guard that starts the session at once. The scheduler implements it.
 */
export interface TakeoverPort {
  /**
   * Sessions that may start now: `worker` across every identity (concurrency minus running
   * sessions), `identity` for this one (its capacity minus its running sessions). Claims the loop
   * has in flight are not counted here; the loop subtracts them itself.
   */
  freeCapacity(identity: string): { readonly worker: number; readonly identity: number };
  /** True while this worker runs a session of `identity` on the need, whichever way it started. */
  isRunning(identity: string, needId: string): boolean;
  /** The need's current state (from the guard), or undefined when it does not exist. */
  needState(needId: string): Promise<NeedState | undefined>;
  /**
   * Claims the need through the guard as the seat's agent (the round table's rules, applied by the
   * guard on its own clock) and, when it wins, starts the session without waiting for it to end.
   * Resolves once the claim is decided; the session is counted as running by then. Rejects only on
   * unexpected failures (the guard unreachable…).
   */
  claimAndRun(needId: string, seat: TakeoverSeat): Promise<ClaimAttempt>;
}

/** The logging the loop does; the scheduler's Logger (and pino's) satisfies it. */
export interface TakeoverLog {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface TakeoverLoopOptions {
  readonly bus: NeedBus;
  readonly port: TakeoverPort;
  /** The agents this worker hosts; the loop claims for each of them. */
  readonly seats: readonly TakeoverSeat[];
  readonly clock: Clock;
  readonly timers: Timers;
  readonly log?: TakeoverLog;
  /**
   * The longest pause between two evaluations, in ms: the loop wakes at the earliest time a
   * claim becomes eligible, and at least this often (capacity may have freed, a lease expired
   * without an event). Also the pause before retrying a need after a refused claim. Default 1000.
   */
  readonly checkMs?: number;
  /** Need states read at once while refreshing. Default 8. */
  readonly refreshConcurrency?: number;
}

export const DEFAULT_TAKEOVER_CHECK_MS = 1000;

const silent: TakeoverLog = { info() {}, warn() {}, debug() {} };

type State = 'new' | 'running' | 'closed';

/**
 * A worker's round-table loop (DESIGN §6): it watches the Layer 2 view of each hosted agent — the
 * needs whose tags meet its identity's scopes — from the NeedBus, and claims what goes unmet.
 *
 * The view is a map of NeedState by id: replaced from every snapshot (start, gaps), and refreshed
 * through the port for each need an event names (events carry no state). The protocol's
 * `claimEligibility` is evaluated on every delta and on a timer set to the earliest time a claim
 * becomes eligible (or `checkMs`, whichever comes first), and eligible needs are claimed, most
 * urgent first, within the free capacity. An agent never has two claims of one need in flight,
 * never claims a need it is running, and after a refusal waits `checkMs` (or until the time the
 * guard named) unless an event or a fresh read shows the need changed. The guard is the arbiter: a claim the loop
 * believed eligible may be refused (another agent won, a lease was renewed, clocks differ), which
 * is logged at debug. One subscription serves every seat of the worker.
 */
export class TakeoverLoop {
  readonly #o: TakeoverLoopOptions;
  readonly #log: TakeoverLog;
  readonly #checkMs: number;
  readonly #needs = new Map<string, NeedState>();
  /** Needs named by events whose state is still to be read. */
  readonly #stale = new Set<string>();
  #refreshing = false;
  /** Claims in flight, by `${agentId}\0${needId}`, and how many per identity. */
  readonly #inFlight = new Set<string>();
  readonly #inFlightNeeds = new Set<string>();
  readonly #inFlightBy = new Map<string, number>();
  readonly #claims = new Set<Promise<void>>();
  /**
   * Per need, per seat (by index): not before this time (ms), after a refused claim, or when the
   * protocol named it for the need's current state; cleared when the need's state changes. `min`
   * lets an evaluation pass over a need in one comparison while no seat may claim it.
   */
  readonly #retry = new Map<string, RetryTimes>();
  #subscription: BusSubscription | undefined;
  #timer: { cancel(): void; at: number } | undefined;
  #evaluateQueued = false;
  #state: State = 'new';
  #takeovers = 0;

  constructor(options: TakeoverLoopOptions) {
    this.#o = options;
    this.#log = options.log ?? silent;
    this.#checkMs = options.checkMs ?? DEFAULT_TAKEOVER_CHECK_MS;
  }

  /** Needs this worker took over through the loop (sessions started) since it started. */
  get takeovers(): number {
    return this.#takeovers;
  }

  /** The loop's current view: the state of every need in some seat's view, by id. */
  get view(): ReadonlyMap<string, NeedState> {
    return this.#needs;
  }

  /** Subscribes to the bus; the first snapshot arrives before this resolves (with MemoryNeedBus). */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new Error(`takeover loop is ${this.#state}`);
    this.#state = 'running';
    const subscription = await this.#o.bus.subscribe({
      onEvents: (events) => this.#onEvents(events),
      onResync: (snapshot) => this.#onResync(snapshot),
    });
    if (this.#state !== 'running') {
      await subscription.close();
      return;
    }
    this.#subscription = subscription;
    this.#schedule();
  }

  /** Evaluates again soon: call it when capacity frees up (a session ended). */
  poke(): void {
    this.#schedule();
  }

  /**
   * Stops watching and claiming, and waits for the claims in flight to settle (a claim won by then
   * has started its session in the worker, which drains it). Idempotent.
   */
  async close(): Promise<void> {
    if (this.#state !== 'closed') {
      this.#state = 'closed';
      this.#timer?.cancel();
      this.#timer = undefined;
      const subscription = this.#subscription;
      this.#subscription = undefined;
      await subscription?.close();
    }
    await Promise.all(this.#claims);
  }

  #inView(need: NeedState): boolean {
    if (need.status === 'resolved' || need.status === 'dropped') return false;
    return this.#o.seats.some((seat) => scopeClass(seat.identity, need.tags) !== null);
  }

  #onResync(snapshot: NeedSnapshot): void {
    this.#needs.clear();
    this.#retry.clear();
    for (const need of snapshot.needs) if (this.#inView(need)) this.#needs.set(need.id, need);
    this.#schedule();
  }

  #onEvents(events: readonly BusEvent[]): void {
    for (const event of events) {
      if (event.needId === null) continue;
      this.#stale.add(event.needId);
      // A real change: a refusal's back-off no longer applies.
      this.#retry.delete(event.needId);
    }
    void this.#refresh();
  }

  /** Reads the state of every stale need, a few at a time, evaluating after each round. */
  async #refresh(): Promise<void> {
    if (this.#refreshing) return;
    this.#refreshing = true;
    try {
      while (this.#stale.size > 0 && this.#state === 'running') {
        const ids = [...this.#stale].slice(0, this.#o.refreshConcurrency ?? 8);
        for (const id of ids) this.#stale.delete(id);
        const states = await Promise.all(
          ids.map((id) =>
            this.#o.port.needState(id).then(
              (state) => ({ id, state, ok: true as const }),
              (error: unknown) => {
                this.#log.warn({ err: error, need: id }, 'takeover loop: could not read the need state');
                return { id, state: undefined, ok: false as const };
              },
            ),
          ),
        );
        for (const { id, state, ok } of states) {
          if (!ok) continue;
          const before = this.#needs.get(id);
          if (state && this.#inView(state)) this.#needs.set(id, state);
          else this.#needs.delete(id);
          // The guard's answer differs from what a refusal was based on: decide on the new one.
          if (!before || !state || changed(before, state)) this.#retry.delete(id);
        }
        this.#schedule();
      }
    } finally {
      this.#refreshing = false;
    }
  }

  /** Evaluates in a microtask, once however many deltas arrive in the current one. */
  #schedule(): void {
    if (this.#evaluateQueued || this.#state !== 'running') return;
    this.#evaluateQueued = true;
    queueMicrotask(() => {
      this.#evaluateQueued = false;
      if (this.#state === 'running') this.#evaluate();
    });
  }

  #evaluate(): void {
    const now = this.#o.clock.now();
    let wake = now + this.#checkMs;
    // Busy (the common case under load): nothing to claim; a session's end pokes the loop.
    if (!this.#o.seats.some((seat) => this.#free(seat) > 0)) {
      this.#arm(wake, now);
      return;
    }
    const candidates: { seat: TakeoverSeat; need: NeedState }[] = [];
    const seats = this.#o.seats;
    for (const need of this.#needs.values()) {
      if (this.#inFlightNeeds.has(need.id)) continue;
      const retry = this.#retry.get(need.id);
      if (retry && retry.min > now) {
        wake = Math.min(wake, retry.min);
        continue;
      }
      for (let i = 0; i < seats.length; i++) {
        const seat = seats[i]!;
        if (this.#o.port.isRunning(seat.identity.name, need.id)) continue;
        const at = retry?.at[i];
        if (at !== undefined && at > now) {
          wake = Math.min(wake, at);
          continue;
        }
        const verdict = claimEligibility(seat.identity, need, now, seat.agentId);
        if (verdict.eligible) {
          if (retry) retry.at[i] = undefined;
          candidates.push({ seat, need });
        } else {
          // Ineligible until then (never, without a time) unless the need's state changes, which
          // clears the entry: the view of hundreds of needs is not judged again on every delta.
          this.#retryAfter(need.id, i, verdict.eligibleAt ?? Number.POSITIVE_INFINITY);
          if (verdict.eligibleAt !== null && verdict.eligibleAt > now)
            wake = Math.min(wake, verdict.eligibleAt);
        }
      }
      this.#retry.get(need.id)?.refresh();
    }
    candidates.sort((a, b) => urgency(a.need, b.need) || a.seat.agentId.localeCompare(b.seat.agentId));
    for (const { seat, need } of candidates) {
      if (this.#inFlightNeeds.has(need.id)) continue;
      if (this.#free(seat) <= 0) continue;
      this.#claim(seat, need);
    }
    this.#arm(wake, now);
  }

  /** Free sessions for the seat, less the claims in flight. */
  #free(seat: TakeoverSeat): number {
    const free = this.#o.port.freeCapacity(seat.identity.name);
    const mine = this.#inFlightBy.get(seat.identity.name) ?? 0;
    return Math.min(free.worker - this.#inFlight.size, free.identity - mine);
  }

  #claim(seat: TakeoverSeat, need: NeedState): void {
    const k = key(seat, need.id);
    const identity = seat.identity.name;
    this.#inFlight.add(k);
    this.#inFlightNeeds.add(need.id);
    this.#inFlightBy.set(identity, (this.#inFlightBy.get(identity) ?? 0) + 1);
    const fields = { need: need.id, identity, agent: seat.agentId };
    const claim = this.#o.port
      .claimAndRun(need.id, seat)
      .then(
        (attempt) => {
          if (attempt.started) {
            this.#takeovers++;
            this.#log.info(
              { ...fields, task: attempt.taskId, takeovers: this.#takeovers },
              'round table: took the need over',
            );
            return;
          }
          this.#log.debug({ ...fields, reason: attempt.reason }, 'round table: claim refused');
          this.#backOff(need.id, seat, attempt.eligibleAt);
        },
        (error: unknown) => {
          this.#log.warn({ ...fields, err: error }, 'round table: claim failed');
          this.#backOff(need.id, seat, null);
        },
      )
      .finally(() => {
        this.#inFlight.delete(k);
        this.#inFlightNeeds.delete(need.id);
        this.#inFlightBy.set(identity, (this.#inFlightBy.get(identity) ?? 1) - 1);
        this.#claims.delete(claim);
        // Whatever happened, the need changed or our picture of it was wrong: read it again.
        this.#stale.add(need.id);
        void this.#refresh();
      });
    this.#claims.add(claim);
  }

  /** After a refusal: until the time the guard named, when it is ahead, else one check interval. */
  #backOff(needId: string, seat: TakeoverSeat, eligibleAt: number | null): void {
    const now = this.#o.clock.now();
    const index = this.#o.seats.indexOf(seat);
    if (index < 0) return;
    this.#retryAfter(
      needId,
      index,
      eligibleAt !== null && eligibleAt > now ? eligibleAt : now + this.#checkMs,
    );
    this.#retry.get(needId)?.refresh();
  }

  /** Seat `index` may not claim the need before `at` (ms). */
  #retryAfter(needId: string, index: number, at: number): void {
    let retry = this.#retry.get(needId);
    if (!retry) {
      retry = new RetryTimes(this.#o.seats.length);
      this.#retry.set(needId, retry);
    }
    retry.at[index] = at;
  }

  /** Keeps one timer, at the earliest wake-up asked for. */
  #arm(at: number, now: number): void {
    if (this.#state !== 'running') return;
    if (this.#timer && this.#timer.at <= at && this.#timer.at > now) return;
    this.#timer?.cancel();
    const handle = this.#o.timers.setTimeout(
      () => {
        this.#timer = undefined;
        this.#schedule();
      },
      Math.max(0, at - now),
    );
    this.#timer = { cancel: () => handle.cancel(), at };
  }
}

function key(seat: TakeoverSeat, needId: string): string {
  return `${seat.agentId}\u0000${needId}`;
}
