import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { OPERATOR, type Principal } from '../../../src/mcp/index.js';
import { ELIGIBLE_AT_META } from '../../../src/mcp/result.js';
import { CAUSE_META, RETRY_AFTER_META } from '../../../src/mcp/tools/lifecycle.js';
import { call, createGuardWorld, data, text } from '../../helpers/guard.js';

type World = ReturnType<typeof createGuardWorld>;
const RETRY_DELAY_MS = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * A task that failed because its model was unavailable (the session sends `mlos/cause` with its
 * failed finish) is not the need's failure: no attempt is counted, and the identity is held for the
 * retry delay, doubled per consecutive hold, until a task of it ends well or the operator resumes it.
 */
describe('a model outage holds the identity, not the need', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());

  const guard = { retryDelayMs: RETRY_DELAY_MS };
  const agent = (extra: Partial<Extract<Principal, { kind: 'agent' }>> = {}): Principal => ({
    kind: 'agent',
    identity: world.identity('architect'),
    ...extra,
  });
  const pin = () => world.store.identities.require('architect');
  const kinds = (kind: string) => world.store.events.since(0, 10_000).filter((e) => e.kind === kind);

  /** A running task of architect on a new need, claimed in the store (as a session that started). */
  async function session(title: string) {
    const need = world.store.needs.create({ title, tags: ['kernel'] });
    const claim = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
    const fence = { taskId: claim.task.id, token: claim.fence.token };
    const client = await world.client(agent({ task: { id: claim.task.id, needId: need.id, fence } }), guard);
    const finish = async (args: Record<string, unknown>, meta: Record<string, unknown> = {}) =>
      (await client.callTool({ name: 'finish', arguments: args, _meta: meta })) as CallToolResult;
    return { needId: need.id, taskId: claim.task.id, finish };
  }

  const outage = {
    outcome: 'failed',
    summary: 'the session stopped',
    reason: 'the model call failed: scripted noop answered 429: rate limited',
  };

  it('counts no attempt and holds the identity for the retry delay, doubled per consecutive hold', async () => {
    const first = await session('First');
    const failedAt = world.clock.now();
    expect((await first.finish(outage, { [CAUSE_META]: 'model_unavailable' })).isError).toBeFalsy();
    expect(world.store.tasks.require(first.taskId)).toMatchObject({
      status: 'failed',
      cause: 'model_unavailable',
    });
    expect(world.store.scheduling.failures(first.needId).failures).toBe(0);
    expect(pin()).toMatchObject({
      heldUntil: failedAt + RETRY_DELAY_MS,
      holds: 1,
      heldReason: outage.reason,
    });
    expect(world.store.identities.held(failedAt)).toEqual([
      { name: 'architect', until: failedAt + RETRY_DELAY_MS, reason: outage.reason, holds: 1 },
    ]);
    expect(world.store.identities.held(failedAt + RETRY_DELAY_MS)).toEqual([]);
    expect(kinds('identity.held').map((e) => e.payload)).toEqual([
      { until: failedAt + RETRY_DELAY_MS, holds: 1, reason: outage.reason },
    ]);

    // A session that was already running fails the same way while the hold stands: nothing changes.
    const second = await session('Second');
    world.clock.advance(10);
    await second.finish(outage, { [CAUSE_META]: 'model_unavailable' });
    expect(pin()).toMatchObject({ heldUntil: failedAt + RETRY_DELAY_MS, holds: 1 });
    expect(kinds('identity.held')).toHaveLength(1);

    // No new work while held: the claim is refused, saying until when and why, and writes nothing.
    const unmet = world.store.needs.create({ title: 'Unmet', tags: ['kernel'] });
    const head = world.store.events.headSeq();
    const refused = await call(await world.client(agent(), guard), 'claim_need', { need_id: unmet.id });
    expect(text(refused)).toBe(
      `claim_need refused: identity architect is held until ${iso(failedAt + RETRY_DELAY_MS)}: its model was unavailable (${outage.reason}); no new work until then (the operator can end the hold with \`mlos identity resume architect\`)`,
    );
    // With when to try again, for a round-table loop.
    expect(refused._meta).toEqual({ [ELIGIBLE_AT_META]: failedAt + RETRY_DELAY_MS });
    expect(world.store.events.headSeq()).toBe(head);

    // The hold passed and the model is still out: twice as long.
    world.clock.set(failedAt + RETRY_DELAY_MS);
    const third = await session('Third');
    await third.finish(outage, { [CAUSE_META]: 'model_unavailable' });
    expect(pin()).toMatchObject({ heldUntil: world.clock.now() + 2 * RETRY_DELAY_MS, holds: 2 });
    expect(world.store.scheduling.failures(third.needId).failures).toBe(0);
  });

  it('counts four outages of a need as one attempt, so an outage that never ends still escalates it', async () => {
    const need = world.store.needs.create({ title: 'Behind a wrong base URL', tags: ['kernel'] });
    const fail = async () => {
      const claim = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
      const fence = { taskId: claim.task.id, token: claim.fence.token };
      const client = await world.client(
        agent({ task: { id: claim.task.id, needId: need.id, fence } }),
        guard,
      );
      await client.callTool({
        name: 'finish',
        arguments: outage,
        _meta: { [CAUSE_META]: 'model_unavailable' },
      });
      world.clock.advance(20 * 60_000);
    };
    for (let i = 0; i < 3; i++) await fail();
    expect(world.store.scheduling.failures(need.id).failures).toBe(0);
    await fail();
    expect(world.store.scheduling.failures(need.id).failures).toBe(1);
    // Each of these holds came long after the last one had ended: the count started again.
    expect(pin()).toMatchObject({ holds: 1 });
  });

  it('ends the hold and its count when a task of the identity ends well', async () => {
    await (await session('Out')).finish(outage, { [CAUSE_META]: 'model_unavailable' });
    world.clock.advance(RETRY_DELAY_MS);
    // A failure of the work itself neither holds nor releases.
    const flaky = await session('Flaky');
    await flaky.finish({ ...outage, reason: 'the tests do not pass' });
    expect(world.store.scheduling.failures(flaky.needId).failures).toBe(1);
    expect(pin()).toMatchObject({ holds: 1 });
    const fine = await session('Fine');
    expect((await fine.finish({ outcome: 'resolved', summary: 'done' })).isError).toBeFalsy();
    expect(pin()).toMatchObject({ heldUntil: null, heldReason: null, holds: 0 });
    expect(kinds('identity.released').map((e) => e.payload)).toEqual([{ by: 'recovered' }]);
    // Nothing to release: no event.
    await (await session('Again')).finish({ outcome: 'resolved', summary: 'done' });
    expect(kinds('identity.released')).toHaveLength(1);
  });

  it('resume_identity ends a hold at once', async () => {
    await (await session('Out')).finish(outage, { [CAUSE_META]: 'model_unavailable' });
    const op = await world.client(OPERATOR, guard);
    expect(data(await call(op, 'resume_identity', { name: 'architect' }))).toEqual({
      name: 'architect',
      paused: false,
      holdEnded: true,
    });
    expect(pin()).toMatchObject({ heldUntil: null, holds: 0 });
    expect(kinds('identity.released').map((e) => e.payload)).toEqual([{ by: 'operator' }]);
    expect(data(await call(op, 'resume_identity', { name: 'architect' }))).toMatchObject({
      holdEnded: false,
    });
    // A hold that has run out is not ended by a resume, though its count is cleared.
    await (await session('Out again')).finish(outage, { [CAUSE_META]: 'model_unavailable' });
    world.clock.advance(RETRY_DELAY_MS);
    expect(data(await call(op, 'resume_identity', { name: 'architect' }))).toMatchObject({
      holdEnded: false,
    });
    expect(pin()).toMatchObject({ holds: 0 });
  });

  it('holds at least as long as the provider asked (retry-after), within the longest hold', async () => {
    const failedAt = world.clock.now();
    await (await session('Asked to wait')).finish(outage, {
      [CAUSE_META]: 'model_unavailable',
      [RETRY_AFTER_META]: 90_000,
    });
    expect(pin()).toMatchObject({ heldUntil: failedAt + 90_000, holds: 1 });
    world.clock.advance(90_000);
    await (await session('Asked to wait an hour')).finish(outage, {
      [CAUSE_META]: 'model_unavailable',
      [RETRY_AFTER_META]: 3_600_000,
    });
    expect(pin()).toMatchObject({ heldUntil: world.clock.now() + 10 * 60_000, holds: 2 });
  });

  it('refuses a cause with another outcome, or one it does not know, and changes nothing', async () => {
    const s = await session('Strict');
    const head = world.store.events.headSeq();
    const cause = `_meta["${CAUSE_META}"] must be one of model_unavailable, and only with outcome failed`;
    for (const [args, meta, why] of [
      [{ outcome: 'resolved', summary: 'done' }, { [CAUSE_META]: 'model_unavailable' }, cause],
      [outage, { [CAUSE_META]: 'bad_luck' }, cause],
      [
        outage,
        { [RETRY_AFTER_META]: 1000 },
        `_meta["${RETRY_AFTER_META}"] goes only with _meta["${CAUSE_META}"]`,
      ],
      [
        outage,
        { [CAUSE_META]: 'model_unavailable', [RETRY_AFTER_META]: -1 },
        `_meta["${RETRY_AFTER_META}"] must be a whole number of milliseconds, 0 or more`,
      ],
    ] as const) {
      const refused = await s.finish(args, meta);
      expect(refused.isError).toBe(true);
      expect(text(refused)).toContain(why);
    }
    expect(world.store.events.headSeq()).toBe(head);
    expect(world.store.tasks.require(s.taskId).status).toBe('running');
  });

  it('without a retry delay (mlos mcp, or --retry-delay 0) records the cause and holds nothing', async () => {
    const need = world.store.needs.create({ title: 'No delay', tags: ['kernel'] });
    const claim = world.store.claims.claim(need.id, { identity: 'architect', leaseMs: 60_000 });
    const client = await world.client(
      agent({
        task: {
          id: claim.task.id,
          needId: need.id,
          fence: { taskId: claim.task.id, token: claim.fence.token },
        },
      }),
    );
    await client.callTool({
      name: 'finish',
      arguments: outage,
      _meta: { [CAUSE_META]: 'model_unavailable' },
    });
    expect(world.store.tasks.require(claim.task.id).cause).toBe('model_unavailable');
    expect(world.store.scheduling.failures(need.id).failures).toBe(0);
    expect(pin()).toMatchObject({ heldUntil: null, holds: 0 });
  });
});
