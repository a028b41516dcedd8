import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { claimAsAgent } from '../../../src/mcp/agent-claim.js';
import { OPERATOR, type Principal } from '../../../src/mcp/index.js';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import { claimJitter } from '../../../src/roundtable/protocol.js';
import { MemoryTaskQueue } from '../../../src/scheduler/memory-task-queue.js';
import { Supervisor } from '../../../src/scheduler/supervisor.js';
import { call, createGuardWorld, data, spendDayBudget, text } from '../../helpers/guard.js';

type World = ReturnType<typeof createGuardWorld>;
const S = 1000;
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * claim_need and the round table: the guard applies the protocol to every agent's claim with its
 * own clock. architect (primary: kernel; grace 30s, peripheral delay 1m, cooldown 2m) and
 * context-manager (peripheral: kernel; the defaults, the same values) are the example identities.
 * Without agent ids, an agent's jitter comes from its identity's name.
 */
describe('claim_need under the round-table protocol', () => {
  let world: World;
  beforeEach(() => {
    world = createGuardWorld();
  });
  afterEach(() => world.close());

  const agent = (name: string): Principal => ({ kind: 'agent', identity: world.identity(name) });
  const createNeed = async (title: string, tags = ['kernel']) =>
    data<{ id: string }>(await call(await world.client(OPERATOR), 'create_need', { title, tags })).id;
  /** What the supervisor's tick does to a need it sees unmet. */
  const markUnmet = (id: string) => world.store.needs.setFlags(id, { unmetSince: world.clock.now() });
  /** Three failed attempts of `id` (as many as the tests' limit), marked unmet an hour ago. */
  const deadLetter = (id: string) => {
    for (let i = 0; i < 3; i++) {
      const { task } = world.store.claims.claim(id, { identity: 'architect', leaseMs: 60_000 });
      world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
    }
    markUnmet(id);
    world.clock.advance(3_600 * S);
  };
  const claimEvents = (id: string) =>
    world.store.events
      .since(0, 10_000)
      .filter((e) => e.kind === 'need.claimed' && e.needId === id)
      .map((e) => e.payload as { takeover: boolean; roundTable?: boolean });

  it('refuses an early claim with the reason and the time it becomes eligible, then lets it through', async () => {
    const id = await createNeed('Unmet kernel work');
    const marked = world.clock.now();
    markUnmet(id);
    const eligibleAt = marked + 30 * S + claimJitter('architect', id, 250);
    const architect = await world.client(agent('architect'));
    world.clock.advance(10 * S);
    const head = world.store.events.headSeq();
    const early = await call(architect, 'claim_need', { need_id: id });
    expect(early.isError).toBe(true);
    expect(text(early)).toBe(
      `claim_need refused: need ${id} is within its grace: it has been unmet since ${iso(marked)}, and architect (primary scope) may take it over after 30s plus a jitter of ${claimJitter('architect', id, 250)}ms, at ${iso(eligibleAt)} (in ${+((eligibleAt - world.clock.now()) / 1000).toFixed(1)}s)`,
    );
    expect(world.store.events.headSeq()).toBe(head);

    world.clock.set(eligibleAt - 1);
    expect(text(await call(architect, 'claim_need', { need_id: id }))).toContain(`at ${iso(eligibleAt)}`);
    world.clock.set(eligibleAt);
    const claim = data<{ taskId: string; takeover: boolean }>(
      await call(architect, 'claim_need', { need_id: id }),
    );
    expect(world.store.tasks.require(claim.taskId).status).toBe('running');
    expect(world.store.needs.require(id).unmetSince).toBeNull();
    expect(claimEvents(id)).toEqual([expect.objectContaining({ roundTable: true })]);
  });

  it('a peripheral agent waits longer than a primary one', async () => {
    const a = await createNeed('Kernel work A');
    const b = await createNeed('Kernel work B');
    const marked = world.clock.now();
    markUnmet(a);
    markUnmet(b);
    const architect = await world.client(agent('architect'));
    const contextManager = await world.client(agent('context-manager'));

    const primaryAt = marked + 30 * S + claimJitter('architect', a, 250);
    world.clock.set(primaryAt);
    const peripheralAtA = marked + 90 * S + claimJitter('context-manager', a);
    const refused = await call(contextManager, 'claim_need', { need_id: a });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain(`need ${a} is in the peripheral scope of context-manager`);
    expect(text(refused)).toContain(`at ${iso(peripheralAtA)}`);
    expect(text(refused)).toContain('primary-scope agents go first');
    expect(data(await call(architect, 'claim_need', { need_id: a }))).toMatchObject({ takeover: false });

    const peripheralAtB = marked + 90 * S + claimJitter('context-manager', b);
    expect(peripheralAtB - primaryAt).toBeGreaterThan(59 * S);
    world.clock.set(peripheralAtB - 1);
    expect((await call(contextManager, 'claim_need', { need_id: b })).isError).toBe(true);
    world.clock.set(peripheralAtB);
    const late = data<{ taskId: string }>(await call(contextManager, 'claim_need', { need_id: b }));
    expect(world.store.tasks.require(late.taskId).identity).toBe('context-manager');
  });

  it('an identity whose budget left today cannot cover a task claims nothing; another identity can', async () => {
    const { perDay, perTask } = world.identity('architect').budgets;
    const spent = spendDayBudget(world, 'architect');
    const id = await createNeed('Unmet kernel work');
    const marked = world.clock.now();
    markUnmet(id);
    world.clock.set(marked + 3_600 * S);
    const head = world.store.events.headSeq();
    const day = iso(world.clock.now()).slice(0, 10);
    const refused = await call(await world.client(agent('architect')), 'claim_need', { need_id: id });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toBe(
      `claim_need refused: identity architect is budget-blocked until the next UTC day: ${spent} of its ${perDay} tokens for ${day} are used or reserved, less than one task (${perTask}) is left; leave the need to another identity`,
    );
    // Nothing written: no task to fail, no attempt of the need burned.
    expect(world.store.events.headSeq()).toBe(head);
    expect(world.store.tasks.forNeed(id)).toEqual([]);
    const other = data<{ taskId: string }>(
      await call(await world.client(agent('context-manager')), 'claim_need', { need_id: id }),
    );
    expect(world.store.tasks.require(other.taskId).identity).toBe('context-manager');
  });

  it("nor does one whose task no longer fits in the run's token budget (the takeover loops' claim)", async () => {
    const { perTask } = world.identity('architect').budgets;
    const runId = world.store.budgets.startRun(perTask - 1);
    const id = await createNeed('Unmet kernel work');
    markUnmet(id);
    world.clock.advance(3_600 * S);
    const store = world.store.as('agent:architect');
    const claim = (identity: string) =>
      claimAsAgent(store, { identity: world.identity(identity), needId: id, leaseMs: 60_000, runId });
    expect(() => claim('architect')).toThrow(
      `identity architect is budget-blocked for the rest of this run: 0 of the run's ${perTask - 1} tokens (--run-tokens) are used or reserved, less than one task of architect (${perTask}) is left; leave the need to another identity`,
    );
    expect(world.store.tasks.forNeed(id)).toEqual([]);
    // Without the run (as the operator's claims and other runs are), the day's budget alone counts.
    expect(
      claimAsAgent(store, { identity: world.identity('architect'), needId: id, leaseMs: 60_000 }).task
        .identity,
    ).toBe('architect');
  });

  it('a need whose last attempt failed is not taken over before the retry delay graduation keeps', async () => {
    const id = await createNeed('Failed once');
    const { task } = world.store.claims.claim(id, { identity: 'architect', leaseMs: 60_000 });
    world.store.tasks.transition(task.id, 'failed', { error: 'the model call failed' });
    const failedAt = world.clock.now();
    markUnmet(id);
    world.clock.set(failedAt + 45 * S);
    const architect = await world.client(agent('architect'), { retryDelayMs: 60 * S });
    const refused = await call(architect, 'claim_need', { need_id: id });
    expect(text(refused)).toBe(
      `claim_need refused: need ${id} failed its last attempt: it is tried again after a delay, at ${iso(failedAt + 60 * S)} (in 15.0s)`,
    );
    world.clock.set(failedAt + 60 * S);
    expect((await call(architect, 'claim_need', { need_id: id })).isError).toBeFalsy();
  });

  it('a need that failed its attempts is dead-lettered: agents claim it no more, the operator still can', async () => {
    const id = await createNeed('Fails every time');
    deadLetter(id);
    const head = world.store.events.headSeq();
    const refused = await call(await world.client(agent('architect'), { maxAttempts: 3 }), 'claim_need', {
      need_id: id,
    });
    expect(text(refused)).toBe(
      `claim_need refused: need ${id} failed 3 attempts (the limit is 3): it is escalated and waits for an operator, who can retry it (mlos need retry ${id}), claim it (claim_need as operator) or drop it`,
    );
    expect(world.store.events.headSeq()).toBe(head);
    // A guard without the limit (mlos mcp) is not bound by it; nor is the operator's claim, which
    // skips the round table's rules (see 'the operator claims regardless of the grace').
    expect(
      (await call(await world.client(agent('architect')), 'claim_need', { need_id: id })).isError,
    ).toBeFalsy();
  });

  it("after an operator's retry, agents may claim a dead-lettered need again", async () => {
    const id = await createNeed('Failed while the model was down');
    deadLetter(id);
    world.store.needs.retry(id, { reason: 'the model endpoint is back' });
    // Unmet again from the retry on: the round table's grace counts from there.
    markUnmet(id);
    world.clock.advance(60 * S);
    const claimed = await call(await world.client(agent('architect'), { maxAttempts: 3 }), 'claim_need', {
      need_id: id,
    });
    expect(text(claimed)).toMatch(new RegExp(`^claimed ${id}: task task_\\w+, fencing token \\d+`));
  });

  it('a brand-new need (not marked unmet): a primary agent claims at once, a peripheral one waits for the mark', async () => {
    const id = await createNeed('Fresh kernel work');
    const contextManager = await world.client(agent('context-manager'));
    world.clock.advance(3_600 * S);
    const refused = await call(contextManager, 'claim_need', { need_id: id });
    expect(text(refused)).toContain('the supervisor has not marked it unmet yet');
    const architect = await world.client(agent('architect'));
    expect((await call(architect, 'claim_need', { need_id: id })).isError).toBeFalsy();
  });

  it('a need just taken over has a cooldown', async () => {
    const id = await createNeed('Contested kernel work');
    markUnmet(id);
    world.clock.advance(31 * S);
    const architect = await world.client(agent('architect'));
    const first = data<{ taskId: string; fencingToken: number }>(
      await call(architect, 'claim_need', { need_id: id }),
    );
    const takenAt = world.clock.now();
    world.clock.advance(5 * S);
    const op = await world.client(OPERATOR);
    await call(op, 'finish', {
      outcome: 'failed',
      summary: 'gave up',
      reason: 'crashed',
      task_id: first.taskId,
      fencing_token: first.fencingToken,
    });
    markUnmet(id);
    world.clock.advance(60 * S);
    const refused = await call(architect, 'claim_need', { need_id: id });
    expect(refused.isError).toBe(true);
    expect(text(refused)).toContain(
      `need ${id} was taken over at ${iso(takenAt)}: it cannot be taken over again before its cooldown of 2m ends, at ${iso(takenAt + 120 * S)}`,
    );
    world.clock.set(takenAt + 120 * S);
    expect((await call(architect, 'claim_need', { need_id: id })).isError).toBeFalsy();
  });

  it('the operator claims regardless of the grace; a live lease still refuses everyone', async () => {
    const id = await createNeed('Operator work');
    markUnmet(id);
    const op = await world.client(OPERATOR);
    expect((await call(op, 'claim_need', { need_id: id, identity: 'architect' })).isError).toBeFalsy();
    world.clock.advance(50 * S); // past the grace, within the 60 s lease
    const architect = await world.client(agent('architect'));
    expect(text(await call(architect, 'claim_need', { need_id: id }))).toMatch(
      /is held by task task_\w+ until .* \(a live lease is never displaced\)/,
    );
  });

  it('with the supervisor: its tick marks the need, agents wait out the grace, the claim clears the mark', async () => {
    const supervisor = new Supervisor({
      store: world.store,
      queue: new MemoryTaskQueue(),
      bus: new MemoryNeedBus(),
      slots: () => [],
      clock: world.clock,
    });
    world.store.scheduling.acquireLock(15 * S);
    const id = await createNeed('Watched kernel work');
    world.clock.advance(2 * S);
    await supervisor.tick();
    const marked = world.store.needs.require(id).unmetSince;
    expect(marked).toBe(world.clock.now());
    const architect = await world.client(agent('architect'));
    const early = await call(architect, 'claim_need', { need_id: id });
    expect(text(early)).toContain(`unmet since ${iso(marked!)}`);
    world.clock.set(marked! + 30 * S + claimJitter('architect', id, 250));
    expect((await call(architect, 'claim_need', { need_id: id })).isError).toBeFalsy();
    expect(world.store.needs.require(id).unmetSince).toBeNull();
    await supervisor.close();
  });
});
