// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${…} are script references.
import { describe, expect, it } from 'vitest';
import type { ContentPart, LlmMessage, LlmRequest, LlmResponse } from '../../../../src/agents/provider.js';
import { LlmCallError } from '../../../../src/agents/provider-error.js';
import { parseScript, type ScriptInput } from '../../../../src/agents/providers/script-schema.js';
import { loadScript, ScriptedProvider } from '../../../../src/agents/providers/scripted.js';

type ToolCall = Extract<ContentPart, { type: 'tool_call' }>;
type Context = NonNullable<LlmRequest['context']>;

const CONTEXT: Context = {
  identity: 'architect',
  needId: 'need_1',
  taskId: 'task_1',
  needTitle: 'Kernel',
  needTags: ['kernel'],
};

function request(messages: LlmMessage[], context: Context = CONTEXT): LlmRequest {
  return {
    model: 'demo',
    system: [],
    messages,
    tools: [],
    maxOutputTokens: 1000,
    timeoutMs: 10_000,
    context,
  };
}

function calls(response: LlmResponse): ToolCall[] {
  return response.content.filter((p): p is ToolCall => p.type === 'tool_call');
}

type ToolRunner = (call: ToolCall) => { content: string; isError?: boolean };

interface SessionLog {
  events: string[];
  finish: ToolCall | undefined;
}

/**
 * A minimal stand-in for the agent loop: runs tool calls through `run`, answers malformed calls
 * with an error, retries retryable failures at once, and stops at finish or after 20 turns.
 */
async function drive(provider: ScriptedProvider, context: Context, run: ToolRunner): Promise<SessionLog> {
  const messages: LlmMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'go' }] }];
  const events: string[] = [];
  for (let turn = 0; turn < 20; turn++) {
    let response: LlmResponse;
    try {
      response = await provider.complete(request(messages, context));
    } catch (error) {
      if (error instanceof LlmCallError && error.retryable) {
        events.push(`error:${error.kind}`);
        continue;
      }
      throw error;
    }
    messages.push({ role: 'assistant', content: response.content });
    const results: ContentPart[] = [];
    for (const call of calls(response)) {
      if (call.inputError) {
        events.push(`malformed:${call.name}`);
        results.push({ type: 'tool_result', toolCallId: call.id, content: call.inputError, isError: true });
        continue;
      }
      events.push(`${call.name}:${JSON.stringify(call.input)}`);
      if (call.name === 'finish') return { events, finish: call };
      const result = run(call);
      results.push({
        type: 'tool_result',
        toolCallId: call.id,
        content: result.content,
        isError: result.isError ?? false,
      });
    }
    if (results.length === 0)
      events.push(`text:${response.content.map((p) => (p.type === 'text' ? p.text : '')).join('')}`);
    else messages.push({ role: 'user', content: results });
  }
  return { events, finish: undefined };
}

const okJson: ToolRunner = () => ({ content: '{}' });

function provider(script: ScriptInput, extra: { seed?: number; sleep?: (ms: number) => Promise<void> } = {}) {
  return new ScriptedProvider({ script: parseScript(script, 'test script'), ...extra });
}

describe('ScriptedProvider', () => {
  it('resolves ${steps.x.id} from the JSON result of an earlier tool call', async () => {
    const p = provider({
      rules: [
        {
          steps: [
            { tool: 'create_need', args: { title: 'Sub of ${need.id}', tags: ['kernel'] }, as: 'sub' },
            { tool: 'link', args: { from: '${need.id}', rel: 'depends_on', to: '${steps.sub.id}' } },
            {
              tool: 'add_note',
              args: {
                need_id: '${steps.sub.id}',
                title: 'v${steps.sub.version}',
                content: 'by ${identity} in ${task.id}',
              },
            },
            { tool: 'finish', args: { outcome: 'blocked', summary: 'waiting', sub_needs: [] } },
          ],
        },
      ],
    });
    const log = await drive(p, CONTEXT, (call) =>
      call.name === 'create_need'
        ? { content: JSON.stringify({ id: 'need_SUB', version: 3 }) }
        : { content: '{}' },
    );
    expect(log.events).toEqual([
      'create_need:{"title":"Sub of need_1","tags":["kernel"]}',
      'link:{"from":"need_1","rel":"depends_on","to":"need_SUB"}',
      'add_note:{"need_id":"need_SUB","title":"v3","content":"by architect in task_1"}',
      'finish:{"outcome":"blocked","summary":"waiting","sub_needs":[]}',
    ]);
  });

  it('keeps the type of a whole-string reference (a list stays a list)', async () => {
    const p = provider({
      rules: [
        {
          steps: [
            { tool: 'update_need', args: { id: '${need.id}', tags: '${need.tags}' } },
            { tool: 'finish', args: { outcome: 'resolved', summary: 's' } },
          ],
        },
      ],
    });
    const log = await drive(p, CONTEXT, okJson);
    expect(log.events[0]).toBe('update_need:{"id":"need_1","tags":["kernel"]}');
  });

  it('is deterministic for a seed, whatever the interleaving, and differs across seeds', async () => {
    const script: ScriptInput = {
      failures: { seed: 1, rates: { rate_limit: 0.15, server: 0.1, malformed: 0.15 }, retry_after_ms: 0 },
      rules: [
        {
          steps: [
            { tool: 'get_need', args: { id: '${need.id}' } },
            { tool: 'add_note', args: { need_id: '${need.id}', title: 't', content: 'c' } },
            { tool: 'finish', args: { outcome: 'resolved', summary: 'done' } },
          ],
        },
      ],
    };
    const contexts = Array.from({ length: 12 }, (_, i) => ({
      ...CONTEXT,
      needId: `need_${i}`,
      taskId: `task_${i}`,
    }));
    const sequential = async (seed: number) => {
      const p = provider(script, { seed });
      const out: string[][] = [];
      for (const c of contexts) out.push((await drive(p, c, okJson)).events);
      return out;
    };
    const concurrent = async (seed: number) => {
      const p = provider(script, { seed });
      return Promise.all([...contexts].reverse().map((c) => drive(p, c, okJson).then((l) => l.events))).then(
        (r) => r.reverse(),
      );
    };
    const a = await sequential(7);
    expect(await sequential(7)).toEqual(a);
    expect(await concurrent(7)).toEqual(a);
    expect(await sequential(8)).not.toEqual(a);
    const flat = a.flat();
    expect(flat.some((e) => e.startsWith('error:rate_limit'))).toBe(true);
    expect(flat.some((e) => e.startsWith('malformed:'))).toBe(true);
    // Every session still ends with its finish: failures are retried, malformed calls do not skip steps.
    for (const events of a)
      expect(events.filter((e) => !e.startsWith('error') && !e.startsWith('malformed'))).toHaveLength(3);
  });

  it('injects per-step failures on the first attempts, then plays the step', async () => {
    const p = provider({
      failures: { retry_after_ms: 250 },
      rules: [
        {
          steps: [
            { tool: 'get_need', args: { id: '${need.id}' }, fail: ['rate_limit', 'server', 'malformed'] },
            { tool: 'finish', args: { outcome: 'resolved', summary: 'done' } },
          ],
        },
      ],
    });
    const first = (await p.complete(request([])).catch((e: unknown) => e)) as LlmCallError;
    expect(first).toMatchObject({ kind: 'rate_limit', retryAfterMs: 250, status: 429, retryable: true });
    const log = await drive(p, CONTEXT, okJson);
    expect(log.events).toEqual([
      'error:server',
      'malformed:get_need',
      'get_need:{"id":"need_1"}',
      'finish:{"outcome":"resolved","summary":"done"}',
    ]);
  });

  it('waits its latency and timeouts on the injected sleep (virtual time)', async () => {
    const slept: number[] = [];
    const p = provider(
      {
        latency_ms: 40,
        rules: [
          {
            steps: [
              { tool: 'get_need', args: {}, latency_ms: 7, fail: ['timeout'] },
              { tool: 'finish', args: { outcome: 'resolved', summary: 's' } },
            ],
          },
        ],
      },
      { sleep: async (ms) => void slept.push(ms) },
    );
    const error = (await p.complete(request([])).catch((e: unknown) => e)) as LlmCallError;
    expect(error).toMatchObject({ kind: 'timeout', retryable: true });
    await p.complete(request([]));
    expect(slept).toEqual([10_000, 7]);
  });

  it('finishes failed, with the reason, when a referenced result was an error', async () => {
    const p = provider({
      rules: [
        {
          steps: [
            { tool: 'create_need', args: { title: 'x' }, as: 'sub' },
            { tool: 'link', args: { from: '${need.id}', rel: 'depends_on', to: '${steps.sub.id}' } },
            { tool: 'finish', args: { outcome: 'resolved', summary: 'done' } },
          ],
        },
      ],
    });
    const log = await drive(p, CONTEXT, () => ({
      content: 'create_need refused: out of scope',
      isError: true,
    }));
    expect(log.finish?.input).toMatchObject({
      outcome: 'failed',
      reason: expect.stringMatching(/step "sub" \(create_need\) failed: create_need refused/),
    });
  });

  it('picks the first matching rule by identity, tags and title', async () => {
    const finish = (summary: string) => ({ tool: 'finish', args: { outcome: 'resolved', summary } });
    const p = provider({
      rules: [
        { match: { identity: ['janitor'], tags: ['cleanup'] }, steps: [finish('janitor cleanup')] },
        { match: { title: '^Tag ' }, steps: [finish('title')] },
        { match: { tags: ['kernel', 'x'] }, steps: [finish('kernel')] },
        { steps: [finish('fallback')] },
      ],
    });
    const summary = async (c: Partial<Context>) => {
      const r = await p.complete(request([], { ...CONTEXT, ...c }));
      return (calls(r)[0]!.input as { summary: string }).summary;
    };
    expect(await summary({ identity: 'janitor', needTags: ['cleanup'] })).toBe('janitor cleanup');
    expect(await summary({ identity: 'architect', needTags: ['cleanup'], needTitle: 'Tag every need' })).toBe(
      'title',
    );
    expect(await summary({ needTags: ['kernel'] })).toBe('kernel');
    expect(await summary({ needTags: ['other'] })).toBe('fallback');
  });

  it('refuses a session no rule matches, saying how to fix the script', async () => {
    const p = provider({
      rules: [
        {
          match: { identity: 'janitor' },
          steps: [{ tool: 'finish', args: { outcome: 'resolved', summary: 's' } }],
        },
      ],
    });
    const error = (await p.complete(request([])).catch((e: unknown) => e)) as LlmCallError;
    expect(error).toMatchObject({ kind: 'bad_request', retryable: false });
    expect(error.message).toMatch(/no rule matches identity architect.*add a rule without match/);
  });

  it('answers with text once the script is used up', async () => {
    const p = provider({
      rules: [{ steps: [{ tool: 'finish', args: { outcome: 'resolved', summary: 's' } }] }],
    });
    const first = await p.complete(request([]));
    const again = await p.complete(
      request([
        { role: 'assistant', content: first.content },
        {
          role: 'user',
          content: [
            { type: 'tool_result', toolCallId: calls(first)[0]!.id, content: 'refused', isError: true },
          ],
        },
      ]),
    );
    expect(again.stopReason).toBe('end_turn');
    expect(again.content[0]).toMatchObject({ type: 'text', text: expect.stringMatching(/no step left/) });
  });

  it('validates an in-code script object, naming its source', () => {
    expect(
      () =>
        new ScriptedProvider({
          script: { rules: [{ steps: [{ tool: 'get_need' }] }] },
          source: 'sim script',
        }),
    ).toThrow(/^sim script: rules\[0\]\.steps: the last step must be a finish call/);
  });

  it('runs a function script and counts usage with the tokenizer', async () => {
    const p = new ScriptedProvider({
      script: (req, turn) => ({
        content: [{ type: 'text', text: `turn ${turn} of ${req.context?.needId}` }],
      }),
    });
    const r = await p.complete(request([{ role: 'user', content: [{ type: 'text', text: 'hello world' }] }]));
    expect(r.content).toEqual([{ type: 'text', text: 'turn 0 of need_1' }]);
    expect(r.stopReason).toBe('end_turn');
    expect(r.usage.inputTokens).toBeGreaterThan(0);
    expect(r.usage.outputTokens).toBeGreaterThan(0);
    expect(r.costUsd).toBe(0);
  });

  it("takes the caller's prompt count as the input usage instead of counting the request again", async () => {
    const p = new ScriptedProvider({ script: () => ({ content: [{ type: 'text', text: 'ok' }] }) });
    const messages: LlmMessage[] = [{ role: 'user', content: [{ type: 'text', text: 'hello world' }] }];
    const counted = await p.complete(request(messages));
    const given = await p.complete({ ...request(messages), promptTokens: 4321 });
    expect(counted.usage.inputTokens).not.toBe(4321);
    expect(given.usage.inputTokens).toBe(4321);
    expect(given.usage.outputTokens).toBe(counted.usage.outputTokens);
  });
});

describe('built-in scripts', () => {
  const needResult = (dependsOn: unknown[]) =>
    JSON.stringify({
      need: { id: 'need_A', title: 'Layering of the kernel', tags: ['architecture'] },
      dependsOn,
      tasks: [],
    });

  it('demo: the architect blocks an architecture need on its first attempt, then resolves it', async () => {
    const p = new ScriptedProvider({ script: loadScript('demo') });
    const context = {
      identity: 'architect',
      needId: 'need_A',
      taskId: 'task_A1',
      needTitle: 'Layering of the kernel',
      needTags: ['architecture'],
    };
    const first = await drive(p, context, (call) =>
      call.name === 'get_need' ? { content: needResult([]) } : { content: '{}' },
    );
    expect(first.events.map((e) => e.split(':')[0])).toEqual(['get_need', 'add_note', 'finish']);
    expect(first.finish?.input).toMatchObject({
      outcome: 'blocked',
      sub_needs: [
        { title: 'Record the design decision for: Layering of the kernel', tags: ['kernel', 'methodology'] },
      ],
    });
    const second = await drive(p, { ...context, taskId: 'task_A2' }, (call) =>
      call.name === 'get_need'
        ? { content: needResult([{ id: 'need_B', status: 'resolved' }]) }
        : { content: '{}' },
    );
    expect(second.finish?.input).toMatchObject({ outcome: 'resolved' });
  });

  it.each(['janitor', 'context-manager', 'someone-else'])(
    'demo: %s reads the need, adds a note and resolves',
    async (identity) => {
      const p = new ScriptedProvider({ script: loadScript('demo') });
      const log = await drive(p, { ...CONTEXT, identity }, (call) =>
        call.name === 'get_need' ? { content: needResult([]) } : { content: '{}' },
      );
      expect(log.events[0]).toBe('get_need:{"id":"need_1"}');
      expect(log.events.some((e) => e.startsWith('add_note:'))).toBe(true);
      expect(log.finish?.input).toMatchObject({ outcome: 'resolved' });
    },
  );

  it.each(['architect', 'janitor', 'context-manager', 'someone-else'])(
    'demo: %s ends a round of a standing need as progressed (it is never resolved)',
    async (identity) => {
      const p = new ScriptedProvider({ script: loadScript('demo') });
      const standing = JSON.stringify({
        need: { id: 'need_1', title: 'Sweep', tags: ['architecture'], mode: 'standing' },
        dependsOn: [{ id: 'need_B', status: 'resolved' }],
        tasks: [],
      });
      const log = await drive(p, { ...CONTEXT, identity, needTags: ['architecture'] }, (call) =>
        call.name === 'get_need' ? { content: standing } : { content: '{}' },
      );
      expect(log.finish?.input).toMatchObject({
        outcome: 'progressed',
        summary: expect.stringContaining('(a standing need: done for this round)'),
      });
    },
  );

  it.each(['default', 'noop'])('%s: finishes resolved at once', async (name) => {
    const p = new ScriptedProvider({ script: loadScript(name) });
    const log = await drive(p, CONTEXT, okJson);
    expect(log.events).toHaveLength(1);
    expect(log.finish?.input).toMatchObject({ outcome: 'resolved', summary: expect.any(String) });
  });
});
