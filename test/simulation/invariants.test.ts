import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { InvariantChecker } from '../../src/scheduler/simulation/invariants.js';
import type { ManualClock, Store } from '../../src/store/index.js';
import { makeTempDir, openRaw, openTestStore } from '../helpers/store.js';

const LIMITS = { perTask: () => 100_000, perDay: () => 1_000_000 };

/** A world the checker watches: a store on a temp file (so a raw connection can tamper with it). */
function world() {
  const temp = makeTempDir('mlos-sim-inv-');
  const path = join(temp.dir, 'sim.db');
  const { store, clock } = openTestStore(path);
  store.identities.pin('alpha', 'a'.repeat(64), 'source');
  const checker = new InvariantChecker(store, clock.now(), LIMITS);
  const cleanup = () => {
    store.close();
    temp.cleanup();
  };
  return { store, clock, checker, path, cleanup };
}

/** Claims a new need for alpha and returns its task, its fence and the session's store handle. */
function claimed(store: Store, clock: ManualClock, agentId?: string) {
  const need = store.needs.create({ title: 'Work', tags: ['a'] });
  const claim = store.claims.claim(need.id, {
    identity: 'alpha',
    leaseMs: 30_000,
    ...(agentId && { agentId }),
  });
  clock.advance(10);
  return { need, claim, session: store.as(`agent:alpha:${claim.task.id}`) };
}

describe('invariant checker', () => {
  let w: ReturnType<typeof world>;
  beforeEach(() => {
    w = world();
  });
  afterEach(() => w.cleanup());

  it('passes a claim, a fenced finish and a supervisor expiring a lease', () => {
    const { store, clock, checker } = w;
    const { need, claim, session } = claimed(store, clock);
    session.claims.finish(claim.fence, { outcome: 'resolved', summary: 'done' });
    const other = claimed(store, clock);
    clock.advance(31_000);
    store.as('supervisor').tasks.transition(other.claim.task.id, 'lost', { error: 'lease expired' });
    checker.step();
    expect(checker.violations).toEqual([]);
    expect(checker.resolvedNeeds).toBe(1);
    expect(store.needs.require(need.id).status).toBe('resolved');
  });

  it('reports a need resolved twice, with the tail of the trace', () => {
    const { store, checker } = w;
    const need = store.needs.create({ title: 'Twice' });
    store.needs.resolve(need.id);
    checker.step();
    expect(checker.violations).toEqual([]);
    store.needs.transition(need.id, 'open');
    store.needs.resolve(need.id);
    checker.step();
    expect(checker.violations).toMatchObject([{ invariant: 'need resolved once', needId: need.id }]);
    expect(checker.duplicateEffects).toBe(1);
    expect(checker.tail(2).join('\n')).toMatch(/need\.resolved/);
  });

  it('reports a write a session commits after its lease was lost (an unfenced path)', () => {
    const { store, clock, checker } = w;
    const { need, claim, session } = claimed(store, clock);
    clock.advance(31_000);
    store.as('supervisor').tasks.transition(claim.task.id, 'lost', { error: 'lease expired' });
    // The store's recordBoot does not check the fence (the guard does): the checker must catch it.
    session.tasks.recordBoot(claim.task.id, 'f'.repeat(64));
    checker.step();
    expect(checker.violations).toMatchObject([
      { invariant: 'writes carry the current fencing token', needId: need.id },
    ]);
    expect(checker.violations[0]!.detail).toMatch(/task\.booted .* while the lease is released/);
  });

  it('reports a lease row that disagrees with the events (holder or token)', () => {
    const { store, clock, checker, path } = w;
    const { need } = claimed(store, clock);
    checker.step();
    expect(checker.violations).toEqual([]);
    const raw = openRaw(path);
    raw.prepare('UPDATE leases SET fencing_token = fencing_token + 5 WHERE need_id = ?').run(need.id);
    raw.close();
    store.needs.update(need.id, { priority: 0 });
    checker.step();
    expect(checker.violations).toMatchObject([{ invariant: 'one live lease per need', needId: need.id }]);
  });

  it('reports an event whose contents no longer match its hash', () => {
    const { store, checker, path } = w;
    const need = store.needs.create({ title: 'Original' });
    const raw = openRaw(path);
    raw.exec('DROP TRIGGER events_no_update; DROP TRIGGER events_no_delete;');
    raw
      .prepare("UPDATE events SET payload = replace(payload, 'Original', 'Forged') WHERE need_id = ?")
      .run(need.id);
    raw.close();
    checker.step();
    expect(checker.violations).toMatchObject([{ invariant: 'event chain verifies', needId: need.id }]);
    expect(checker.violations[0]!.detail).toMatch(/its hash does not match/);
  });

  it('reports writes by an ended supervisor and tasks started by a dead agent', () => {
    const { store, clock, checker } = w;
    const agent = store.agents.register('alpha', 'a'.repeat(64), 'sim', 1);
    checker.retireActor('supervisor#1');
    checker.retireAgent(agent.id);
    store.as('supervisor#2').needs.create({ title: 'From the new incarnation' });
    checker.step();
    expect(checker.violations).toEqual([]);
    store.as('supervisor#1').needs.create({ title: 'From the dead one' });
    claimed(store, clock, agent.id);
    checker.step();
    expect(checker.violations.map((v) => v.detail)).toEqual([
      expect.stringMatching(/need\.created .* by supervisor#1, which had ended/),
      expect.stringMatching(new RegExp(`started by dead agent ${agent.id}`)),
    ]);
  });

  it('reports a task of a held identity started before its hold ended, not one after it or its release', () => {
    const { store, clock, checker } = w;
    store.identities.hold('alpha', 'the model call failed: 529 overloaded', () => 20_000);
    clock.advance(5000);
    // The store's claim does not look at holds (the guard and the schedulers do): a path that
    // forgot them would start this task.
    const early = claimed(store, clock);
    checker.step();
    expect(checker.violations).toMatchObject([
      { invariant: 'a held identity starts nothing', needId: early.need.id },
    ]);
    expect(checker.violations[0]!.detail).toMatch(/started 15000 ms before its hold ended/);
    clock.advance(15_000);
    claimed(store, clock);
    store.identities.hold('alpha', 'again', () => 60_000);
    store.identities.releaseHold('alpha', 'operator');
    claimed(store, clock);
    checker.step();
    expect(checker.violations).toHaveLength(1);
  });

  it('reports a task over its budget, read on the step it reserved (no event is written)', () => {
    const { store, clock, checker } = w;
    const { claim } = claimed(store, clock);
    checker.step();
    store.budgets.reserve(claim.task.id, 90_000, { task: null, day: null, run: null });
    checker.step();
    expect(checker.violations).toEqual([]);
    store.budgets.reserve(claim.task.id, 20_000, { task: null, day: null, run: null });
    checker.step();
    expect(checker.violations).toMatchObject([{ invariant: 'no budget exceeded' }]);
    expect(checker.violations[0]!.detail).toMatch(/used 110000 > 100000/);
  });

  it('reports at the end a need left unresolved or orphaned', () => {
    const { store, checker } = w;
    const need = store.needs.create({ title: 'Left over' });
    store.needs.setFlags(need.id, { orphaned: true });
    checker.finish([need.id]);
    expect(checker.violations.map((v) => v.invariant)).toEqual(['every need resolved', 'none orphaned']);
  });
});
