import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { parseIdentity } from '../kernel/identity/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import { ELIGIBLE_AT_META, GUARD_NOW_HEADER, sharedSchemaValidator } from '../mcp/index.js';
import type { NeedState } from '../roundtable/need-bus.js';
import { type Clock, MlosError } from '../store/index.js';
import type { ClaimStart, GuardConnector, StartedTask } from './connector.js';
import { GuardClock } from './guard-clock.js';

export interface RemoteConnectorOptions {
  /** The guard's MCP endpoint, e.g. http://127.0.0.1:7411/mcp. */
  readonly mcpUrl: string;
  readonly workerToken: string;
  readonly fetch?: typeof fetch;
  /** This host's clock (default: monotonic real time); `clock` corrects it to the guard's. */
  readonly clock?: Clock;
  /** How long a worker route may take to answer, in ms (default 30 s). */
  readonly requestTimeoutMs?: number;
}

/** An agent's MCP session for claim_need; `expiresAt` (its token's) is known once it is open. */
interface ClaimSession {
  readonly ready: Promise<Client>;
  expiresAt: number;
}

/** An identity-level agent token is renewed when it has less than this left, in ms. */
const TOKEN_RENEW_MS = 10 * 60_000;

/**
 * Distributed mode: the worker reaches the guard over Streamable HTTP. Starting a task trades the
 * worker token for an agent token bound to the task and its fencing token; the identity comes
 * from the pinned bytes the guard returns (workers never read identity files). A round-table claim
 * goes through the guard's `claim_need` with an identity-level agent token (one MCP session per
 * agent, kept open), whose answer carries the token of the new task.
 */
export class RemoteConnector implements GuardConnector {
  readonly #o: RemoteConnectorOptions;
  readonly #base: URL;
  readonly #fetch: typeof fetch;
  /**
   * The guard's time on this host, from the time each guard response carries: lease ends, token
   * expiries and eligibility times are the guard's, and are compared with this clock.
   */
  readonly clock: GuardClock;
  readonly #identities = new Map<string, Identity>();
  /** Each agent's identity-level claim session, by `${identity}\0${agentId}`. */
  readonly #claimers = new Map<string, ClaimSession>();
  /** Timers renewing the claim sessions, by the same key. */
  readonly #renewals = new Map<string, ReturnType<typeof setTimeout>>();
  #closed = false;

  constructor(options: RemoteConnectorOptions) {
    this.#o = options;
    this.#base = new URL(options.mcpUrl);
    this.#fetch = options.fetch ?? fetch;
    this.clock = new GuardClock(options.clock);
  }

  /**
   * POST (with a body) or GET a worker route with the worker token; throws an MlosError with the
   * guard's reason for any status of 400 or more not in `accept` (default: 409, superseded), and
   * one naming the address and the reason when the guard cannot be reached.
   */
  async request<T>(
    path: string,
    body?: unknown,
    accept: readonly number[] = [409],
  ): Promise<{ status: number; data: T }> {
    let res: Response;
    const timeoutMs = this.#o.requestTimeoutMs ?? 30_000;
    const sentAt = this.clock.local();
    try {
      res = await this.#fetch(new URL(path, this.#base), {
        signal: AbortSignal.timeout(timeoutMs),
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${this.#o.workerToken}`, 'content-type': 'application/json' },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError')
        throw new MlosError(
          'guard_unreachable',
          `the supervisor's guard at ${this.#base.origin} did not answer ${path} within ${timeoutMs / 1000} s: is \`mlos run --listen ${this.#base.host}\` running there, and not stopped or overloaded?`,
        );
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, a DNS failure…) is its cause.
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      const why = cause?.code ?? cause?.message ?? (error as Error).message;
      throw new MlosError(
        'guard_unreachable',
        `cannot reach the supervisor's guard at ${this.#base.origin} (${why}): is \`mlos run --listen ${this.#base.host}\` running, and does --mcp name it?`,
      );
    }
    const guardNow = res.headers.get(GUARD_NOW_HEADER);
    if (guardNow !== null) this.clock.sample(sentAt, this.clock.local(), Number(guardNow));
    const data = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (res.status >= 400 && !accept.includes(res.status)) {
      throw new MlosError(
        'guard_http',
        `the guard answered ${res.status} to ${path}: ${data.error ?? 'no reason given'}`,
      );
    }
    return { status: res.status, data };
  }

  /** The identities the guard will give work to, built from their pinned bytes. */
  async identities(): Promise<Identity[]> {
    const { data } = await this.request<{ identities: { name: string; source: string }[] }>(
      '/worker/identities',
    );
    const identities = data.identities.map((p) =>
      parseIdentity(p.source, { file: `${p.name}.md (pinned)`, name: p.name }),
    );
    for (const identity of identities) this.#identities.set(identity.name, identity);
    return identities;
  }

  async startTask(taskId: string, agentId?: string): Promise<StartedTask | null> {
    const { status, data } = await this.request<{
      token: string;
      need_id: string;
      identity: string;
      identity_source: string;
      need_title: string;
      need_tags: string[];
      lease_until: number;
    }>('/agent-token', { task_id: taskId, ...(agentId && { agent_id: agentId }) });
    if (status === 409) return null;
    const identity = parseIdentity(data.identity_source, {
      file: `${data.identity}.md (pinned)`,
      name: data.identity,
    });
    const client = await this.#connect(identity.name, data.token);
    return {
      taskId,
      needId: data.need_id,
      identity,
      needTitle: data.need_title,
      needTags: data.need_tags,
      leaseUntil: data.lease_until,
      client,
      close: () => client.close(),
    };
  }

  async needState(needId: string): Promise<NeedState | undefined> {
    const { status, data } = await this.request<NeedState>(
      `/worker/need-state?id=${encodeURIComponent(needId)}`,
      undefined,
      [404],
    );
    return status === 404 ? undefined : data;
  }

  async claimAndStart(needId: string, identityName: string, agentId: string): Promise<ClaimStart> {
    const identity = this.#identities.get(identityName) ?? (await this.#refreshIdentity(identityName));
    const result = await this.#claim(identityName, agentId, needId);
    if (result.isError) {
      const text = result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
      const eligibleAt = result._meta?.[ELIGIBLE_AT_META];
      return { refused: text, eligibleAt: typeof eligibleAt === 'number' ? eligibleAt : null };
    }
    const data = result.structuredContent as
      | { taskId?: string; agentToken?: string; leaseUntil?: number }
      | undefined;
    if (!data?.taskId || !data.agentToken || typeof data.leaseUntil !== 'number') {
      throw new MlosError(
        'guard_http',
        `claim_need of ${needId} returned no agent token or lease: is ${this.#o.mcpUrl} the guard of mlos run --listen?`,
      );
    }
    const need = await this.needState(needId);
    const client = await this.#connect(identity.name, data.agentToken);
    return {
      started: {
        taskId: data.taskId,
        needId,
        identity,
        needTitle: need?.title ?? needId,
        needTags: need?.tags ?? [],
        leaseUntil: data.leaseUntil,
        client,
        close: () => client.close(),
      },
    };
  }

  /**
   * Opens each agent's claim session now, so that its first takeover does not pay for a token
   * and an MCP handshake while the need waits; each is renewed before its token expires.
   */
  async prepareClaims(seats: readonly { identity: string; agentId: string }[]): Promise<void> {
    await Promise.all(
      seats.map(({ identity, agentId }) =>
        this.#claimer(`${identity}\u0000${agentId}`, identity, agentId).ready.then(
          () => undefined,
          () => undefined, // The first claim tries again, and reports what is wrong.
        ),
      ),
    );
  }

  /** Closes the agents' claim sessions. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const timer of this.#renewals.values()) clearTimeout(timer);
    this.#renewals.clear();
    const sessions = [...this.#claimers.values()];
    this.#claimers.clear();
    await Promise.allSettled(sessions.map(async (c) => (await c.ready).close()));
  }

  /** Calls claim_need on the agent's session; a broken session (expired, swept) is replaced once. */
  async #claim(identity: string, agentId: string, needId: string): Promise<CallToolResult> {
    const key = `${identity}\u0000${agentId}`;
    for (let attempt = 0; ; attempt++) {
      const session = this.#claimer(key, identity, agentId);
      const client = await session.ready;
      try {
        return (await client.callTool({
          name: 'claim_need',
          arguments: { need_id: needId },
        })) as CallToolResult;
      } catch (error) {
        this.#drop(key, session);
        if (attempt > 0) throw error;
      }
    }
  }

  /**
   * The agent's identity-level MCP session, opened with a token from POST /agent-token and kept
   * until its token is due for renewal or a call on it fails. One per agent, even when claims
   * race: the entry is set before the session opens.
   */
  #claimer(key: string, identity: string, agentId: string): ClaimSession {
    const cached = this.#claimers.get(key);
    if (cached && cached.expiresAt - this.clock.now() > TOKEN_RENEW_MS) return cached;
    if (cached) this.#drop(key, cached);
    const open = async (): Promise<Client> => {
      const { data } = await this.request<{ token: string; expires_at: number }>('/agent-token', {
        identity,
        agent_id: agentId,
      });
      const client = await this.#connect(identity, data.token);
      session.expiresAt = data.expires_at;
      this.#renewBefore(key, identity, agentId, data.expires_at);
      return client;
    };
    const session: ClaimSession = { expiresAt: Number.POSITIVE_INFINITY, ready: open() };
    // A failed open is not kept: the next claim tries again.
    session.ready.catch(() => this.#drop(key, session));
    this.#claimers.set(key, session);
    return session;
  }

  /** Re-opens the agent's claim session shortly before its token is due for renewal. */
  #renewBefore(key: string, identity: string, agentId: string, expiresAt: number): void {
    clearTimeout(this.#renewals.get(key));
    if (this.#closed) return;
    const delay = Math.max(1000, expiresAt - TOKEN_RENEW_MS - this.clock.now() + 1000);
    const timer = setTimeout(() => {
      this.#renewals.delete(key);
      if (this.#closed || !this.#claimers.has(key)) return;
      this.#claimer(key, identity, agentId).ready.catch(() => undefined);
    }, delay);
    timer.unref();
    this.#renewals.set(key, timer);
  }

  #drop(key: string, session: ClaimSession): void {
    if (this.#claimers.get(key) === session) this.#claimers.delete(key);
    session.ready.then((client) => client.close()).catch(() => undefined);
  }

  async #refreshIdentity(name: string): Promise<Identity> {
    await this.identities();
    const identity = this.#identities.get(name);
    if (!identity) throw new MlosError('guard_http', `identity ${name} is not runnable on the guard`);
    return identity;
  }

  async #connect(identity: string, token: string): Promise<Client> {
    const client = new Client(
      { name: `mlos-agent-${identity}`, version: '0.1.0' },
      { jsonSchemaValidator: sharedSchemaValidator },
    );
    await client.connect(
      new StreamableHTTPClientTransport(new URL(this.#o.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    return client;
  }
}
