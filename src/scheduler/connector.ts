import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import { claimAsAgent, connectInMemory, createGuardServer, type GuardDeps } from '../mcp/index.js';
import type { NeedState } from '../roundtable/need-bus.js';
import { type Claim, type Clock, holdOf, MlosError, NotClaimableError, type Store } from '../store/index.js';

/** A task a worker is about to run: its identity (from the pinned bytes) and a guard client bound to it. */
export interface StartedTask {
  readonly taskId: string;
  readonly needId: string;
  readonly identity: Identity;
  readonly needTitle: string;
  readonly needTags: readonly string[];
  /** When the claim's lease ends unless progress renews it (epoch ms, the guard's clock). */
  readonly leaseUntil: number;
  readonly client: Client;
  close(): Promise<void>;
}

/** How a round-table claim ended: the task started, or the guard refused (a normal outcome). */
export type ClaimStart =
  | { readonly started: StartedTask }
  | { readonly refused: string; readonly eligibleAt: number | null };

/**
 * How a worker reaches the guard. Starting a task claims it: the queued task becomes running
 * with a lease and a fencing token. `startTask` returns null when the job is superseded (the task
 * is no longer queued: taken over, cancelled, or its need no longer claimable).
 */
export interface GuardConnector {
  startTask(taskId: string, agentId?: string): Promise<StartedTask | null>;
  /** The compact state of one need now, as the guard sees it; undefined when it does not exist. */
  needState(needId: string): Promise<NeedState | undefined>;
  /**
   * Claims a need through the round table as `identity`'s agent `agentId` (the guard applies the
   * protocol on its clock) and, when it wins, returns the started task with no queue round trip.
   */
  claimAndStart(needId: string, identity: string, agentId: string): Promise<ClaimStart>;
  /**
   * The guard's time as this process sees it, when it differs from this host's clock (a guard on
   * another host): the round table and the sessions compare the guard's times with it.
   */
  readonly clock?: Clock;
  /** Makes the agents ready to claim at once (opens what a first claim would); optional. */
  prepareClaims?(seats: readonly { identity: string; agentId: string }[]): Promise<void>;
}

/** Embedded mode: the guard runs in this process and agents reach it over the in-memory pair. */
export class EmbeddedConnector implements GuardConnector {
  readonly #deps: GuardDeps;
  readonly #store: Store;

  constructor(deps: GuardDeps) {
    this.#deps = deps;
    this.#store = deps.store.as('worker');
  }

  /** The guard's clock is the store's, in this process. */
  get clock(): Clock {
    return this.#store.clock;
  }

  async startTask(taskId: string, agentId?: string): Promise<StartedTask | null> {
    const store = this.#store;
    const queued = store.tasks.get(taskId);
    if (queued?.status !== 'queued') return null;
    const pin = store.identities.get(queued.identity);
    // Paused or drifted: the task stays queued until the operator acts; held: until the hold
    // ends. Reconciliation re-rings it.
    if (!pin || pin.paused || pin.driftHash || holdOf(pin, store.clock.now())) return null;
    let claim: Claim;
    try {
      claim = store.claims.claim(queued.needId, {
        identity: queued.identity,
        leaseMs: this.#deps.leaseMs,
        ...(agentId && { agentId }),
      });
    } catch (error) {
      if (!(error instanceof NotClaimableError)) throw error;
      // The need changed since graduation (a dependency reopened, dropped…): this task is moot.
      if (store.tasks.get(taskId)?.status === 'queued')
        store.tasks.cancel(taskId, `no longer claimable: ${error.message}`);
      return null;
    }
    if (claim.task.id !== taskId) return null;
    return this.#connect(claim, queued.identity, agentId);
  }

  async needState(needId: string): Promise<NeedState | undefined> {
    return this.#store.scheduling.needState(needId, this.#store.clock.now());
  }

  async claimAndStart(needId: string, identity: string, agentId: string): Promise<ClaimStart> {
    let claim: Claim;
    try {
      // Written as the agent, like its claim_need through the guard.
      claim = claimAsAgent(this.#deps.store.as(`agent:${identity}`), {
        identity: this.#deps.identityOf(identity),
        needId,
        agentId,
        leaseMs: this.#deps.leaseMs,
        runId: this.#deps.runId,
        maxAttempts: this.#deps.maxAttempts,
        retryDelayMs: this.#deps.retryDelayMs,
      });
    } catch (error) {
      if (!(error instanceof MlosError)) throw error;
      return {
        refused: error.message,
        eligibleAt: error instanceof NotClaimableError ? error.eligibleAt : null,
      };
    }
    return { started: await this.#connect(claim, identity, agentId) };
  }

  /** A guard client bound to the claimed task and its fence. */
  async #connect(claim: Claim, identityName: string, agentId: string | undefined): Promise<StartedTask> {
    const identity = this.#deps.identityOf(identityName);
    const need = this.#store.needs.require(claim.task.needId);
    const server = createGuardServer(this.#deps, {
      kind: 'agent',
      identity,
      ...(agentId && { agentId }),
      task: { id: claim.task.id, needId: need.id, fence: claim.fence },
    });
    const client = await connectInMemory(server, `mlos-agent-${identity.name}`);
    return {
      taskId: claim.task.id,
      needId: need.id,
      identity,
      needTitle: need.title,
      needTags: need.tags,
      leaseUntil: claim.leaseUntil,
      client,
      close: async () => {
        await client.close();
        await server.close();
      },
    };
  }
}
