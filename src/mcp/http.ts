import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { MlosError, NotClaimableError, UserError } from '../store/index.js';
import { assertRunnable } from './agent-claim.js';
import { createGuardServer } from './guard.js';
import {
  bearer,
  GUARD_NOW_HEADER,
  hash,
  INVALID,
  isLoopback,
  readJson,
  refuseOpenBindWithoutTokens,
  sendJson,
} from './http-io.js';
import { notifyOnChange } from './notify.js';
import { OPERATOR, type Principal } from './principal.js';
import type { GuardDeps } from './session.js';
import { type AgentClaims, safeEqual, signAgentToken, verifyAgentToken } from './tokens.js';

export interface GuardHttpOptions {
  readonly host: string;
  readonly port: number;
  /** Bearer token that grants operator scope. */
  readonly operatorToken: string;
  /** Bearer token a worker exchanges for agent tokens at POST /agent-token. */
  readonly workerToken: string;
  /** True when the tokens came from configuration (not generated for this start). */
  readonly tokensConfigured: boolean;
  /** How long agent tokens live, in ms (default 12 h). */
  readonly agentTokenTtlMs?: number;
  /** The queue namespace remote workers must use (distributed mode). */
  readonly namespace?: string;
  /** Extra routes (e.g. /metrics) answered before the MCP endpoint; return true when handled. */
  readonly extraRoutes?: (req: IncomingMessage, res: ServerResponse) => boolean | Promise<boolean>;
}

interface Session {
  readonly transport: StreamableHTTPServerTransport;
  readonly server: McpServer;
  readonly tokenHash: string;
  lastSeen: number;
}

const SIGNING_KEY = 'agent-token-key';

/**
 * The guard over Streamable HTTP with bearer tokens: `/mcp` (stateful sessions, one guard per
 * session bound to the caller's principal), `/agent-token` (worker token → agent token) and
 * `/healthz`. Loopback by default; a non-loopback bind without tokens is refused at start.
 */
export class GuardHttpServer {
  readonly #deps: GuardDeps;
  readonly #options: GuardHttpOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #key: string;
  #http: Server | undefined;
  #sweep: NodeJS.Timeout | undefined;
  #stopNotify: (() => void) | undefined;

  constructor(deps: GuardDeps, options: GuardHttpOptions) {
    refuseOpenBindWithoutTokens(options.host, options.tokensConfigured);
    this.#deps = deps;
    this.#options = options;
    this.#key = deps.store.secrets.getOrCreate(SIGNING_KEY);
  }

  /** Mints a token for a task or an identity (used by claim_need and by /agent-token). */
  issue(claims: Omit<AgentClaims, 'v' | 'exp'>): { token: string; expiresAt: number } {
    const expiresAt = this.#deps.store.clock.now() + (this.#options.agentTokenTtlMs ?? 12 * 3_600_000);
    return { token: signAgentToken({ v: 1, ...claims, exp: expiresAt }, this.#key), expiresAt };
  }

  async start(): Promise<{ url: string; port: number }> {
    const http = createServer((req, res) => {
      this.#route(req, res).catch((error: unknown) => {
        this.#deps.log('guard http request failed', error);
        if (!res.headersSent) sendJson(res, 500, { error: 'internal error in the guard' });
      });
    });
    await new Promise<void>((resolve, reject) => {
      http.once('error', (error: NodeJS.ErrnoException) => {
        const at = `${this.#options.host}:${this.#options.port}`;
        if (error.code === 'EADDRINUSE')
          reject(
            new UserError(`${at} is in use (another mlos run, or another server): listen on another port`),
          );
        else if (error.code === 'EADDRNOTAVAIL')
          reject(
            new UserError(
              `${at} is not an address of this machine: listen on one of its own (e.g. 127.0.0.1)`,
            ),
          );
        else reject(error);
      });
      http.listen(this.#options.port, this.#options.host, () => resolve());
    });
    this.#http = http;
    this.#sweep = setInterval(() => this.#closeIdle(30 * 60_000), 60_000).unref();
    this.#stopNotify = notifyOnChange(this.#deps.store, () =>
      [...this.#sessions.values()].map((s) => s.server),
    );
    const port = (http.address() as AddressInfo).port;
    const host = this.#options.host.includes(':') ? `[${this.#options.host}]` : this.#options.host;
    return { url: `http://${host}:${port}/mcp`, port };
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    this.#stopNotify?.();
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.allSettled(sessions.flatMap((s) => [s.transport.close(), s.server.close()]));
    const http = this.#http;
    this.#http = undefined;
    if (http) {
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    }
  }

  async #route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    res.setHeader(GUARD_NOW_HEADER, String(this.#deps.store.clock.now()));
    if (path === '/healthz' && req.method === 'GET') return sendJson(res, 200, { ok: true });
    if (
      this.#options.extraRoutes &&
      path !== '/mcp' &&
      path !== '/agent-token' &&
      !path.startsWith('/worker/')
    ) {
      // Off loopback, /metrics and the other extra routes need the operator or worker token.
      if (!isLoopback(this.#options.host) && !this.#operatorOrWorker(req)) {
        res.setHeader('WWW-Authenticate', 'Bearer');
        return sendJson(res, 401, {
          error: `${path} needs the operator or worker token as bearer when the guard listens on ${this.#options.host}`,
        });
      }
      if (await this.#options.extraRoutes(req, res)) return;
    }
    if (path === '/agent-token' && req.method === 'POST') return this.#agentToken(req, res);
    if (path.startsWith('/worker/')) return this.#workerRoute(path, req, res);
    if (path !== '/mcp') return sendJson(res, 404, { error: `no route ${req.method} ${path}` });

    const token = bearer(req);
    const principal = token ? this.#principalOf(token) : { error: 'missing bearer token' };
    if ('error' in principal) {
      res.setHeader(
        'WWW-Authenticate',
        `Bearer error="invalid_token", error_description="${principal.error}"`,
      );
      return sendJson(res, 401, { error: principal.error });
    }
    const tokenHash = hash(token!);
    const sessionId = req.headers['mcp-session-id'];
    if (typeof sessionId === 'string') {
      const session = this.#sessions.get(sessionId);
      if (!session) return sendJson(res, 404, { error: 'unknown MCP session: initialize a new one' });
      if (session.tokenHash !== tokenHash)
        return sendJson(res, 403, { error: 'this session belongs to another token' });
      session.lastSeen = Date.now();
      const body = req.method === 'POST' ? await readJson(req, res) : undefined;
      if (body === INVALID) return;
      return session.transport.handleRequest(req, res, body);
    }
    if (req.method !== 'POST')
      return sendJson(res, 400, { error: 'start with an initialize request (POST)' });
    const body = await readJson(req, res);
    if (body === INVALID) return;
    if (!isInitializeRequest(body))
      return sendJson(res, 400, { error: 'no MCP session: send initialize first' });
    const server = createGuardServer(
      { ...this.#deps, issueAgentToken: (taskId) => this.#issueForTask(taskId) },
      principal.principal,
    );
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        this.#sessions.set(id, { transport, server, tokenHash, lastSeen: Date.now() });
      },
    });
    transport.onclose = () => {
      if (transport.sessionId) this.#sessions.delete(transport.sessionId);
    };
    await server.connect(transport);
    await transport.handleRequest(req, res, body);
  }

  #principalOf(token: string): { principal: Principal } | { error: string } {
    const { operatorToken, workerToken } = this.#options;
    if (safeEqual(token, operatorToken)) return { principal: OPERATOR };
    if (safeEqual(token, workerToken)) {
      return {
        error: 'a worker token cannot call tools: exchange it for an agent token at POST /agent-token',
      };
    }
    const verified = verifyAgentToken(token, this.#key, this.#deps.store.clock.now());
    if (!verified.ok) return { error: verified.reason };
    const { claims } = verified;
    let identity: ReturnType<GuardDeps['identityOf']>;
    try {
      identity = this.#deps.identityOf(claims.identity);
    } catch (error) {
      return { error: error instanceof MlosError ? error.message : 'unknown identity' };
    }
    const task =
      claims.task && claims.need && claims.fence !== undefined
        ? { id: claims.task, needId: claims.need, fence: { taskId: claims.task, token: claims.fence } }
        : undefined;
    return {
      principal: {
        kind: 'agent',
        identity,
        ...(claims.agentId !== undefined && { agentId: claims.agentId }),
        ...(task && { task }),
      },
    };
  }

  #issueForTask(taskId: string): { token: string; expiresAt: number } {
    const task = this.#deps.store.tasks.require(taskId);
    return this.issue({
      identity: task.identity,
      task: task.id,
      need: task.needId,
      fence: task.fencingToken,
      ...(task.agentId && { agentId: task.agentId }),
    });
  }

  #operatorOrWorker(req: IncomingMessage): boolean {
    const token = bearer(req);
    return (
      token !== undefined &&
      (safeEqual(token, this.#options.operatorToken) || safeEqual(token, this.#options.workerToken))
    );
  }

  /**
   * POST /agent-token with the worker token. `{ task_id }` starts that queued task (a claim
   * by its identity) and returns a token bound to it and its fencing token; `{ identity }`
   * returns an identity-level token (for the round-table loop, which claims needs itself).
   */
  async #agentToken(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = bearer(req);
    if (!token || !safeEqual(token, this.#options.workerToken)) {
      return sendJson(res, 401, { error: 'POST /agent-token needs the worker token as bearer' });
    }
    const body = await readJson(req, res);
    if (body === INVALID) return;
    const { task_id, identity, agent_id } = (body ?? {}) as {
      task_id?: unknown;
      identity?: unknown;
      agent_id?: unknown;
    };
    const agentId = typeof agent_id === 'string' ? agent_id : undefined;
    try {
      if (typeof task_id === 'string') {
        const store = this.#deps.store.as('worker');
        const queued = store.tasks.require(task_id);
        if (queued.status !== 'queued') {
          return sendJson(res, 409, {
            error: `task ${task_id} is ${queued.status}, not queued: its job is superseded`,
          });
        }
        try {
          assertRunnable(store, queued.identity);
        } catch (error) {
          // Paused or drifted: the task waits, queued, until the operator acts (reconciliation re-rings).
          return sendJson(res, 409, { error: (error as Error).message });
        }
        const claim = store.claims.claim(queued.needId, {
          identity: queued.identity,
          leaseMs: this.#deps.leaseMs,
          ...(agentId && { agentId }),
        });
        if (claim.task.id !== task_id) {
          return sendJson(res, 409, { error: `task ${task_id} was taken over: its job is superseded` });
        }
        const issued = this.#issueForTask(task_id);
        const need = store.needs.require(claim.task.needId);
        return sendJson(res, 200, {
          identity_source: store.identities.require(claim.task.identity).content,
          need_title: need.title,
          need_tags: need.tags,
          token: issued.token,
          expires_at: issued.expiresAt,
          task_id,
          need_id: claim.task.needId,
          identity: claim.task.identity,
          fencing_token: claim.fence.token,
          lease_until: claim.leaseUntil,
        });
      }
      if (typeof identity === 'string') {
        this.#deps.identityOf(identity);
        const issued = this.issue({ identity, ...(agentId && { agentId }) });
        return sendJson(res, 200, { token: issued.token, expires_at: issued.expiresAt, identity });
      }
      return sendJson(res, 400, { error: 'send { "task_id": "task_…" } or { "identity": "name" }' });
    } catch (error) {
      if (error instanceof NotClaimableError) {
        // The need changed since graduation (a new dependency, dropped…): this task is moot.
        const store = this.#deps.store.as('worker');
        if (typeof task_id === 'string' && store.tasks.get(task_id)?.status === 'queued') {
          store.tasks.cancel(task_id, `no longer claimable: ${error.message}`);
        }
        return sendJson(res, 409, { error: error.message });
      }
      if (error instanceof MlosError) return sendJson(res, 400, { error: error.message });
      throw error;
    }
  }

  /**
   * Worker bookkeeping with the worker token: `GET /worker/identities` (runnable identities with
   * their pinned bytes), `GET /worker/need-state?id=…` (a need's compact state now, for the
   * round-table loop), `POST /worker/agents` (register `{ identity, capacity, worker }`) and
   * `POST /worker/heartbeat` (`{ agents: [{ id, load }] }`). Remote workers never touch SQLite.
   */
  async #workerRoute(path: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const token = bearer(req);
    if (!token || !safeEqual(token, this.#options.workerToken)) {
      return sendJson(res, 401, { error: `${path} needs the worker token as bearer` });
    }
    const store = this.#deps.store.as('worker');
    try {
      if (path === '/worker/identities' && req.method === 'GET') {
        const identities = store.identities
          .list()
          .filter((p) => p.driftHash === null && !p.paused)
          .map((p) => ({ name: p.name, hash: p.hash, source: p.content }));
        return sendJson(res, 200, { identities, namespace: this.#options.namespace ?? null });
      }
      if (path === '/worker/need-state' && req.method === 'GET') {
        const id = new URL(req.url ?? '/', 'http://x').searchParams.get('id');
        if (!id) return sendJson(res, 400, { error: 'send ?id=need_…' });
        const state = store.scheduling.needState(id, store.clock.now());
        if (!state) return sendJson(res, 404, { error: `no need ${id}` });
        return sendJson(res, 200, state);
      }
      const body = (await readJson(req, res)) as Record<string, unknown> | undefined | typeof INVALID;
      if (body === INVALID) return;
      if (path === '/worker/agents' && req.method === 'POST') {
        const { identity, capacity, worker } = body ?? {};
        if (typeof identity !== 'string' || typeof capacity !== 'number' || typeof worker !== 'string') {
          return sendJson(res, 400, { error: 'send { "identity": name, "capacity": n, "worker": name }' });
        }
        const pin = store.identities.require(identity);
        const agent = store.agents.register(identity, pin.hash, worker, capacity);
        return sendJson(res, 200, { agent_id: agent.id });
      }
      if (path === '/worker/heartbeat' && req.method === 'POST') {
        const agents = body?.['agents'] ?? [];
        if (!Array.isArray(agents))
          return sendJson(res, 400, { error: 'send { "agents": [{ "id": agent id, "load": n }] }' });
        for (const a of agents as { id?: unknown; load?: unknown }[]) {
          if (typeof a.id === 'string' && typeof a.load === 'number') store.agents.heartbeat(a.id, a.load);
        }
        return sendJson(res, 200, { ok: true });
      }
      if (path === '/worker/stop' && req.method === 'POST') {
        for (const id of (body?.['agents'] ?? []) as unknown[])
          if (typeof id === 'string') store.agents.stop(id);
        return sendJson(res, 200, { ok: true });
      }
      return sendJson(res, 404, { error: `no route ${req.method} ${path}` });
    } catch (error) {
      if (error instanceof MlosError) return sendJson(res, 400, { error: error.message });
      throw error;
    }
  }

  #closeIdle(maxIdleMs: number): void {
    const cutoff = Date.now() - maxIdleMs;
    for (const [id, session] of this.#sessions) {
      if (session.lastSeen < cutoff) {
        this.#sessions.delete(id);
        void session.transport.close();
        void session.server.close();
      }
    }
  }
}
