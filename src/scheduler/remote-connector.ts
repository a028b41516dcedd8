import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { parseIdentity } from '../kernel/identity/index.js';
import type { Identity } from '../kernel/identity/schema.js';
import { MlosError } from '../store/index.js';
import type { GuardConnector, StartedTask } from './connector.js';

export interface RemoteConnectorOptions {
  /** The guard's MCP endpoint, e.g. http://127.0.0.1:7411/mcp. */
  readonly mcpUrl: string;
  readonly workerToken: string;
  readonly fetch?: typeof fetch;
}

/**
 * Distributed mode: the worker reaches the guard over Streamable HTTP. Starting a task trades the
 * worker token for an agent token bound to the task and its fencing token; the identity comes
 * from the pinned bytes the guard returns (workers never read identity files).
 */
export class RemoteConnector implements GuardConnector {
  readonly #o: RemoteConnectorOptions;
  readonly #base: URL;
  readonly #fetch: typeof fetch;

  constructor(options: RemoteConnectorOptions) {
    this.#o = options;
    this.#base = new URL(options.mcpUrl);
    this.#fetch = options.fetch ?? fetch;
  }

  /** POST or GET a worker route with the worker token; throws an MlosError with the guard's reason. */
  async request<T>(path: string, body?: unknown): Promise<{ status: number; data: T }> {
    const res = await this.#fetch(new URL(path, this.#base), {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${this.#o.workerToken}`, 'content-type': 'application/json' },
      ...(body !== undefined && { body: JSON.stringify(body) }),
    });
    const data = (await res.json().catch(() => ({}))) as T & { error?: string };
    if (res.status >= 400 && res.status !== 409) {
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
    return data.identities.map((p) =>
      parseIdentity(p.source, { file: `${p.name}.md (pinned)`, name: p.name }),
    );
  }

  async startTask(taskId: string, agentId?: string): Promise<StartedTask | null> {
    const { status, data } = await this.request<{
      token: string;
      need_id: string;
      identity: string;
      identity_source: string;
      need_title: string;
      need_tags: string[];
    }>('/agent-token', { task_id: taskId, ...(agentId && { agent_id: agentId }) });
    if (status === 409) return null;
    const identity = parseIdentity(data.identity_source, {
      file: `${data.identity}.md (pinned)`,
      name: data.identity,
    });
    const client = new Client({ name: `mlos-agent-${identity.name}`, version: '0.1.0' });
    await client.connect(
      new StreamableHTTPClientTransport(new URL(this.#o.mcpUrl), {
        requestInit: { headers: { Authorization: `Bearer ${data.token}` } },
      }),
    );
    return {
      taskId,
      needId: data.need_id,
      identity,
      needTitle: data.need_title,
      needTags: data.need_tags,
      client,
      close: () => client.close(),
    };
  }
}
