import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import { connectInMemory, createGuardServer, type GuardDeps } from '../mcp/index.js';
import { NotClaimableError, type Store } from '../store/index.js';

/** A task a worker is about to run: its identity (from the pinned bytes) and a guard client bound to it. */
export interface StartedTask {
  readonly taskId: string;
  readonly needId: string;
  readonly identity: Identity;
  readonly needTitle: string;
  readonly needTags: readonly string[];
  readonly client: Client;
  close(): Promise<void>;
}

/**
 * How a worker reaches the guard. Starting a task claims it: the queued task becomes running
 * with a lease and a fencing token. Returns null when the job is superseded (the task is no
 * longer queued: taken over, cancelled, or its need no longer claimable).
 */
export interface GuardConnector {
  startTask(taskId: string, agentId?: string): Promise<StartedTask | null>;
}

/** Embedded mode: the guard runs in this process and agents reach it over the in-memory pair. */
export class EmbeddedConnector implements GuardConnector {
  readonly #deps: GuardDeps;
  readonly #store: Store;

  constructor(deps: GuardDeps) {
    this.#deps = deps;
    this.#store = deps.store.as('worker');
  }

  async startTask(taskId: string, agentId?: string): Promise<StartedTask | null> {
    const store = this.#store;
    const queued = store.tasks.get(taskId);
    if (queued?.status !== 'queued') return null;
    let claim: ReturnType<Store['claims']['claim']>;
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
    const identity = this.#deps.identityOf(queued.identity);
    const need = store.needs.require(queued.needId);
    const server = createGuardServer(this.#deps, {
      kind: 'agent',
      identity,
      ...(agentId && { agentId }),
      task: { id: taskId, needId: need.id, fence: claim.fence },
    });
    const client = await connectInMemory(server, `mlos-agent-${identity.name}`);
    return {
      taskId,
      needId: need.id,
      identity,
      needTitle: need.title,
      needTags: need.tags,
      client,
      close: async () => {
        await client.close();
        await server.close();
      },
    };
  }
}
