import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AGENT_TOOLS, GUARD_TOOLS } from '../../../src/kernel/tools.js';
import { OPERATOR, type Principal } from '../../../src/mcp/index.js';
import { call, createGuardWorld, data, identityFrom, text } from '../../helpers/guard.js';

type World = ReturnType<typeof createGuardWorld>;

describe('guard tools over the in-memory transport', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());

  const agent = (name: string, extra: Partial<Extract<Principal, { kind: 'agent' }>> = {}): Principal => ({
    kind: 'agent',
    identity: world.identity(name),
    ...extra,
  });

  it('lists every guard tool for the operator and only the identity tools for an agent', async () => {
    const op = await world.client(OPERATOR);
    expect((await op.listTools()).tools.map((t) => t.name).sort()).toEqual([...GUARD_TOOLS].sort());
    const narrow = identityFrom(
      'objective: test\nscope: { primary: [kernel] }\ntools: [get_need, search_needs]',
    );
    const client = await world.client({ kind: 'agent', identity: narrow });
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    expect(names).toEqual([
      'finish',
      'get_need',
      'heartbeat',
      'reserve_budget',
      'search_needs',
      'settle_budget',
    ]);
    expect(names.some((n) => ['graduate', 'cancel_task', 'pause_identity'].includes(n))).toBe(false);
    const full = await world.client(agent('architect'));
    expect((await full.listTools()).tools.map((t) => t.name).sort()).toEqual([...AGENT_TOOLS].sort());
  });

  it('creates, reads, searches, updates and links needs', async () => {
    const op = await world.client(OPERATOR);
    const a = data<{ id: string }>(
      await call(op, 'create_need', { title: 'Kernel testable', tags: ['kernel'], priority: 1 }),
    );
    const b = data<{ id: string }>(
      await call(op, 'create_need', { title: 'Boot test', tags: ['kernel'], depends_on: [a.id] }),
    );
    const got = await call(op, 'get_need', { id: b.id });
    expect(text(got)).toContain(`depends_on ${a.id} open "Kernel testable"`);
    for (let i = 0; i < 5; i++) await call(op, 'create_need', { title: `n${i}`, tags: ['cleanup'] });
    const page1 = data<{ needs: unknown[]; nextCursor: string | null }>(
      await call(op, 'search_needs', { tags: ['cleanup'], limit: 3 }),
    );
    expect(page1.needs).toHaveLength(3);
    const page2 = data<{ needs: unknown[]; nextCursor: string | null }>(
      await call(op, 'search_needs', { tags: ['cleanup'], limit: 3, cursor: page1.nextCursor }),
    );
    expect(page2.needs).toHaveLength(2);
    expect(page2.nextCursor).toBeNull();
    const upd = data<{ version: number }>(
      await call(op, 'update_need', { id: a.id, version: 1, priority: 0 }),
    );
    expect(upd.version).toBe(2);
    const c = data<{ id: string }>(await call(op, 'create_need', { title: 'C' }));
    expect(data(await call(op, 'link', { from: b.id, rel: 'depends_on', to: c.id }))).toEqual({
      from: b.id,
      rel: 'depends_on',
      to: c.id,
    });
  });

  it('registers artifacts idempotently and adds notes', async () => {
    const op = await world.client(OPERATOR);
    const n = data<{ id: string }>(await call(op, 'create_need', { title: 'Holder', tags: ['context'] }));
    const first = data<{ id: string; created: boolean }>(
      await call(op, 'register_artifact', { kind: 'note', title: 'Finding', content: 'x', need_id: n.id }),
    );
    const second = data<{ id: string; created: boolean }>(
      await call(op, 'register_artifact', {
        kind: 'note',
        title: 'Finding again',
        content: 'x',
        need_id: n.id,
      }),
    );
    expect(first.created).toBe(true);
    expect(second).toEqual({ id: first.id, created: false });
    const note = data<{ id: string }>(
      await call(op, 'add_note', { need_id: n.id, title: 'Decision', content: 'because' }),
    );
    expect(world.store.artifacts.forNeed(n.id).map((a) => a.id)).toEqual([first.id, note.id]);
  });

  it('graduates, claims, heartbeats with progress, reserves budget and finishes', async () => {
    const op = await world.client(OPERATOR);
    const n = data<{ id: string }>(await call(op, 'create_need', { title: 'Work', tags: ['kernel'] }));
    const grad = data<{ taskId: string }>(
      await call(op, 'graduate', { need_id: n.id, identity: 'architect' }),
    );
    const architect = await world.client(agent('architect'));
    const claim = data<{ taskId: string; fencingToken: number; takeover: boolean }>(
      await call(architect, 'claim_need', { need_id: n.id }),
    );
    expect(claim.taskId).toBe(grad.taskId);
    expect(claim.takeover).toBe(false);
    const session = await world.client(
      agent('architect', {
        task: { id: claim.taskId, needId: n.id, fence: { taskId: claim.taskId, token: claim.fencingToken } },
      }),
    );
    world.clock.advance(10_000);
    const hb = data<{ renewed: boolean }>(
      await call(session, 'heartbeat', { turns: 1, tokens: 100, tool_calls: 1 }),
    );
    expect(hb.renewed).toBe(true);
    const still = data<{ renewed: boolean }>(
      await call(session, 'heartbeat', { turns: 1, tokens: 100, tool_calls: 1 }),
    );
    expect(still.renewed).toBe(false);
    const r = data<{ reservationId: number }>(await call(session, 'reserve_budget', { tokens: 5000 }));
    expect(
      data(
        await call(session, 'settle_budget', {
          reservation_id: r.reservationId,
          input_tokens: 1000,
          output_tokens: 200,
        }),
      ),
    ).toEqual({ reservationId: r.reservationId });
    const over = await call(session, 'reserve_budget', { tokens: 10_000_000 });
    expect(over.isError).toBe(true);
    expect(text(over)).toMatch(/budget of task .* would be exceeded: 1200 of 200000 tokens used or reserved/);
    const done = data<{ taskStatus: string; needStatus: string }>(
      await call(session, 'finish', { outcome: 'resolved', summary: 'done' }),
    );
    expect(done).toMatchObject({ taskStatus: 'succeeded', needStatus: 'resolved' });
    expect(world.store.tasks.require(claim.taskId).tokensIn).toBe(1000);
    expect(world.store.events.verify().ok).toBe(true);
  });

  it('finish settles the call and records progress sent in _meta, in its own commit', async () => {
    const op = await world.client(OPERATOR);
    const sessionFor = async (title: string) => {
      const n = data<{ id: string }>(await call(op, 'create_need', { title, tags: ['kernel'] }));
      const claim = data<{ taskId: string; fencingToken: number }>(
        await call(op, 'claim_need', { need_id: n.id, identity: 'architect' }),
      );
      const fence = { taskId: claim.taskId, token: claim.fencingToken };
      const client = await world.client(
        agent('architect', { task: { id: claim.taskId, needId: n.id, fence } }),
      );
      const r = data<{ reservationId: number }>(await call(client, 'reserve_budget', { tokens: 5000 }));
      return { needId: n.id, taskId: claim.taskId, client, reservationId: r.reservationId };
    };
    const mine = await sessionFor('Mine');
    const theirs = await sessionFor('Theirs');
    const finishWith = async (meta: Record<string, unknown>) =>
      (await mine.client.callTool({
        name: 'finish',
        arguments: { outcome: 'resolved', summary: 'done' },
        _meta: meta,
      })) as CallToolResult;
    const usage = { input_tokens: 700, output_tokens: 30 };

    const foreign = await finishWith({ 'mlos/settle': { reservation_id: theirs.reservationId, ...usage } });
    expect(foreign.isError).toBe(true);
    expect(text(foreign)).toContain('belongs to another task; settle your own reservations');
    const malformed = await finishWith({ 'mlos/settle': { reservation_id: mine.reservationId } });
    expect(malformed.isError).toBe(true);
    expect(text(malformed)).toContain('must hold reservation_id, input_tokens and output_tokens');
    for (const bad of [{ input_tokens: -1 }, { cache_read_tokens: 0.5 }, { cost_usd: -0.01 }]) {
      const refused = await finishWith({
        'mlos/settle': { reservation_id: mine.reservationId, ...usage, ...bad },
      });
      expect(refused.isError).toBe(true);
      expect(text(refused)).toContain('as settle_budget takes them');
    }
    // Neither refusal changed anything.
    expect(world.store.needs.require(mine.needId).status).toBe('active');
    expect(world.store.budgets.used('task', mine.taskId)).toBe(5000);

    const done = await finishWith({
      'mlos/settle': { reservation_id: mine.reservationId, ...usage },
      'mlos/progress': { turns: 1, tokens: 730, tool_calls: 1 },
    });
    expect(done.isError).toBeFalsy();
    const task = world.store.tasks.require(mine.taskId);
    expect(task).toMatchObject({ status: 'succeeded', tokensIn: 700, tokensOut: 30 });
    expect(task.progressAt).not.toBeNull();
    expect(world.store.budgets.used('task', mine.taskId)).toBe(730);
    expect(world.store.budgets.used('task', theirs.taskId)).toBe(5000);
  });

  it('finishes blocked with sub-needs and failed with a reason', async () => {
    const op = await world.client(OPERATOR);
    const n = data<{ id: string }>(await call(op, 'create_need', { title: 'Big', tags: ['kernel'] }));
    const claim = data<{ taskId: string; fencingToken: number }>(
      await call(op, 'claim_need', { need_id: n.id, identity: 'architect' }),
    );
    const blocked = data<{ subNeeds: string[]; needStatus: string }>(
      await call(op, 'finish', {
        outcome: 'blocked',
        summary: 'split',
        sub_needs: [{ title: 'Part 1' }, { title: 'Part 2', tags: ['schema'] }],
        task_id: claim.taskId,
        fencing_token: claim.fencingToken,
      }),
    );
    expect(blocked.subNeeds).toHaveLength(2);
    expect(blocked.needStatus).toBe('open');
    expect(world.store.needs.isActionable(n.id, world.clock.now()).ok).toBe(false);
    expect(world.store.needs.require(blocked.subNeeds[0]!).tags).toEqual(['kernel']);
    const sub = blocked.subNeeds[0]!;
    const c2 = data<{ taskId: string; fencingToken: number }>(
      await call(op, 'claim_need', { need_id: sub, identity: 'architect' }),
    );
    const noReason = await call(op, 'finish', {
      outcome: 'failed',
      summary: 'x',
      task_id: c2.taskId,
      fencing_token: c2.fencingToken,
    });
    expect(noReason.isError).toBe(true);
    expect(text(noReason)).toContain('needs a reason');
    const failed = data<{ taskStatus: string }>(
      await call(op, 'finish', {
        outcome: 'failed',
        summary: 'x',
        reason: 'tool broke',
        task_id: c2.taskId,
        fencing_token: c2.fencingToken,
      }),
    );
    expect(failed.taskStatus).toBe('failed');
  });

  it('operator tools cancel tasks (bumping the token) and pause identities', async () => {
    const op = await world.client(OPERATOR);
    const n = data<{ id: string }>(await call(op, 'create_need', { title: 'W', tags: ['kernel'] }));
    const claim = data<{ taskId: string; fencingToken: number }>(
      await call(op, 'claim_need', { need_id: n.id, identity: 'architect' }),
    );
    const before = world.store.leases.require(n.id).fencingToken;
    expect(data(await call(op, 'cancel_task', { task_id: claim.taskId }))).toMatchObject({
      status: 'cancelled',
    });
    expect(world.store.leases.require(n.id).fencingToken).toBeGreaterThan(before);
    expect(data(await call(op, 'pause_identity', { name: 'architect' }))).toEqual({
      name: 'architect',
      paused: true,
      holdEnded: false,
    });
    const architect = await world.client(agent('architect'));
    const refused = await call(architect, 'claim_need', { need_id: n.id });
    expect(text(refused)).toContain('paused by the operator');
    await call(op, 'resume_identity', { name: 'architect' });
    expect((await call(architect, 'claim_need', { need_id: n.id })).isError).toBeFalsy();
  });

  describe('refusals are isError texts and leave the database unchanged', () => {
    const unchanged = async (
      run: () => Promise<{ isError?: boolean | undefined; content: unknown }>,
      pattern: RegExp,
    ) => {
      const head = world.store.events.headSeq();
      const result = await run();
      expect(result.isError).toBe(true);
      expect(text(result as never)).toMatch(pattern);
      expect(world.store.events.headSeq()).toBe(head);
    };

    it('bad arguments, unknown ids, cycles, conflicts and illegal transitions', async () => {
      const op = await world.client(OPERATOR);
      const a = data<{ id: string }>(await call(op, 'create_need', { title: 'A', tags: ['kernel'] }));
      const b = data<{ id: string }>(await call(op, 'create_need', { title: 'B', depends_on: [a.id] }));
      await unchanged(() => call(op, 'create_need', { title: 5 }), /Input validation error|expected string/);
      await unchanged(
        () => call(op, 'create_need', { title: 'x', priority: 9 }),
        /priority 9 is out of range/,
      );
      await unchanged(
        () => call(op, 'create_need', { title: 'x', tags: ['Bad Tag'] }),
        /tag "Bad Tag" is malformed/,
      );
      await unchanged(
        () => call(op, 'get_need', { id: 'need_01AAAAAAAAAAAAAAAAAAAAAAAA' }),
        /does not exist/,
      );
      await unchanged(
        () => call(op, 'link', { from: a.id, rel: 'depends_on', to: b.id }),
        /depends_on cycle refused/,
      );
      await unchanged(
        () => call(op, 'link', { from: a.id, rel: 'blocks', to: b.id }),
        /unknown relation "blocks"/,
      );
      await unchanged(
        () => call(op, 'update_need', { id: a.id, version: 7, title: 'z' }),
        /is at version 1, not 7/,
      );
      await unchanged(
        () => call(op, 'claim_need', { need_id: b.id, identity: 'architect' }),
        /not actionable: it waits for/,
      );
      await unchanged(() => call(op, 'nope_tool', {}), /not found/);
    });

    it('out-of-scope writes by an agent', async () => {
      const op = await world.client(OPERATOR);
      const cleanup = data<{ id: string }>(
        await call(op, 'create_need', { title: 'Tidy', tags: ['cleanup'] }),
      );
      const architect = await world.client(agent('architect'));
      await unchanged(
        () => call(architect, 'update_need', { id: cleanup.id, version: 1, title: 'mine' }),
        /outside the scope of architect/,
      );
      await unchanged(
        () => call(architect, 'add_note', { need_id: cleanup.id, title: 't', content: 'c' }),
        /outside the scope/,
      );
      await unchanged(
        () => call(architect, 'claim_need', { need_id: cleanup.id }),
        /outside the scope of architect/,
      );
    });

    it('a stale fencing token', async () => {
      const op = await world.client(OPERATOR);
      const n = data<{ id: string }>(await call(op, 'create_need', { title: 'Contested', tags: ['kernel'] }));
      const first = data<{ taskId: string; fencingToken: number }>(
        await call(op, 'claim_need', { need_id: n.id, identity: 'architect' }),
      );
      const stale = await world.client(
        agent('architect', {
          task: {
            id: first.taskId,
            needId: n.id,
            fence: { taskId: first.taskId, token: first.fencingToken },
          },
        }),
      );
      await call(op, 'cancel_task', { task_id: first.taskId });
      const second = data<{ taskId: string; fencingToken: number }>(
        await call(op, 'claim_need', { need_id: n.id, identity: 'architect' }),
      );
      await unchanged(
        () => call(stale, 'add_note', { need_id: n.id, title: 'late', content: 'x' }),
        new RegExp(
          `lease lost: need ${n.id} is now held by task ${second.taskId} \\(token ${second.fencingToken} > ${first.fencingToken}\\); stop work on it`,
        ),
      );
      await unchanged(() => call(stale, 'finish', { outcome: 'resolved', summary: 'x' }), /lease lost/);
      await unchanged(() => call(stale, 'heartbeat', { turns: 5, tokens: 5, tool_calls: 5 }), /lease lost/);
      // Booting records the pack's hash on the task: a write too, refused under a stale fence.
      const head = world.store.events.headSeq();
      await expect(
        stale.getPrompt({ name: 'boot', arguments: { identity: 'architect', need: n.id } }),
      ).rejects.toThrow(/lease lost/);
      expect(world.store.events.headSeq()).toBe(head);
    });
  });
});
