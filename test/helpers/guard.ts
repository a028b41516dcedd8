import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { identityHash, parseIdentity } from '../../src/kernel/identity/index.js';
import type { Identity } from '../../src/kernel/identity/schema.js';
import {
  connectInMemory,
  createGuardDeps,
  createGuardServer,
  createKernelCompiler,
  type GuardDeps,
  type Principal,
} from '../../src/mcp/index.js';
import { createSeededPrng, ManualClock, Store } from '../../src/store/index.js';

export const IDENTITIES_DIR = join(import.meta.dirname, '../../identities');

/** A store with the example identities pinned, a manual clock, and guard deps over it. */
export function createGuardWorld(options: { leaseMs?: number; path?: string } = {}) {
  const clock = new ManualClock(Date.UTC(2026, 10, 26, 12));
  const store = Store.open(options.path ?? ':memory:', { clock, prng: createSeededPrng(7) });
  for (const name of ['architect', 'context-manager', 'janitor']) {
    const bytes = readFileSync(join(IDENTITIES_DIR, `${name}.md`), 'utf8');
    store.identities.pin(name, identityHash(bytes), bytes);
  }
  const deps: GuardDeps = createGuardDeps(store, {
    leaseMs: options.leaseMs ?? 60_000,
    compiler: createKernelCompiler(store),
    log: () => {},
  });
  const clients: Client[] = [];
  return {
    clock,
    store,
    deps,
    identity: (name: string): Identity => deps.identityOf(name),
    async client(principal: Principal, overrides: Partial<GuardDeps> = {}): Promise<Client> {
      const client = await connectInMemory(createGuardServer({ ...deps, ...overrides }, principal));
      clients.push(client);
      return client;
    },
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      store.close();
    },
  };
}

/**
 * Spends `identity`'s budget of today down to less than one task (`budgets.per_task`), as a task
 * of its that used that much would have (a claimed need of its, then dropped). Returns the tokens
 * spent.
 */
export function spendDayBudget(world: ReturnType<typeof createGuardWorld>, identity: string): number {
  const { store } = world;
  const { perDay, perTask } = world.identity(identity).budgets;
  const spender = store.needs.create({ title: `What ${identity} spent the day on`, tags: ['spent'] });
  const { task } = store.claims.claim(spender.id, { identity, leaseMs: 60_000 });
  const spent = perDay - perTask + 1;
  const reservation = store.budgets.reserve(task.id, spent, { task: null, day: null, run: null });
  store.budgets.settle(reservation.id, {
    inputTokens: spent,
    outputTokens: 0,
    cacheReadTokens: 0,
    cacheWriteTokens: 0,
    costUsd: 0,
  });
  store.tasks.transition(task.id, 'succeeded');
  store.needs.drop(spender.id);
  return spent;
}

/** A frozen identity from front-matter text (tests that need custom tools or scopes). */
export function identityFrom(front: string, name = 'tester'): Identity {
  return parseIdentity(`---\nname: ${name}\n${front}\n---\nYou are a tester.\n`, { file: `${name}.md` });
}

export async function call(
  client: Client,
  name: string,
  args: Record<string, unknown> = {},
): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

export function text(result: CallToolResult): string {
  return result.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
}

export function data<T = Record<string, unknown>>(result: CallToolResult): T {
  if (result.isError) throw new Error(`tool failed: ${text(result)}`);
  return result.structuredContent as T;
}
