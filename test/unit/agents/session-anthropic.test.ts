import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AnthropicProvider } from '../../../src/agents/providers/index.js';
import { runAgentSession } from '../../../src/agents/session.js';
import { type FakeLlmServer, fake, startFakeLlmServer } from '../../helpers/fake-llm-server.js';
import { createGuardWorld } from '../../helpers/guard.js';

/** The agent loop through the real Anthropic SDK against a local server speaking its wire format. */
describe('agent sessions over the Anthropic adapter', () => {
  let server: FakeLlmServer;
  let world: ReturnType<typeof createGuardWorld>;
  beforeAll(async () => {
    server = await startFakeLlmServer({ apiKey: 'sk-test' });
    world = createGuardWorld();
  });
  afterAll(async () => {
    await world.close();
    await server.close();
  });

  const session = async (title: string) => {
    const need = world.store.needs.create({ title, tags: ['kernel'], body: `Details of ${title}.` });
    const identity = world.identity('architect');
    const claim = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
    const client = await world.client({
      kind: 'agent',
      identity,
      task: { id: claim.task.id, needId: need.id, fence: claim.fence },
    });
    server.reply(
      fake.toolCall(
        'finish',
        { outcome: 'resolved', summary: `did ${title}` },
        { usage: { input: 900, output: 40, cacheRead: 2000 } },
      ),
    );
    const provider = new AnthropicProvider({ apiKey: 'sk-test', baseUrl: server.anthropicBaseUrl });
    return runAgentSession({
      client,
      provider,
      model: 'claude-sonnet-5-5',
      task: { id: claim.task.id, needId: need.id, identity },
      heartbeatMs: 3_600_000,
    });
  };

  it('puts cache_control after L1 and after L2, and L1 bytes are identical across tasks', async () => {
    const first = await session('Kernel boots from pinned bytes');
    const second = await session('Packs stay within budget');
    expect(first.outcome).toBe('resolved');
    expect(second.outcome).toBe('resolved');
    expect(first.usage.cacheReadTokens).toBe(2000);
    const [a, b] = server.requests.filter((r) => r.api === 'anthropic').map((r) => r.body);
    for (const body of [a, b]) {
      expect(body.system).toHaveLength(2);
      expect(body.system[0].cache_control).toEqual({ type: 'ephemeral' });
      expect(body.system[1].cache_control).toEqual({ type: 'ephemeral' });
      expect(JSON.stringify(body.messages)).not.toContain('cache_control');
      expect(body).not.toHaveProperty('temperature');
    }
    // Everything before the first breakpoint (tools, then the L1 block) is byte-identical.
    expect(JSON.stringify(a.tools)).toBe(JSON.stringify(b.tools));
    expect(JSON.stringify(a.system[0])).toBe(JSON.stringify(b.system[0]));
    expect(a.system[0].text).toContain('ML OS Architect');
    expect(a.messages[0].content).not.toEqual(b.messages[0].content);
    expect(world.store.budgets.totals().tokens).toBe(2 * (900 + 40 + 2000));
  });
});
