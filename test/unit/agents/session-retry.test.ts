import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LlmProvider } from '../../../src/agents/provider.js';
import { createGuardWorld } from '../../helpers/guard.js';
import { finish, sessionRunner, type World } from './session-helpers.js';

describe('the agent loop when the model fails: retries, outages, the lease', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());
  const run = sessionRunner(() => world);
  const need = (title = 'Make the kernel testable', tags = ['kernel']) =>
    world.store.needs.create({ title, tags });

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

  it('counts the lease from its last renewal: progress buys the time a later retry waits', async () => {
    // The first model call takes 40 s; its turn's progress heartbeat renews the lease to 60 s from
    // then. A 25 s retry wait leaves 35 s of the renewed lease (it would be -5 s of the claim's).
    const n = need();
    const slept: number[] = [];
    const { result, provider } = await run(
      n.id,
      {
        failures: { retry_after_ms: 25_000 },
        rules: [
          {
            steps: [
              // biome-ignore lint/suspicious/noTemplateCurlyInString: a script reference.
              { tool: 'get_need', args: { id: '${need.id}' } },
              { ...finish('resolved'), fail: ['rate_limit'] },
            ],
          },
        ],
      },
      {
        lease: true,
        slept,
        guard: { retryDelayMs: 1000 },
        before: (call) => {
          if (call === 1) world.clock.advance(40_000);
        },
      },
    );
    expect(slept).toEqual([25_000]);
    expect(provider.calls).toBe(3);
    expect(result.outcome).toBe('resolved');
  });

  it('stops the model call in flight when its task is cancelled: no tokens for work that cannot commit', async () => {
    const n = need();
    let aborted = false;
    // A model that never answers; the operator cancels the task while the call is out.
    const hanging: LlmProvider = {
      name: 'scripted',
      complete: (request) =>
        new Promise((_, reject) => {
          request.signal?.addEventListener('abort', () => {
            aborted = true;
            reject(new Error('the request was aborted'));
          });
          world.store.tasks.cancel(request.context!.taskId, 'cancelled by the operator');
        }),
    };
    const { result, taskId } = await run(n.id, { rules: [] }, { provider: hanging, heartbeatMs: 20 });
    expect(aborted).toBe(true);
    expect(result.outcome).toBe('lease_lost');
    expect(result.reason).toContain('lease lost');
    expect(world.store.tasks.require(taskId).status).toBe('cancelled');
  });
});
