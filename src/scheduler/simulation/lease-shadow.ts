import { FENCE_FIELD, type Lease, type StoredEvent } from '../../store/index.js';

const TERMINAL = new Set(['succeeded', 'failed', 'cancelled', 'superseded', 'lost']);
const LIVE = new Set(['queued', 'running']);

/** A task as the event log tells it. */
export interface ShadowTask {
  readonly id: string;
  readonly needId: string;
  identity: string;
  status: string;
  /** The fencing token its start was granted (null before it started). */
  token: number | null;
  /** The agent that started it (null before it started). */
  agentId: string | null;
}

/** A broken lease or fencing rule, found while replaying one event. */
export interface LeaseBreach {
  readonly invariant: 'one live lease per need' | 'writes carry the current fencing token';
  readonly needId: string;
  readonly detail: string;
}

/** The actor of a task-bound agent session (see src/mcp/principal.ts `actorOf`): `agent:<identity>:<task>`. */
export const TASK_ACTOR = /^agent:[^:]+:(task_[0-9A-Za-z]+)$/;

/**
 * The lease of every need as the event log implies it, replayed event by event, to check the
 * leasing rules independently of the store's own checks:
 *  - a `task.started` grants the lease with a fencing token greater than every earlier one of the
 *    need; a holder's terminal transition (or an operator's status change) releases it;
 *  - at most one live (queued or running) task per need, and a running task is the lease holder;
 *  - every write a task-bound session commits about its need (its actor names the task) is made
 *    while that task holds the lease under the token it was granted: a stale writer would show up
 *    as a write by a task that no longer holds the lease;
 *  - after a step, the lease rows of the needs it touched agree with the replay (holder and token).
 */
export class LeaseShadow {
  readonly tasks = new Map<string, ShadowTask>();
  readonly #live = new Map<string, Set<string>>();
  readonly #holder = new Map<string, { taskId: string; token: number }>();
  readonly #lastToken = new Map<string, number>();

  /** Tasks running now. */
  runningTasks(): ShadowTask[] {
    const out: ShadowTask[] = [];
    for (const set of this.#live.values())
      for (const id of set) {
        const task = this.tasks.get(id);
        if (task?.status === 'running') out.push(task);
      }
    return out;
  }

  /** Replays one event; returns the rules it breaks. */
  apply(event: StoredEvent): LeaseBreach[] {
    const breaches: LeaseBreach[] = [];
    const needId = event.needId;
    if (!needId) return breaches;
    const writer = TASK_ACTOR.exec(event.actor)?.[1];
    if (writer) {
      const task = this.tasks.get(writer);
      const holder = this.#holder.get(needId);
      // The store records in each event the token its write was checked under (FENCE_FIELD).
      const carried = (event.payload as Record<string, unknown> | null)?.[FENCE_FIELD];
      if (task && task.needId === needId && (holder?.taskId !== writer || holder.token !== carried)) {
        breaches.push({
          invariant: 'writes carry the current fencing token',
          needId,
          detail: `${event.kind} #${event.seq} by task ${writer} ${
            typeof carried === 'number' ? `under token ${carried}` : 'with no fence'
          } while the lease is ${holder ? `held by ${holder.taskId} under token ${holder.token}` : 'released'}`,
        });
      }
    }
    if (event.kind === 'need.claimed') {
      const p = event.payload as { taskId?: string; identity?: string };
      const task = p.taskId ? this.tasks.get(p.taskId) : undefined;
      if (task && p.identity) task.identity = p.identity;
      return breaches;
    }
    if (event.kind.startsWith('need.')) {
      // An operator's status change (no fence) revokes the lease; a fenced one is the holder's own.
      const to = (event.payload as { to?: string } | null)?.to;
      if (to && to !== 'active' && !writer) this.#holder.delete(needId);
      return breaches;
    }
    if (!event.kind.startsWith('task.')) return breaches;
    const taskId = event.entity;
    if (event.kind === 'task.created') {
      const identity = (event.payload as { identity: string }).identity;
      this.tasks.set(taskId, { id: taskId, needId, identity, status: 'queued', token: null, agentId: null });
    }
    const task = this.tasks.get(taskId);
    if (!task) return breaches;
    if (event.kind === 'task.started') {
      const { fencingToken: token, agentId } = event.payload as {
        fencingToken: number;
        agentId: string | null;
      };
      const last = this.#lastToken.get(needId);
      if (last !== undefined && token <= last) {
        breaches.push({
          invariant: 'one live lease per need',
          needId,
          detail: `task ${taskId} started with token ${token}, not above the need's earlier token ${last}`,
        });
      }
      this.#lastToken.set(needId, token);
      this.#holder.set(needId, { taskId, token });
      task.status = 'running';
      task.token = token;
      task.agentId = agentId;
    } else if (event.kind !== 'task.created' && event.kind !== 'task.booted') {
      const to = (event.payload as { to?: string } | null)?.to;
      if (!to) return breaches;
      task.status = to;
      if (TERMINAL.has(to) && this.#holder.get(needId)?.taskId === taskId) this.#holder.delete(needId);
    }
    let live = this.#live.get(needId);
    if (!live) {
      live = new Set();
      this.#live.set(needId, live);
    }
    if (LIVE.has(task.status)) live.add(taskId);
    else live.delete(taskId);
    if (live.size > 1)
      breaches.push({
        invariant: 'one live lease per need',
        needId,
        detail: `live tasks ${[...live].join(', ')}`,
      });
    return breaches;
  }

  /** Compares a need's lease row (read after the step) with the replay; returns what disagrees. */
  check(needId: string, lease: Lease | undefined): LeaseBreach | null {
    const holder = this.#holder.get(needId);
    const fail = (detail: string): LeaseBreach => ({ invariant: 'one live lease per need', needId, detail });
    if (!lease) return holder ? fail(`the need has no lease row but task ${holder.taskId} holds it`) : null;
    for (const taskId of this.#live.get(needId) ?? []) {
      const task = this.tasks.get(taskId);
      if (task?.status === 'running' && holder?.taskId !== taskId)
        return fail(
          `task ${taskId} is running without holding the lease (held by ${holder?.taskId ?? 'none'})`,
        );
    }
    if (holder) {
      if (lease.taskId !== holder.taskId || lease.fencingToken !== holder.token)
        return fail(
          `the lease row says ${lease.taskId ?? 'none'}/${lease.fencingToken}, the events ${holder.taskId}/${holder.token}`,
        );
      return null;
    }
    const last = this.#lastToken.get(needId);
    if (lease.taskId !== null) return fail(`the lease row names ${lease.taskId}, the events no holder`);
    if (last !== undefined && lease.fencingToken <= last)
      return fail(`a released lease kept token ${lease.fencingToken} (granted ${last}): not bumped`);
    return null;
  }
}
