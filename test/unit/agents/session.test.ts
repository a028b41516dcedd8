// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmProvider, LlmRequest } from '../../../src/agents/provider.js';
import { ScriptedProvider, type ScriptInput } from '../../../src/agents/providers/index.js';
import { runAgentSession, type SessionEvent } from '../../../src/agents/session.js';
import type { Identity } from '../../../src/kernel/identity/schema.js';
import type { GuardDeps } from '../../../src/mcp/index.js';
import { createGuardWorld, identityFrom } from '../../helpers/guard.js';

type World = ReturnType<typeof createGuardWorld>;

const finish = (outcome: string, extra: Record<string, unknown> = {}) => ({
  tool: 'finish',
  args: { outcome, summary: `${outcome} by the script`, ...extra },
});

/** Counts calls and lets a test act between them. */
class Spy implements LlmProvider {
  readonly name = 'scripted' as const;
  calls = 0;
  constructor(
    readonly inner: LlmProvider,
    readonly before?: (call: number, request: LlmRequest) => void,
  ) {}
  async complete(request: LlmRequest) {
    this.calls++;
    this.before?.(this.calls, request);
    return this.inner.complete(request);
  }
}

describe('the agent loop over the in-memory guard with the scripted provider', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());

  const run = async (
    needId: string,
    script: ScriptInput,
    options: {
      identity?: Identity;
      before?: Spy['before'];
      events?: SessionEvent[];
      /** Collects the name of every guard tool the loop calls. */
      tools?: string[];
      /** Answers instead of the script (for turns the script language cannot express). */
      provider?: LlmProvider;
      /** Hands the session its lease's end; retry waits then pass on the world's clock. */
      lease?: boolean;
      /** Collects the waits the session sleeps. */
      slept?: number[];
      /** Guard settings of this session's client (say, a retry delay, so outages hold). */
      guard?: Partial<GuardDeps>;
    } = {},
  ) => {
    const identity = options.identity ?? world.identity('architect');
    if (options.identity) world.store.identities.pin(identity.name, identity.hash, identity.source);
    const claim = world.store.claims.claim(needId, { identity: identity.name, leaseMs: 60_000 });
    const client = await world.client(
      {
        kind: 'agent',
        identity,
        task: { id: claim.task.id, needId, fence: claim.fence },
      },
      options.guard,
    );
    if (options.tools) {
      const callTool = client.callTool.bind(client);
      client.callTool = (params, ...rest) => {
        options.tools!.push(params.name);
        return callTool(params, ...rest);
      };
    }
    const provider = new Spy(
      options.provider ?? new ScriptedProvider({ script, sleep: async () => {} }),
      options.before,
    );
    const result = await runAgentSession({
      client,
      provider,
      model: 'test',
      task: { id: claim.task.id, needId, identity, ...(options.lease && { leaseUntil: claim.leaseUntil }) },
      clock: world.clock,
      sleep: async (ms) => {
        options.slept?.push(ms);
        if (options.lease) world.clock.advance(ms);
      },
      heartbeatMs: 3_600_000,
      ...(options.events && { onEvent: (e) => options.events!.push(e) }),
    });
    return { result, provider, taskId: claim.task.id };
  };
  const need = (title = 'Make the kernel testable', tags = ['kernel']) =>
    world.store.needs.create({ title, tags });

  it('resolves: reads, notes, finishes; stores the transcript and links the note to it', async () => {
    const n = need();
    const { result, taskId } = await run(n.id, {
      rules: [
        {
          steps: [
            { tool: 'get_need', args: { id: '${need.id}' }, as: 'need' },
            {
              tool: 'add_note',
              args: { need_id: '${need.id}', title: 'Seen', content: 'Title: ${steps.need.need.title}' },
            },
            finish('resolved'),
          ],
        },
      ],
    });
    expect(result).toMatchObject({ outcome: 'resolved', turns: 3, toolCalls: 3 });
    expect(world.store.needs.require(n.id).status).toBe('resolved');
    const task = world.store.tasks.require(taskId);
    expect(task).toMatchObject({ status: 'succeeded', outcome: 'resolved' });
    expect(task.packHash).toMatch(/^[0-9a-f]{64}$/);
    expect(task.tokensIn).toBeGreaterThan(0);
    const artifacts = world.store.artifacts.forNeed(n.id);
    const note = artifacts.find((a) => a.kind === 'note')!;
    const transcript = artifacts.find((a) => a.kind === 'transcript')!;
    expect(note.content).toBe('Title: Make the kernel testable');
    expect(transcript.content).toContain('→ add_note');
    expect(transcript.content).toContain('→ finish');
    expect(world.store.edges.get(note.id, 'source_transcript', transcript.id)).toBeDefined();
    expect(world.store.edges.get(transcript.id, 'produced_by', taskId)).toBeDefined();
    expect(world.store.events.verify().ok).toBe(true);
  });

  it('progresses: the need stays open for a later attempt', async () => {
    const n = need();
    const { result, taskId } = await run(n.id, { rules: [{ steps: [finish('progressed')] }] });
    expect(result.outcome).toBe('progressed');
    expect(world.store.needs.require(n.id).status).toBe('open');
    expect(world.store.tasks.require(taskId).outcome).toBe('progressed');
  });

  it('blocks with sub-needs that reuse values of earlier tool calls', async () => {
    const n = need();
    const { result } = await run(n.id, {
      rules: [
        {
          steps: [
            { tool: 'create_need', args: { title: 'Prerequisite', tags: ['kernel'] }, as: 'pre' },
            { tool: 'link', args: { from: '${need.id}', rel: 'depends_on', to: '${steps.pre.id}' } },
            finish('blocked', { sub_needs: [{ title: 'Second prerequisite' }] }),
          ],
        },
      ],
    });
    expect(result.outcome).toBe('blocked');
    const deps = world.store.edges.from(n.id, 'depends_on').map((e) => world.store.needs.require(e.to).title);
    expect(deps.sort()).toEqual(['Prerequisite', 'Second prerequisite']);
    expect(world.store.needs.isActionable(n.id, world.clock.now()).ok).toBe(false);
  });

  it('records the finishing turn’s progress and usage in the finish itself: one commit', async () => {
    const n = need();
    const tools: string[] = [];
    const { taskId } = await run(n.id, { rules: [{ steps: [finish('resolved')] }] }, { tools });
    expect(tools).toEqual(['reserve_budget', 'finish']);
    const task = world.store.tasks.require(taskId);
    expect(task.progressAt).not.toBeNull();
    expect(task.heartbeatAt).not.toBeNull();
    // The reservation is settled: the task's budget holds what the call used, not the worst case.
    expect(task.tokensIn).toBeGreaterThan(0);
    const spent = task.tokensIn + task.tokensOut + task.tokensCacheRead + task.tokensCacheWrite;
    expect(world.store.budgets.used('task', taskId)).toBe(spent);
  });

  it("hands the provider the conversation's prompt count, which the scripted usage takes as its input", async () => {
    const n = need();
    const requests: LlmRequest[] = [];
    const { taskId } = await run(
      n.id,
      { rules: [{ steps: [finish('resolved')] }] },
      { before: (_call, request) => requests.push(request) },
    );
    expect(requests).toHaveLength(1);
    expect(requests[0]!.promptTokens).toBeGreaterThan(0);
    expect(world.store.tasks.require(taskId).tokensIn).toBe(requests[0]!.promptTokens);
  });

  it('heartbeats before the calls of a turn that also calls finish, so they run under a renewed lease', async () => {
    const n = need();
    const tools: string[] = [];
    const oneTurn: LlmProvider = {
      name: 'scripted',
      complete: async (request) => ({
        content: [
          {
            type: 'tool_call',
            id: 'c1',
            name: 'add_note',
            input: { need_id: n.id, title: 'Seen', content: 'x' },
          },
          { type: 'tool_call', id: 'c2', name: 'finish', input: { outcome: 'resolved', summary: 'done' } },
        ],
        stopReason: 'tool_use',
        usage: { inputTokens: 10, outputTokens: 5, cacheReadTokens: 0, cacheWriteTokens: 0 },
        costUsd: 0,
        model: request.model,
      }),
    };
    const { result, taskId } = await run(n.id, { rules: [] }, { tools, provider: oneTurn });
    expect(result.outcome).toBe('resolved');
    expect(tools).toEqual(['reserve_budget', 'heartbeat', 'add_note', 'finish']);
    expect(world.store.budgets.used('task', taskId)).toBe(15);
  });

  it('settles and heartbeats after a refused finish, and the session goes on', async () => {
    const n = need();
    const tools: string[] = [];
    const { result, taskId } = await run(
      n.id,
      // blocked without sub-needs is refused; the model then gives up properly.
      { rules: [{ steps: [finish('blocked'), finish('failed', { reason: 'no way to split it' })] }] },
      { tools },
    );
    expect(result.outcome).toBe('failed');
    // The refused finish settled nothing: the loop settles the call itself, then reports progress.
    expect(tools).toEqual([
      'reserve_budget',
      'finish',
      'settle_budget',
      'heartbeat',
      'reserve_budget',
      'finish',
    ]);
    const task = world.store.tasks.require(taskId);
    const spent = task.tokensIn + task.tokensOut + task.tokensCacheRead + task.tokensCacheWrite;
    expect(world.store.budgets.used('task', taskId)).toBe(spent);
  });

  it('fails with the reason the model gave', async () => {
    const n = need();
    const { result, taskId } = await run(n.id, {
      rules: [{ steps: [finish('failed', { reason: 'the spec contradicts itself' })] }],
    });
    expect(result).toMatchObject({ outcome: 'failed', reason: 'the spec contradicts itself' });
    expect(world.store.tasks.require(taskId)).toMatchObject({
      status: 'failed',
      error: 'the spec contradicts itself',
    });
  });

  it('refuses a call that could exceed the budget: the call is not made and the task fails', async () => {
    const tiny = identityFrom(
      'objective: test\nscope: { primary: [kernel] }\nbudgets: { per_task: 500, per_day: 1000 }',
      'tiny',
    );
    const n = need();
    const { result, provider, taskId } = await run(
      n.id,
      { rules: [{ steps: [finish('resolved')] }] },
      { identity: tiny },
    );
    expect(provider.calls).toBe(0);
    expect(result.outcome).toBe('failed');
    expect(result.reason).toMatch(/budget of task .* would be exceeded: 0 of 500 tokens/);
    expect(world.store.tasks.require(taskId).status).toBe('failed');
    expect(world.store.budgets.used('task', taskId)).toBe(0);
  });

  it('hands malformed tool calls back to the model; three in a row fail the task', async () => {
    const n = need();
    const events: SessionEvent[] = [];
    const { result } = await run(
      n.id,
      {
        rules: [
          {
            steps: [
              { tool: 'get_need', args: { id: '${need.id}' }, fail: ['malformed', 'malformed', 'malformed'] },
              finish('resolved'),
            ],
          },
        ],
      },
      { events },
    );
    expect(result.outcome).toBe('failed');
    expect(result.reason).toBe('3 malformed tool calls in a row');
    expect(events.filter((e) => e.kind === 'tool' && e.isError)).toHaveLength(3);
    expect(world.store.needs.require(n.id).status).toBe('open');
  });

  it('retries a 429, reserving each attempt and settling the failed one at zero', async () => {
    const n = need();
    const { result, provider, taskId } = await run(n.id, {
      rules: [{ steps: [{ ...finish('resolved'), fail: ['rate_limit'] }] }],
    });
    expect(result.outcome).toBe('resolved');
    expect(provider.calls).toBe(2);
    expect(world.store.tasks.require(taskId).tokensIn).toBeGreaterThan(0);
  });

  it('ends a model outage that outlasts its retries as the model’s failure, not the need’s', async () => {
    for (const [kind, cause] of [
      ['server', 'model_unavailable'],
      ['rate_limit', 'model_unavailable'],
      // A request that is too slow would time out again: it uses up the need's attempts.
      ['timeout', null],
    ] as const) {
      const n = need();
      const { result, provider, taskId } = await run(n.id, {
        rules: [{ steps: [{ ...finish('resolved'), fail: [kind, kind, kind, kind] }] }],
      });
      expect(provider.calls).toBe(4);
      expect(result).toMatchObject({ outcome: 'failed' });
      expect(result.reason).toContain('the model call failed');
      expect(world.store.tasks.require(taskId)).toMatchObject({ status: 'failed', cause });
      expect(world.store.scheduling.failures(n.id).failures).toBe(cause ? 0 : 1);
    }
  });

  it('does not wait out a retry-after its lease would not survive: the outage ends the session first', async () => {
    // The lease is 60 s: a 25 s wait leaves 35 s for the next attempt; a second one would leave
    // 10 s, less than the wait, so the session ends there, holding the identity for the 25 s asked.
    const n = need();
    const slept: number[] = [];
    const { result, provider, taskId } = await run(
      n.id,
      {
        failures: { retry_after_ms: 25_000 },
        rules: [{ steps: [{ ...finish('resolved'), fail: ['rate_limit', 'rate_limit', 'rate_limit'] }] }],
      },
      { lease: true, slept, guard: { retryDelayMs: 1000 } },
    );
    expect(slept).toEqual([25_000]);
    expect(provider.calls).toBe(2);
    expect(result.outcome).toBe('failed');
    const task = world.store.tasks.require(taskId);
    expect(task).toMatchObject({ status: 'failed', cause: 'model_unavailable' });
    const pin = world.store.identities.require('architect');
    expect(pin.heldUntil).toBeGreaterThanOrEqual(world.clock.now() + 25_000);
    const transcript = world.store.artifacts.forNeed(n.id).find((a) => a.kind === 'transcript')!;
    expect(transcript.content).toContain(
      'not retrying in 25000 ms: only 10000 ms of the lease would be left',
    );
    // Without the lease's end the session waits as before (all four attempts).
    const m = need('Another');
    const again = await run(m.id, {
      failures: { retry_after_ms: 25_000 },
      rules: [{ steps: [{ ...finish('resolved'), fail: ['rate_limit', 'rate_limit', 'rate_limit'] }] }],
    });
    expect(again.provider.calls).toBe(4);
  });

  it('stops cleanly when the lease is lost mid-session and writes nothing more', async () => {
    const n = need();
    let headAfterCancel = -1;
    const { result, provider } = await run(
      n.id,
      {
        rules: [
          {
            steps: [
              { tool: 'get_need', args: { id: '${need.id}' } },
              {
                tool: 'add_note',
                args: { need_id: '${need.id}', title: 'late', content: 'should not land' },
              },
              finish('resolved'),
            ],
          },
        ],
      },
      {
        before: (call) => {
          if (call !== 2) return;
          const live = world.store.tasks.liveFor(n.id)!;
          world.store.tasks.cancel(live.id, 'operator took it back');
          headAfterCancel = world.store.events.headSeq();
        },
      },
    );
    expect(result.outcome).toBe('lease_lost');
    expect(result.reason).toMatch(/lease lost/);
    expect(provider.calls).toBe(2);
    expect(world.store.events.headSeq()).toBe(headAfterCancel);
    expect(world.store.artifacts.forNeed(n.id).filter((a) => a.kind === 'note')).toHaveLength(0);
  });

  it('never hands the model the loop’s own tools (claims, heartbeats, budgets)', async () => {
    const n = need();
    let offered: string[] = [];
    await run(
      n.id,
      { rules: [{ steps: [finish('resolved')] }] },
      {
        before: (_call, request) => {
          offered = request.tools.map((t) => t.name);
        },
      },
    );
    expect(offered).toContain('finish');
    expect(offered).toContain('add_note');
    for (const hidden of ['claim_need', 'heartbeat', 'reserve_budget', 'settle_budget'])
      expect(offered).not.toContain(hidden);
  });
});
