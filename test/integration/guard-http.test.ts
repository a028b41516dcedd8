import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GuardHttpServer } from '../../src/mcp/index.js';
import type { StartedTask } from '../../src/scheduler/connector.js';
import { RemoteConnector } from '../../src/scheduler/remote-connector.js';
import { tempDir } from '../helpers/cli.js';
import { call, createGuardWorld, data, text } from '../helpers/guard.js';
import { freePort } from '../helpers/redis-server.js';

const OPERATOR_TOKEN = 'op-secret-token';
const WORKER_TOKEN = 'worker-secret-token';

describe('the guard over Streamable HTTP', () => {
  let world: ReturnType<typeof createGuardWorld>;
  let http: GuardHttpServer;
  let url: string;
  let cleanup: () => void;
  const clients: Client[] = [];

  const connect = async (token: string) => {
    const client = new Client({ name: 'test', version: '0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(url), {
        requestInit: { headers: { Authorization: `Bearer ${token}` } },
      }),
    );
    clients.push(client);
    return client;
  };
  const post = (path: string, token: string | null, body: unknown) =>
    fetch(new URL(path, url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(token && { authorization: `Bearer ${token}` }) },
      body: JSON.stringify(body),
    });

  beforeAll(async () => {
    const tmp = tempDir();
    cleanup = tmp.cleanup;
    world = createGuardWorld({ path: `${tmp.dir}/mlos.db` });
    http = new GuardHttpServer(world.deps, {
      host: '127.0.0.1',
      port: 0,
      operatorToken: OPERATOR_TOKEN,
      workerToken: WORKER_TOKEN,
      tokensConfigured: true,
    });
    url = (await http.start()).url;
  });
  afterAll(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await http.close();
    await world.close();
    cleanup();
  });

  it('answers 401 without a token, with a bad one, and with the worker token on /mcp', async () => {
    const init = {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '0' } },
    };
    expect((await post('/mcp', null, init)).status).toBe(401);
    expect((await post('/mcp', 'nonsense', init)).status).toBe(401);
    const worker = await post('/mcp', WORKER_TOKEN, init);
    expect(worker.status).toBe(401);
    expect(await worker.text()).toContain('exchange it for an agent token');
    expect((await fetch(new URL('/healthz', url))).status).toBe(200);
  });

  it('a second server on the same address is refused with what to do', async () => {
    const port = Number(new URL(url).port);
    const second = new GuardHttpServer(world.deps, {
      host: '127.0.0.1',
      port,
      operatorToken: OPERATOR_TOKEN,
      workerToken: WORKER_TOKEN,
      tokensConfigured: true,
    });
    await expect(second.start()).rejects.toThrow(
      `127.0.0.1:${port} is in use (another mlos run, or another server): listen on another port`,
    );
  });

  it('a worker that cannot reach the guard is told where it looked and why', async () => {
    const closed = `http://127.0.0.1:${await freePort()}/mcp`;
    const connector = new RemoteConnector({ mcpUrl: closed, workerToken: WORKER_TOKEN });
    const origin = new URL(closed).origin;
    await expect(connector.request('/worker/identities')).rejects.toThrow(
      `cannot reach the supervisor's guard at ${origin} (ECONNREFUSED): is \`mlos run --listen ${new URL(closed).host}\` running, and does --mcp name it?`,
    );
    // A guard that takes the connection and never answers (stopped with SIGSTOP, say).
    const silent = createNetServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    try {
      const mute = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/mcp`;
      const waiting = new RemoteConnector({ mcpUrl: mute, workerToken: WORKER_TOKEN, requestTimeoutMs: 200 });
      await expect(waiting.request('/worker/identities')).rejects.toThrow(
        `the supervisor's guard at ${new URL(mute).origin} did not answer /worker/identities within 0.2 s`,
      );
    } finally {
      silent.close();
    }
  });

  it('exchanges the worker token for an agent token whose tools and scope are the identity’s', async () => {
    const res = await post('/agent-token', WORKER_TOKEN, { identity: 'janitor' });
    expect(res.status).toBe(200);
    const { token } = (await res.json()) as { token: string };
    const janitor = await connect(token);
    const tools = (await janitor.listTools()).tools.map((t) => t.name);
    expect(tools).toContain('claim_need');
    expect(tools).not.toContain('cancel_task');
    const op = await connect(OPERATOR_TOKEN);
    const kernel = data<{ id: string }>(await call(op, 'create_need', { title: 'K', tags: ['kernel'] }));
    const refused = await call(janitor, 'claim_need', { need_id: kernel.id });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain('outside the scope of janitor');
    expect((await post('/agent-token', OPERATOR_TOKEN, { identity: 'janitor' })).status).toBe(401);
  });

  it('starts a queued task for a worker and binds the token to its fencing token', async () => {
    const op = await connect(OPERATOR_TOKEN);
    const n = data<{ id: string }>(await call(op, 'create_need', { title: 'Queued work', tags: ['kernel'] }));
    const { taskId } = data<{ taskId: string }>(
      await call(op, 'graduate', { need_id: n.id, identity: 'architect' }),
    );
    const res = await post('/agent-token', WORKER_TOKEN, { task_id: taskId });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { token: string; fencing_token: number };
    const again = await post('/agent-token', WORKER_TOKEN, { task_id: taskId });
    expect(again.status).toBe(409);
    const session = await connect(body.token);
    const done = data<{ needStatus: string }>(
      await call(session, 'finish', { outcome: 'resolved', summary: 'ok' }),
    );
    expect(done.needStatus).toBe('resolved');
  });

  it('leaves a paused or held identity’s queued task waiting, and cancels a task whose need is no longer claimable', async () => {
    const op = await connect(OPERATOR_TOKEN);
    const a = data<{ id: string }>(await call(op, 'create_need', { title: 'Paused work', tags: ['kernel'] }));
    const { taskId: paused } = data<{ taskId: string }>(
      await call(op, 'graduate', { need_id: a.id, identity: 'architect' }),
    );
    await call(op, 'pause_identity', { name: 'architect' });
    const refused = await post('/agent-token', WORKER_TOKEN, { task_id: paused });
    expect(refused.status).toBe(409);
    expect(await refused.text()).toContain('paused by the operator');
    expect(world.store.tasks.require(paused).status).toBe('queued');
    await call(op, 'resume_identity', { name: 'architect' });
    // Held after a model outage: the same, until the hold ends.
    world.store.identities.hold('architect', 'the model call failed: 529 overloaded', () => 60_000);
    const held = await post('/agent-token', WORKER_TOKEN, { task_id: paused });
    expect(held.status).toBe(409);
    expect(await held.text()).toContain('identity architect is held until');
    expect(world.store.tasks.require(paused).status).toBe('queued');
    await call(op, 'resume_identity', { name: 'architect' });
    expect((await post('/agent-token', WORKER_TOKEN, { task_id: paused })).status).toBe(200);

    const b = data<{ id: string }>(await call(op, 'create_need', { title: 'Will wait', tags: ['kernel'] }));
    const { taskId: moot } = data<{ taskId: string }>(
      await call(op, 'graduate', { need_id: b.id, identity: 'architect' }),
    );
    const blocker = data<{ id: string }>(await call(op, 'create_need', { title: 'New prerequisite' }));
    await call(op, 'link', { from: b.id, rel: 'depends_on', to: blocker.id });
    const gone = await post('/agent-token', WORKER_TOKEN, { task_id: moot });
    expect(gone.status).toBe(409);
    expect(await gone.text()).toContain('not actionable: it waits for');
    expect(world.store.tasks.require(moot).status).toBe('cancelled');
    expect((await post('/worker/heartbeat', WORKER_TOKEN, { agents: { id: 'x' } })).status).toBe(400);
  });

  it('serves need states to workers and lets a remote worker take a need over through claim_need', async () => {
    const op = await connect(OPERATOR_TOKEN);
    const n = data<{ id: string }>(
      await call(op, 'create_need', { title: 'Take me over', tags: ['kernel'] }),
    );
    expect((await fetch(new URL(`/worker/need-state?id=${n.id}`, url))).status).toBe(401);
    const connector = new RemoteConnector({ mcpUrl: url, workerToken: WORKER_TOKEN });
    try {
      expect(await connector.needState(n.id)).toMatchObject({
        id: n.id,
        title: 'Take me over',
        tags: ['kernel'],
        status: 'open',
        actionable: true,
        leaseTask: null,
      });
      expect(await connector.needState('need_missing')).toBeUndefined();
      const agents = await Promise.all(
        ['w1', 'w2'].map(async (worker) => {
          const { data: a } = await connector.request<{ agent_id: string }>('/worker/agents', {
            identity: 'architect',
            capacity: 1,
            worker,
          });
          return a.agent_id;
        }),
      );
      // The first agent's claim session is opened ahead (no handshake on its first takeover).
      await connector.prepareClaims([{ identity: 'architect', agentId: agents[0]! }]);
      const [first, second] = await Promise.all(
        agents.map((agentId) => connector.claimAndStart(n.id, 'architect', agentId)),
      );
      const won = [first, second].filter((r) => r && 'started' in r);
      const lost = [first, second].filter((r) => r && 'refused' in r);
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({ refused: expect.stringContaining('a live lease is never displaced') });
      // The guard says when the loser may try again: the winner's lease expiry.
      expect((lost[0] as { eligibleAt: number }).eligibleAt).toBe(world.store.leases.require(n.id).expiresAt);
      const started = (won[0] as { started: StartedTask }).started;
      expect(started).toMatchObject({ needId: n.id, needTitle: 'Take me over', needTags: ['kernel'] });
      expect(started.identity.name).toBe('architect');
      expect(await connector.needState(n.id)).toMatchObject({ leaseTask: started.taskId });
      const claimed = world.store.events
        .since(0, 100_000)
        .filter((e) => e.kind === 'need.claimed' && e.needId === n.id);
      expect(claimed.map((e) => e.payload)).toEqual([expect.objectContaining({ roundTable: true })]);
      // The session's client is bound to the new task and its fencing token.
      const done = data<{ needStatus: string }>(
        await call(started.client, 'finish', { outcome: 'resolved', summary: 'taken over and done' }),
      );
      expect(done.needStatus).toBe('resolved');
      await started.close();
    } finally {
      await connector.close();
    }
  });

  it('a worker whose clock is 13 h ahead reads the guard’s times on the guard’s clock', async () => {
    const op = await connect(OPERATOR_TOKEN);
    const queued = data<{ id: string }>(await call(op, 'create_need', { title: 'Queued', tags: ['kernel'] }));
    const { taskId } = data<{ taskId: string }>(
      await call(op, 'graduate', { need_id: queued.id, identity: 'architect' }),
    );
    const skewMs = 13 * 3_600_000;
    const asked: string[] = [];
    const connector = new RemoteConnector({
      mcpUrl: url,
      workerToken: WORKER_TOKEN,
      clock: { now: () => world.clock.now() + skewMs },
      fetch: (input, init) => {
        asked.push(new URL(String(input)).pathname);
        return fetch(input, init);
      },
    });
    try {
      const started = (await connector.startTask(taskId))!;
      // The guard's clock stands still in this world: each exchange reads the same guard time.
      expect(connector.clock.offsetMs).toBe(-skewMs);
      // 60 s of lease, read on the guard's clock (on this host's, it would have ended 13 h ago).
      expect(started.leaseUntil - connector.clock.now()).toBe(60_000);
      await call(started.client, 'finish', { outcome: 'resolved', summary: 'done' });
      await started.close();

      // The agent's claim session (its token lasts 12 h on the guard's clock) is opened once and
      // kept: read on this host's clock, the token would look expired and be renewed every claim.
      const { data: agent } = await connector.request<{ agent_id: string }>('/worker/agents', {
        identity: 'architect',
        capacity: 2,
        worker: 'skewed',
      });
      await connector.prepareClaims([{ identity: 'architect', agentId: agent.agent_id }]);
      for (const title of ['First', 'Second']) {
        const n = data<{ id: string }>(await call(op, 'create_need', { title, tags: ['kernel'] }));
        const claimed = await connector.claimAndStart(n.id, 'architect', agent.agent_id);
        expect(claimed).toHaveProperty('started');
        const next = (claimed as { started: StartedTask }).started;
        expect(next.leaseUntil - connector.clock.now()).toBe(60_000);
        await call(next.client, 'finish', { outcome: 'resolved', summary: 'done' });
        await next.close();
      }
      expect(asked.filter((p) => p === '/agent-token')).toHaveLength(2);
    } finally {
      await connector.close();
    }
  });

  it('50 concurrent claims of one need: exactly one wins, 49 clear refusals (20 rounds)', async () => {
    const op = await connect(OPERATOR_TOKEN);
    const tokens = await Promise.all(
      Array.from({ length: 50 }, async () => {
        const r = await post('/agent-token', WORKER_TOKEN, { identity: 'architect' });
        return ((await r.json()) as { token: string }).token;
      }),
    );
    const agents = await Promise.all(tokens.map((t) => connect(t)));
    for (let round = 0; round < 20; round++) {
      const n = data<{ id: string }>(
        await call(op, 'create_need', { title: `Contested ${round}`, tags: ['kernel'] }),
      );
      const results = await Promise.all(agents.map((a) => call(a, 'claim_need', { need_id: n.id })));
      const wins = results.filter((r) => !r.isError);
      const losses = results.filter((r) => r.isError);
      expect(wins).toHaveLength(1);
      expect(losses).toHaveLength(49);
      for (const loss of losses)
        expect(text(loss)).toMatch(/is held by task task_\w+ until .* \(a live lease is never displaced\)/);
      expect(world.store.tasks.forNeed(n.id)).toHaveLength(1);
    }
    expect(world.store.events.verify().ok).toBe(true);
  });
});

describe('extra routes (/metrics) of the guard over HTTP', () => {
  const serve = async (host: string) => {
    const tmp = tempDir();
    const world = createGuardWorld({ path: `${tmp.dir}/mlos.db` });
    const http = new GuardHttpServer(world.deps, {
      host,
      port: 0,
      operatorToken: OPERATOR_TOKEN,
      workerToken: WORKER_TOKEN,
      tokensConfigured: true,
      extraRoutes: (req, res) => {
        if (req.url !== '/metrics') return false;
        res.writeHead(200, { 'content-type': 'text/plain' }).end('mlos_up 1\n');
        return true;
      },
    });
    const { url } = await http.start();
    const port = new URL(url).port;
    return {
      get: (token?: string) =>
        fetch(`http://127.0.0.1:${port}/metrics`, {
          headers: token ? { authorization: `Bearer ${token}` } : {},
        }),
      async close() {
        await http.close();
        await world.close();
        tmp.cleanup();
      },
    };
  };

  it('need the operator or worker token off loopback, and name what is missing', async () => {
    const server = await serve('0.0.0.0');
    try {
      const refused = await server.get();
      expect(refused.status).toBe(401);
      expect(((await refused.json()) as { error: string }).error).toMatch(
        /\/metrics needs the operator or worker token as bearer/,
      );
      expect((await server.get('wrong')).status).toBe(401);
      const asOperator = await server.get(OPERATOR_TOKEN);
      expect(asOperator.status).toBe(200);
      expect(await asOperator.text()).toBe('mlos_up 1\n');
      expect((await server.get(WORKER_TOKEN)).status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('are open on loopback', async () => {
    const server = await serve('127.0.0.1');
    try {
      const open = await server.get();
      expect(open.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});
