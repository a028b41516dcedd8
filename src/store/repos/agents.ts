import type { StoreContext } from '../context.js';
import { NotFoundError } from '../errors.js';

export interface AgentRecord {
  readonly id: string;
  readonly identity: string;
  readonly identityHash: string;
  readonly worker: string;
  readonly capacity: number;
  readonly load: number;
  readonly status: 'live' | 'stopped';
  readonly startedAt: number;
  readonly heartbeatAt: number;
}

interface AgentRow {
  id: string;
  identity: string;
  identity_hash: string;
  worker: string;
  capacity: number;
  load: number;
  status: 'live' | 'stopped';
  started_at: number;
  heartbeat_at: number;
}

/**
 * Agents: running instances of identities, registered by workers. Registration and stopping are
 * facts (events); heartbeats and load are bookkeeping (no events).
 */
export class AgentRepository {
  readonly #ctx: StoreContext;

  constructor(ctx: StoreContext) {
    this.#ctx = ctx;
  }

  register(identity: string, identityHash: string, worker: string, capacity: number): AgentRecord {
    return this.#ctx.write(() => {
      const id = this.#ctx.ids.next('agent');
      const now = this.#ctx.now();
      this.#ctx
        .prepare(
          `INSERT INTO agents (id, identity, identity_hash, worker, capacity, load, status, started_at, heartbeat_at)
           VALUES (?, ?, ?, ?, ?, 0, 'live', ?, ?)`,
        )
        .run(id, identity, identityHash, worker, capacity, now, now);
      this.#ctx.emit({
        kind: 'agent.registered',
        entity: id,
        payload: { identity, identityHash, worker, capacity },
      });
      return this.require(id);
    });
  }

  heartbeat(id: string, load: number): void {
    this.#ctx
      .prepare("UPDATE agents SET heartbeat_at = ?, load = ?, status = 'live' WHERE id = ?")
      .run(this.#ctx.now(), load, id);
  }

  stop(id: string): void {
    this.#ctx.write(() => {
      const { changes } = this.#ctx
        .prepare("UPDATE agents SET status = 'stopped', load = 0 WHERE id = ? AND status = 'live'")
        .run(id);
      if (changes) this.#ctx.emit({ kind: 'agent.stopped', entity: id, payload: {} });
    });
  }

  get(id: string): AgentRecord | undefined {
    const row = this.#ctx.prepare<[string], AgentRow>('SELECT * FROM agents WHERE id = ?').get(id);
    return row && toAgent(row);
  }

  require(id: string): AgentRecord {
    const agent = this.get(id);
    if (!agent) throw new NotFoundError('agent', id);
    return agent;
  }

  /** Agents whose heartbeat is newer than `since`: the capacity the supervisor can count on. */
  live(since: number): AgentRecord[] {
    return this.#ctx
      .prepare<[number], AgentRow>(
        "SELECT * FROM agents WHERE status = 'live' AND heartbeat_at >= ? ORDER BY identity, id",
      )
      .all(since)
      .map(toAgent);
  }
}

function toAgent(row: AgentRow): AgentRecord {
  return {
    id: row.id,
    identity: row.identity,
    identityHash: row.identity_hash,
    worker: row.worker,
    capacity: row.capacity,
    load: row.load,
    status: row.status,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
  };
}
