import type { Identity } from '../kernel/identity/schema.js';
import { budgetBlock, MAX_RETRY_DELAY_MS } from '../mcp/agent-claim.js';
import type { GraduationCandidate, RetryPolicy, Store } from '../store/index.js';
import type { Logger } from './logger.js';
import { type RoutingSlot, routeNeed } from './routing.js';

/** Candidates a full pass goes over at most. */
const FULL_PASS = 500;
/** Candidates a short pass reads at least (four per free slot beyond that). */
const SHORT_PASS = 16;

export interface GraduationOptions {
  readonly store: Store;
  readonly log: Logger;
  readonly slots: () => readonly { identity: Identity; capacity: number }[];
  /** Failed or lost attempts before a need is escalated instead of retried. */
  readonly maxAttempts: number;
  /** While every slot is full, the candidates are gone over at most once per this many ms. */
  readonly loopMs: number;
  /** The run the tasks belong to: its token budget, when it has one, blocks like a daily one. */
  readonly runId?: string | null;
  /**
   * The wait before a failed or lost need's next attempt, doubled per failure (default 0: at
   * once). `mlos run` waits 30 s.
   */
  readonly retryDelayMs?: number;
}

export interface GraduationPass {
  readonly graduated: number;
  readonly escalated: number;
  /** Actionable needs that no runnable identity's scope covers. */
  readonly unroutable: number;
  /** Actionable needs some identity could take now (capacity aside): not idle while any. */
  readonly routable: number;
  /** Actionable needs whose only identities are budget-blocked today. */
  readonly budgetBlocked: number;
}

/**
 * The supervisor's graduation: actionable needs become tasks (task and outbox row in one
 * transaction) routed to the identity whose primary scope meets them best, within capacity; a need
 * that failed too often is escalated instead (the dead-letter path); an identity whose daily budget
 * cannot cover another task gets none until the next UTC day, so its needs wait rather than fail.
 */
export class Graduation {
  readonly #o: GraduationOptions;
  #lastPassAt = Number.NEGATIVE_INFINITY;
  #lastFullPassAt = Number.NEGATIVE_INFINITY;
  #last: GraduationPass | undefined;
  readonly #warnedUnroutable = new Set<string>();
  /** Needs found unroutable for the first time in the current pass, warned about at its end. */
  #newlyUnroutable: { id: string; tags: readonly string[] }[] = [];
  readonly #warnedBudget = new Set<string>();

  constructor(options: GraduationOptions) {
    this.#o = options;
  }

  pass(now: number): GraduationPass {
    const { store } = this.#o;
    const load = store.scheduling.liveTasksByIdentity();
    const all: RoutingSlot[] = this.#o
      .slots()
      .map((s) => ({ identity: s.identity, capacity: s.capacity, load: load.get(s.identity.name) ?? 0 }));
    // Saturated (every slot full, so tasks are live and the run is not idle): nothing can be
    // graduated, and the candidates are only gone over once per loop interval for escalations.
    const busy = all.reduce((n, s) => n + s.load, 0);
    const free = all.reduce((n, s) => n + Math.max(0, s.capacity - s.load), 0);
    if (free === 0 && busy > 0 && now - this.#lastPassAt < this.#o.loopMs) {
      return {
        graduated: 0,
        escalated: 0,
        unroutable: this.#last?.unroutable ?? 0,
        routable: busy,
        budgetBlocked: 0,
      };
    }
    this.#lastPassAt = now;
    const blocked = this.#budgetBlocked(now);
    const slots = all.filter((s) => !blocked.has(s.identity.name));
    const anyRoute = all.map((s) => ({ ...s, capacity: Number.POSITIVE_INFINITY, load: 0 }));
    const openRoute = anyRoute.filter((s) => !blocked.has(s.identity.name));
    const counts = { graduated: 0, escalated: 0, unroutable: 0, routable: 0, budgetBlocked: 0 };
    // One commit for the whole pass; each write below is a savepoint of it, so a write refused
    // (a race with another writer) is rolled back alone.
    store.transaction(() => {
      // Most passes only fill the slots a finished task freed: the first few candidates do. All
      // of them (up to FULL_PASS) are gone over once per loop interval, for the escalations and
      // the counts of unroutable and budget-blocked needs, or when a short page fell short.
      const short = now - this.#lastFullPassAt < this.#o.loopMs;
      if (short) {
        const limit = Math.max(SHORT_PASS, free * 4);
        const page = store.scheduling.graduationCandidates(now, limit, this.#policy);
        this.#scan(page, { slots, anyRoute, openRoute }, counts);
        if (page.length < limit || (counts.graduated > 0 && counts.graduated >= free)) {
          // The page held every candidate, or it filled every free slot: the last full counts stand for
          // the needs it did not reach (a pass that graduated is not idle anyway).
          if (page.length === limit) {
            counts.unroutable = this.#last?.unroutable ?? counts.unroutable;
            counts.budgetBlocked = this.#last?.budgetBlocked ?? counts.budgetBlocked;
          }
          return;
        }
        // Candidates on the page could not be placed: go over all of them after all. The page's
        // graduations and escalations stand (the full pass no longer meets those needs); what
        // waits is counted again.
        Object.assign(counts, { unroutable: 0, budgetBlocked: 0, routable: counts.graduated });
      }
      this.#lastFullPassAt = now;
      this.#scan(
        store.scheduling.graduationCandidates(now, FULL_PASS, this.#policy),
        { slots, anyRoute, openRoute },
        counts,
      );
    });
    // Needs waiting for their retry are left out of the pages; nothing else routable: count them,
    // so the run is not idle while a retry is due.
    if (counts.routable === 0) counts.routable = store.scheduling.retryWaiting(now, this.#policy);
    this.#last = counts;
    this.#warnUnroutable();
    return counts;
  }

  /** What the candidate pages leave out (see SchedulingRepository.graduationCandidates). */
  get #policy(): RetryPolicy {
    return {
      maxAttempts: this.#o.maxAttempts,
      retryDelayMs: this.#o.retryDelayMs ?? 0,
      maxRetryDelayMs: MAX_RETRY_DELAY_MS,
    };
  }

  /**
   * One warning per pass for the needs it found unroutable for the first time (each need is
   * warned about once): a backlog of thousands behind drifted identities is one line, not one per
   * need, with how many carry each tag and the first few ids.
   */
  #warnUnroutable(): void {
    const fresh = this.#newlyUnroutable;
    if (fresh.length === 0) return;
    this.#newlyUnroutable = [];
    const fix = (whose: string) =>
      `add or resume an identity whose scope covers ${whose} tags, or accept a drifted one (mlos identity accept)`;
    const [first] = fresh;
    if (fresh.length === 1 && first) {
      this.#o.log.warn(
        { need: first.id, tags: first.tags },
        `no runnable identity's scope covers need ${first.id}: ${fix('its')}`,
      );
      return;
    }
    const tags: Record<string, number> = {};
    for (const n of fresh)
      for (const t of n.tags.length ? n.tags : ['(untagged)']) tags[t] = (tags[t] ?? 0) + 1;
    this.#o.log.warn(
      { needs: fresh.length, tags, first: fresh.slice(0, 5).map((n) => n.id) },
      `no runnable identity's scope covers ${fresh.length} needs: ${fix('their')}`,
    );
  }

  /** Routes `candidates` in order: graduates into free slots, escalates, counts what waits. */
  #scan(
    candidates: readonly GraduationCandidate[],
    routes: { slots: RoutingSlot[]; anyRoute: RoutingSlot[]; openRoute: RoutingSlot[] },
    counts: { -readonly [K in keyof GraduationPass]: number },
  ): void {
    const { store, log } = this.#o;
    const { slots, anyRoute, openRoute } = routes;
    for (const need of candidates) {
      if (need.failures >= this.#o.maxAttempts) {
        // Not orphaned yet, or no longer: an operator's retry cleared the mark and its fresh
        // attempts failed as well.
        if (!need.orphaned) {
          store.transaction(() => {
            // The unmet mark (set earlier in this tick at the latest) stays: unmet since then.
            store.needs.setFlags(need.id, { orphaned: true });
            if (need.priority > 0) store.needs.update(need.id, { priority: 0 });
          });
          counts.escalated++;
          log.warn(
            { need: need.id, failures: need.failures },
            `need escalated after too many failed attempts: it waits for an operator (mlos need retry ${need.id} once the cause is fixed, or drop it)`,
          );
        }
        continue;
      }
      const route = { orphaned: need.orphaned };
      if (!routeNeed(need.tags, anyRoute, route)) {
        counts.unroutable++;
        if (!this.#warnedUnroutable.has(need.id)) {
          this.#warnedUnroutable.add(need.id);
          this.#newlyUnroutable.push({ id: need.id, tags: need.tags });
        }
        continue;
      }
      if (!routeNeed(need.tags, openRoute, route)) {
        counts.budgetBlocked++;
        continue;
      }
      counts.routable++;
      const slot = routeNeed(need.tags, slots, route);
      if (!slot) continue;
      try {
        store.tasks.create(need.id, slot.identity.name, { queue: slot.identity.name });
        (slot as { load: number }).load++;
        counts.graduated++;
      } catch (error) {
        log.debug({ err: error, need: need.id }, 'graduation raced with another writer');
      }
    }
  }

  /**
   * Identities whose budget left (today's, or the run's) cannot cover one more task (see
   * budgetBlock). Each is logged once per day or run.
   */
  #budgetBlocked(now: number): ReadonlySet<string> {
    const { store, log } = this.#o;
    const blocked = new Set<string>();
    for (const { identity } of this.#o.slots()) {
      const block = budgetBlock(store, identity, now, this.#o.runId ?? null);
      if (!block) continue;
      blocked.add(identity.name);
      const key = `${identity.name}\u0000${block.scope}\u0000${block.key}`;
      if (this.#warnedBudget.has(key)) continue;
      this.#warnedBudget.add(key);
      log.warn(
        { identity: identity.name, budget: block.scope },
        `${block.message}, so its needs wait (${block.fix})`,
      );
    }
    return blocked;
  }
}
