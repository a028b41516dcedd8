import type { StoreContext } from '../context.js';
import { MlosError, UserError } from '../errors.js';
import type { NewNeed } from '../schemas.js';
import type { Fence, Need, Task, TaskCause } from '../types.js';
import type { EdgeRepository } from './edges.js';
import type { LeaseRepository } from './leases.js';
import type { NeedRepository } from './needs.js';
import type { TaskRepository } from './tasks.js';

/** A need that cannot be claimed now: the message says why and what to do instead. */
export class NotClaimableError extends MlosError {
  /** When the need becomes claimable, if that is known (ms since the epoch). */
  readonly eligibleAt: number | null;

  constructor(message: string, eligibleAt: number | null = null) {
    super('not_claimable', message);
    this.eligibleAt = eligibleAt;
  }
}

export interface ClaimOptions {
  readonly identity: string;
  readonly agentId?: string;
  /** How long the lease lasts without progress, in ms. */
  readonly leaseMs: number;
  /**
   * The claim went through the round table (an agent's `claim_need`, checked by the protocol):
   * the `need.claimed` event records `roundTable: true`, which starts the need's takeover cooldown.
   */
  readonly roundTable?: boolean;
}

export interface Claim {
  readonly task: Task;
  readonly fence: Fence;
  readonly leaseUntil: number;
  /** True when the claim took work over from another task (queued, or lost). */
  readonly takeover: boolean;
}

export interface Progress {
  readonly turns: number;
  readonly tokens: number;
  readonly toolCalls: number;
}

export type FinishOutcome =
  | { readonly outcome: 'resolved'; readonly summary: string }
  | { readonly outcome: 'progressed'; readonly summary: string }
  | { readonly outcome: 'blocked'; readonly summary: string; readonly subNeeds: readonly NewNeed[] }
  | {
      readonly outcome: 'failed';
      readonly summary: string;
      readonly reason: string;
      /** A failure that was not the work's fault: it does not count towards max_attempts. */
      readonly cause?: TaskCause;
    };

/**
 * The lease lifecycle of a task: claim (atomic, exactly one winner, new fencing token),
 * heartbeat with progress (only progress renews the lease), and finish.
 */
export class ClaimRepository {
  readonly #ctx: StoreContext;
  readonly #needs: NeedRepository;
  readonly #tasks: TaskRepository;
  readonly #leases: LeaseRepository;
  readonly #edges: EdgeRepository;

  constructor(
    ctx: StoreContext,
    needs: NeedRepository,
    tasks: TaskRepository,
    leases: LeaseRepository,
    edges: EdgeRepository,
  ) {
    this.#ctx = ctx;
    this.#needs = needs;
    this.#tasks = tasks;
    this.#leases = leases;
    this.#edges = edges;
  }

  /**
   * Claims a need in one transaction. A need is claimable when it is open and actionable, or
   * active, and its lease is not live. A queued task is taken over (its queued job will end as
   * superseded); a running task whose lease expired is marked lost; otherwise a new attempt is
   * created. Exactly one of any number of concurrent claimers wins.
   */
  claim(needId: string, options: ClaimOptions): Claim {
    return this.#ctx.write(() => {
      const now = this.#ctx.now();
      const need = this.#needs.require(needId);
      this.#assertClaimable(need, now);
      let takeover = false;
      let live = this.#tasks.liveFor(needId);
      if (live?.status === 'running') {
        this.#tasks.transition(live.id, 'lost', {
          error: 'lease expired; the need was claimed by another agent',
        });
        live = undefined;
        takeover = true;
      }
      let taskId: string;
      if (live) {
        taskId = live.id;
        takeover = live.identity !== options.identity;
        if (takeover) {
          this.#ctx.prepare('UPDATE tasks SET identity = ? WHERE id = ?').run(options.identity, taskId);
        }
      } else {
        taskId = this.#tasks.create(needId, options.identity).id;
      }
      const leaseUntil = now + options.leaseMs;
      const task = this.#tasks.start(taskId, {
        ...(options.agentId !== undefined && { agentId: options.agentId }),
        leaseUntil,
      });
      this.#ctx.prepare('UPDATE needs SET unmet_since = NULL WHERE id = ?').run(needId);
      this.#ctx.emit({
        kind: 'need.claimed',
        entity: needId,
        needId,
        payload: {
          taskId,
          identity: options.identity,
          fencingToken: task.fencingToken,
          takeover,
          ...(options.roundTable && { roundTable: true }),
        },
      });
      return { task, fence: { taskId, token: task.fencingToken }, leaseUntil, takeover };
    });
  }

  /**
   * Records a heartbeat. When any progress counter grew, the lease is renewed until
   * `now + leaseMs`; a heartbeat without progress only records that the session is alive.
   * Heartbeats are bookkeeping: no event is written. Returns whether the lease was renewed.
   */
  heartbeat(
    fence: Fence,
    progress: Progress,
    leaseMs: number,
  ): { renewed: boolean; leaseUntil: number | null } {
    return this.#ctx.write(() => {
      const task = this.#tasks.require(fence.taskId);
      this.#leases.assertFence(task.needId, fence);
      const now = this.#ctx.now();
      const row = this.#ctx
        .prepare<[string], { t: number; k: number; c: number }>(
          'SELECT progress_turns AS t, progress_tokens AS k, progress_tool_calls AS c FROM tasks WHERE id = ?',
        )
        .get(fence.taskId)!;
      const grew = progress.turns > row.t || progress.tokens > row.k || progress.toolCalls > row.c;
      this.#ctx
        .prepare(
          `UPDATE tasks SET heartbeat_at = @now,
             progress_turns = max(progress_turns, @turns), progress_tokens = max(progress_tokens, @tokens),
             progress_tool_calls = max(progress_tool_calls, @toolCalls),
             progress_at = CASE WHEN @grew THEN @now ELSE progress_at END
           WHERE id = @id`,
        )
        .run({ now, ...progress, grew: grew ? 1 : 0, id: fence.taskId });
      if (!grew) return { renewed: false, leaseUntil: this.#leases.require(task.needId).expiresAt };
      this.#leases.renew(task.needId, fence, now + leaseMs);
      return { renewed: true, leaseUntil: now + leaseMs };
    });
  }

  /**
   * Ends a task under its fence: `resolved` resolves the need; `progressed` leaves it open;
   * `blocked` creates the sub-needs and `depends_on` edges to them, leaving it open and waiting;
   * `failed` records the reason. The lease is released either way (the token is bumped).
   */
  finish(fence: Fence, result: FinishOutcome): { task: Task; need: Need; subNeeds: Need[] } {
    return this.#ctx.write(() => {
      const task = this.#tasks.require(fence.taskId);
      this.#leases.assertFence(task.needId, fence);
      const need = this.#needs.require(task.needId);
      const subNeeds: Need[] = [];
      if (result.outcome === 'resolved') {
        if (need.mode === 'standing') {
          throw new UserError(
            `need ${need.id} is standing and is never resolved: finish with outcome progressed`,
          );
        }
        this.#needs.transition(need.id, 'resolved', { fence });
      }
      if (result.outcome === 'blocked') {
        if (result.subNeeds.length === 0) {
          throw new UserError('finish blocked needs at least one sub-need: the needs this one waits for');
        }
        for (const sub of result.subNeeds) {
          const created = this.#needs.create(sub);
          this.#edges.link(need.id, 'depends_on', created.id, { fence });
          subNeeds.push(created);
        }
      }
      const ended = this.#tasks.transition(task.id, result.outcome === 'failed' ? 'failed' : 'succeeded', {
        fence,
        outcome: result.outcome,
        summary: result.summary,
        ...(result.outcome === 'failed' && { error: result.reason }),
        ...(result.outcome === 'failed' && result.cause && { cause: result.cause }),
      });
      return { task: ended, need: this.#needs.require(need.id), subNeeds };
    });
  }

  /**
   * Throws the `NotClaimableError` that `claim` would throw now (resolved or dropped, not
   * actionable, or held under a live lease); returns when the store would let the claim through.
   */
  assertClaimable(needId: string): void {
    this.#assertClaimable(this.#needs.require(needId), this.#ctx.now());
  }

  #assertClaimable(need: Need, now: number): void {
    if (need.status === 'resolved' || need.status === 'dropped') {
      throw new NotClaimableError(
        `need ${need.id} is ${need.status}: there is nothing to claim; pick another need`,
      );
    }
    if (need.status === 'open') {
      const actionable = this.#needs.isActionable(need.id, now);
      if (!actionable.ok) throw new NotClaimableError(actionable.reason, actionable.eligibleAt);
    }
    const lease = this.#leases.require(need.id);
    if (this.#leases.isLive(lease, now)) {
      throw new NotClaimableError(
        `need ${need.id} is held by task ${lease.taskId} until ${new Date(lease.expiresAt!).toISOString()} (a live lease is never displaced); pick another need`,
        lease.expiresAt,
      );
    }
  }
}
