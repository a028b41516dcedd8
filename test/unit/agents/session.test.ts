// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmProvider, LlmRequest } from '../../../src/agents/provider.js';
import type { SessionEvent } from '../../../src/agents/session.js';
import { createGuardWorld, identityFrom } from '../../helpers/guard.js';
import { finish, sessionRunner, type World } from './session-helpers.js';

describe('the agent loop over the in-memory guard with the scripted provider', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());

  const run = sessionRunner(() => world);
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
