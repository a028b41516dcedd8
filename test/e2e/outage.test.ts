import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Store } from '../../src/store/index.js';
import { runCli, tempDir } from '../helpers/cli.js';
import { type FakeLlmServer, fake, startFakeLlmServer } from '../helpers/fake-llm-server.js';
import { spawnMlos } from '../helpers/run.js';

/**
 * A model outage seen from the operator's side: `mlos run` on the real Anthropic SDK against a
 * local server that answers 429 until it recovers. The need keeps its attempts (the run allows one)
 * while its identity is held, and the run finishes the need once the model answers again.
 */
describe('mlos run through a model outage', { timeout: 120_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let server: FakeLlmServer;
  beforeEach(async () => {
    ({ dir, cleanup } = tempDir());
    server = await startFakeLlmServer({ apiKey: 'sk-outage' });
  });
  afterEach(async () => {
    await server.close().catch(() => undefined);
    cleanup();
  });

  /** `mlos run --until-idle` on Anthropic at `baseUrl`, one attempt per need. */
  const untilIdle = (baseUrl: string, ...flags: string[]) =>
    spawnMlos(
      ['run', '--until-idle', '--max-attempts', '1', ...flags, '--log-format', 'json'].concat([
        '--provider',
        'anthropic',
        '--model',
        'claude-test',
        '--base-url',
        baseUrl,
      ]),
      dir,
      { ANTHROPIC_API_KEY: 'sk-outage' },
    );

  it('holds the identity instead of spending the need’s attempts, then resolves it', async () => {
    expect(runCli(['init'], { cwd: dir }).code).toBe(0);
    const need = runCli(['need', 'add', 'Write the kernel notes', '--tags', 'kernel'], {
      cwd: dir,
    }).stdout.trim();
    // The session's four attempts are rate limited (the server asks for a 5 ms wait, then 1 s);
    // the next session, after the hold, gets an answer.
    server.reply(
      ...Array.from({ length: 3 }, () => fake.rateLimited({ retryAfterMs: 5 })),
      // The last answer asks for a second: the hold lasts that, longer than the retry delay.
      fake.rateLimited({ retryAfterMs: 1000 }),
      fake.toolCall('finish', { outcome: 'resolved', summary: 'wrote them' }),
    );
    const run = untilIdle(server.anthropicBaseUrl, '--retry-delay', '300ms');
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain(
      'identity architect is held: its model was unavailable, so it gets no new work until the hold ends (its needs wait, or go to another identity whose scope covers them; a failure of this kind counts a quarter of an attempt); mlos identity resume architect ends it now',
    );
    expect(run.output()).toContain('mlos run stopped (idle): 1 need resolved');
    expect(server.pending()).toBe(0);

    const store = Store.open(join(dir, 'mlos.db'));
    try {
      expect(store.needs.require(need)).toMatchObject({ status: 'resolved', orphaned: false });
      const [first, second] = store.tasks.forNeed(need);
      expect(first).toMatchObject({ status: 'failed', cause: 'model_unavailable', attempt: 1 });
      expect(first!.error).toContain('429');
      expect(second).toMatchObject({ status: 'succeeded', cause: null });
      const events = store.events.since(0, 10_000);
      const held = events.find((e) => e.kind === 'identity.held')!;
      const { until } = held.payload as { until: number };
      expect(held.payload).toMatchObject({ holds: 1 });
      expect(until - first!.finishedAt!).toBeGreaterThanOrEqual(1000);
      expect(until - first!.finishedAt!).toBeLessThan(1100);
      // Nothing started for architect while it was held.
      expect(second!.startedAt!).toBeGreaterThanOrEqual(until);
      expect(events.filter((e) => e.kind === 'identity.released').map((e) => e.payload)).toEqual([
        { by: 'recovered' },
      ]);
      expect(store.identities.require('architect')).toMatchObject({ heldUntil: null, holds: 0 });
    } finally {
      store.close();
    }
  });

  it('does not wait out a retry-after longer than its lease: it ends the session as an outage at once', async () => {
    expect(runCli(['init'], { cwd: dir }).code).toBe(0);
    const need = runCli(['need', 'add', 'Write the kernel notes', '--tags', 'kernel'], {
      cwd: dir,
    }).stdout.trim();
    // The provider asks for 4 s; the lease is 3 s and only progress renews it. Waiting would lose
    // the lease (a whole attempt, the only one allowed here); ending now holds the identity for 4 s.
    server.reply(
      fake.rateLimited({ retryAfterMs: 4000 }),
      fake.toolCall('finish', { outcome: 'resolved', summary: 'wrote them' }),
    );
    const run = untilIdle(
      server.anthropicBaseUrl,
      '--lease',
      '3s',
      '--heartbeat',
      '500ms',
      '--retry-delay',
      '100ms',
    );
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain('mlos run stopped (idle): 1 need resolved');
    const store = Store.open(join(dir, 'mlos.db'));
    try {
      const [first, second] = store.tasks.forNeed(need);
      expect(first).toMatchObject({ status: 'failed', cause: 'model_unavailable' });
      expect(second).toMatchObject({ status: 'succeeded' });
      const held = store.events.since(0, 10_000).find((e) => e.kind === 'identity.held')!;
      expect((held.payload as { until: number }).until - first!.finishedAt!).toBeGreaterThanOrEqual(4000);
      const transcript = store.artifacts
        .forNeed(need)
        .find((a) => a.kind === 'transcript' && a.uri === `mlos://transcripts/${first!.id}`)!;
      expect(transcript.content).toMatch(/not retrying in 4000 ms: only \d+ ms of the lease would be left/);
    } finally {
      store.close();
    }
  });

  it('still escalates a need whose model never comes back (a wrong base URL), and --until-idle stops', async () => {
    expect(runCli(['init'], { cwd: dir }).code).toBe(0);
    const need = runCli(['need', 'add', 'Unreachable', '--tags', 'kernel'], { cwd: dir }).stdout.trim();
    // A port nobody listens on: every call is refused (a connection error, retried, then an outage).
    const closed = server.anthropicBaseUrl;
    await server.close();
    const run = untilIdle(closed, '--retry-delay', '10ms', '--no-takeover');
    expect(await run.exited, run.output()).toBe(0);
    expect(run.output()).toContain('1 escalated need waits for an operator');
    const store = Store.open(join(dir, 'mlos.db'));
    try {
      // Four outages make one attempt, the limit here: then the need is escalated.
      const tasks = store.tasks.forNeed(need);
      expect(tasks.map((t) => [t.status, t.cause])).toEqual(
        Array.from({ length: 4 }, () => ['failed', 'model_unavailable']),
      );
      expect(store.needs.require(need)).toMatchObject({ status: 'open', orphaned: true });
    } finally {
      store.close();
    }
  });
});
