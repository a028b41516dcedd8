import type { Identity } from '../kernel/identity/schema.js';
import type { Fence, Need, Store } from '../store/index.js';
import { actorOf, describePrincipal, inView, type Principal } from './principal.js';
import { GuardRefusal } from './result.js';

/** What the guard needs from the layers around it; the composition root supplies it. */
export interface GuardDeps {
  readonly store: Store;
  /** How long a claimed lease lasts without progress, in ms. */
  readonly leaseMs: number;
  /** The current run (for run budgets), if any. */
  readonly runId: string | null;
  /**
   * Failed or lost attempts after which a need is dead-lettered (escalated, not retried): agents'
   * claims of it are refused until an operator acts. Null: no limit (the guard of `mlos mcp`).
   */
  readonly maxAttempts: number | null;
  /** The wait before a failed need's next attempt, doubled per failure (see retryAt); 0: none. */
  readonly retryDelayMs: number;
  /** The identity pinned under `name`, built from the pinned bytes (never from the file). */
  readonly identityOf: (name: string) => Identity;
  /** Mints an agent token for a task, when the guard is reachable over HTTP. */
  readonly issueAgentToken?: (taskId: string) => { token: string; expiresAt: number };
  /** Compiled views, packs and boot payloads (the kernel). */
  readonly compiler?: GuardCompiler;
  readonly log: (message: string, error?: unknown) => void;
}

export interface GuardCompiler {
  pack(needId: string, identity: Identity, budget: number): { text: string; tokens: number; sha256: string };
  expandPointer(pointer: string, budget: number): { text: string; tokens: number };
  view(workspace: string, file: string): { text: string; seq: number };
  listViews(workspace: string): string[];
  boot(identity: Identity, needId: string, budget: number): BootForAgent;
}

/** A boot payload as an agent loop consumes it (also sent as the `boot` prompt's `_meta`). */
export interface BootForAgent {
  /** [L1 identity, L2 awareness], each with whether a cache breakpoint follows it. */
  readonly system: readonly { readonly text: string; readonly cacheBreakpoint: boolean }[];
  /** The first user message: L3 pack and the task statement. */
  readonly first: string;
  readonly tools: readonly string[];
  readonly tokens: number;
  readonly sha256: string;
  readonly packSha256: string;
  readonly sections: readonly { readonly section: string; readonly tokens: number }[];
}

/**
 * One principal's use of the guard: its store handle (writes attributed to it), its scope
 * checks, and its fence, applied to every write a task-bound agent makes.
 */
export class GuardSession {
  readonly deps: GuardDeps;
  readonly principal: Principal;
  readonly store: Store;

  constructor(deps: GuardDeps, principal: Principal) {
    this.deps = deps;
    this.principal = principal;
    this.store = deps.store.as(actorOf(principal));
  }

  get name(): string {
    return describePrincipal(this.principal);
  }

  /** The fence of a task-bound agent, if any. */
  get fence(): Fence | undefined {
    return this.principal.kind === 'agent' ? this.principal.task?.fence : undefined;
  }

  /**
   * Runs a write in one transaction. For a task-bound agent the task's fence is checked first,
   * inside the same transaction: once its lease is lost, every write it makes is refused.
   */
  write<T>(fn: () => T): T {
    return this.store.transaction(() => {
      const task = this.principal.kind === 'agent' ? this.principal.task : undefined;
      if (task) this.store.leases.assertFence(task.needId, task.fence);
      return fn();
    });
  }

  /** The fence to pass with a write to `needId`: the task's own fence when it is the task's need. */
  fenceFor(needId: string): { fence?: Fence } {
    const task = this.principal.kind === 'agent' ? this.principal.task : undefined;
    return task && task.needId === needId ? { fence: task.fence } : {};
  }

  /**
   * Returns the need if this principal may write it: the operator always; an agent when the
   * need is in its view or its task holds the need's lease.
   */
  requireWritable(needId: string): Need {
    const need = this.store.needs.require(needId);
    if (this.principal.kind === 'operator') return need;
    const { identity, task } = this.principal;
    if (task && task.needId === needId) return need;
    if (inView(identity, need)) return need;
    const lease = this.store.leases.get(needId);
    if (task && lease?.taskId === task.id) return need;
    throw new GuardRefusal(
      `need ${needId} (tags ${need.tags.join(', ') || 'none'}) is outside the scope of ${identity.name} (watch tags ${[
        ...identity.scope.primary,
        ...identity.scope.peripheral,
      ].join(', ')}), and your task does not hold its lease; leave it to an agent whose scope covers it`,
    );
  }

  /** The task a lifecycle tool acts on: the agent's own, or the one the operator names. */
  requireTask(args: { task_id?: string | undefined; fencing_token?: number | undefined }): {
    id: string;
    needId: string;
    fence: Fence;
  } {
    if (this.principal.kind === 'agent') {
      if (!this.principal.task) {
        throw new GuardRefusal(
          'this tool needs a task: claim a need first (claim_need), then use the agent token it returns',
        );
      }
      return this.principal.task;
    }
    if (!args.task_id || args.fencing_token === undefined) {
      throw new GuardRefusal('as operator, pass task_id and fencing_token of the task you act for');
    }
    const task = this.store.tasks.require(args.task_id);
    return { id: task.id, needId: task.needId, fence: { taskId: task.id, token: args.fencing_token } };
  }

  /** The identity whose budgets and tools apply: the agent's own, or the task's for the operator. */
  identityForTask(taskId: string): Identity {
    if (this.principal.kind === 'agent') return this.principal.identity;
    return this.deps.identityOf(this.store.tasks.require(taskId).identity);
  }
}
