import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryNeedBus } from '../../../src/roundtable/memory-need-bus.js';
import type { NeedState } from '../../../src/roundtable/need-bus.js';
import { claimJitter } from '../../../src/roundtable/protocol.js';
import {
  type ClaimAttempt,
  TakeoverLoop,
  type TakeoverPort,
  type TakeoverSeat,
} from '../../../src/roundtable/takeover-loop.js';
import { EmbeddedConnector, type StartedTask } from '../../../src/scheduler/connector.js';
import { createTakeoverPort } from '../../../src/scheduler/worker-takeover.js';
import { ManualClock } from '../../../src/store/index.js';
import { createGuardWorld, identityFrom } from '../../helpers/guard.js';
import { ManualTimers, settle } from '../../helpers/timers.js';

const S = 1000;
const M = 60 * S;

const kernel = identityFrom(
  'objective: keep the kernel\nscope: { primary: [kernel] }\ntakeover: { grace: 10s, peripheral_delay: 20s, cooldown: 1m }',
  'kernel-keeper',
);
const helper = identityFrom(
  'objective: help\nscope: { primary: [docs], peripheral: [kernel] }\ntakeover: { grace: 10s, peripheral_delay: 20s, cooldown: 1m }',
  'helper',
);

/** A worker as the loop sees it: capacity, running sessions, need states, claims that win. */
function fakeWorker() {
  const states = new Map<string, NeedState>();
  const claims: { needId: string; agentId: string; at: number }[] = [];
  const running = new Set<string>();
  const worker = {
    states,
    claims,
    running,
    free: { worker: 4, identity: 2 },
    /** When set, claims wait for the test to decide them. */
    hold: null as null | ((decide: (attempt: ClaimAttempt) => void) => void),
    clock: undefined as ManualClock | undefined,
  };
  const port: TakeoverPort = {
    // Capacity, less the sessions running (those the loop started included).
    freeCapacity: (identity) => ({
      worker: worker.free.worker - running.size,
      identity: worker.free.identity - [...running].filter((r) => r.startsWith(`${identity}/`)).length,
    }),
    isRunning: (identity, needId) => running.has(`${identity}/${needId}`),
    needState: async (id) => states.get(id),
    claimAndRun: (needId, seat) => {
      claims.push({ needId, agentId: seat.agentId, at: worker.clock!.now() });
      const win = (): ClaimAttempt => {
        running.add(`${seat.identity.name}/${needId}`);
        return { started: true, taskId: `task_${claims.length}` };
      };
      if (worker.hold) return new Promise((resolve) => worker.hold!((a) => resolve(a.started ? win() : a)));
      return Promise.resolve(win());
    },
  };
  return { worker, port };
}

function needState(over: Partial<NeedState> & Pick<NeedState, 'id'>): NeedState {
  return {
    title: 'Kernel work',
    status: 'open',
    priority: 2,
    scope: 'default',
    tags: ['kernel'],
    actionable: true,
    leaseTask: null,
    leaseExpiresAt: null,
    fencingToken: 1,
    unmetSince: null,
    orphaned: false,
    lastTakeoverAt: null,
    dueAt: null,
    ...over,
  };
}

describe('the takeover loop (a fake worker, a manual clock)', () => {
  let clock: ManualClock;
  let timers: ManualTimers;
  let bus: MemoryNeedBus;
  let seq: number;
  const loops: TakeoverLoop[] = [];

  beforeEach(() => {
    clock = new ManualClock(Date.UTC(2026, 5, 1, 9));
    timers = new ManualTimers(clock);
    bus = new MemoryNeedBus();
    seq = 0;
  });
  afterEach(async () => {
    await Promise.all(loops.splice(0).map((l) => l.close()));
    await bus.close();
  });

  async function startLoop(seats: TakeoverSeat[], port: TakeoverPort) {
    const loop = new TakeoverLoop({ bus, port, seats, clock, timers, checkMs: 5 * S });
    loops.push(loop);
    await loop.start();
    await settle();
    return loop;
  }

  /** The guard's state changed: the port reads the new one; an event names the need. */
  async function change(worker: ReturnType<typeof fakeWorker>['worker'], state: NeedState) {
    worker.states.set(state.id, state);
    await bus.publish([
      { seq: ++seq, at: clock.now(), kind: 'need.flagged', entity: state.id, needId: state.id },
    ]);
    await settle();
  }

  it('a need that becomes unmet is claimed by a primary watcher after its grace (plus jitter), not before', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const held = needState({ id: 'need_a', leaseTask: 'task_0', leaseExpiresAt: clock.now() + 10 * M });
    worker.states.set(held.id, held);
    await bus.publishSnapshot({ seq: 0, needs: [held] });
    await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    await timers.advance(2 * M);
    expect(worker.claims).toEqual([]);

    // Its holder died: the supervisor marks the need unmet (the lease is gone).
    const since = clock.now();
    await change(worker, { ...held, leaseTask: null, leaseExpiresAt: null, unmetSince: since });
    const eligibleAt = since + 10 * S + claimJitter('agent_k', 'need_a', 250);
    await timers.advance(eligibleAt - 1 - clock.now());
    expect(worker.claims).toEqual([]);
    await timers.advance(1);
    expect(worker.claims).toEqual([{ needId: 'need_a', agentId: 'agent_k', at: eligibleAt }]);
  });

  it('a peripheral watcher claims only after the grace plus the peripheral delay', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const since = clock.now();
    const unmet = needState({ id: 'need_p', unmetSince: since });
    worker.states.set(unmet.id, unmet);
    await bus.publishSnapshot({ seq: 0, needs: [unmet] });
    await startLoop([{ identity: helper, agentId: 'agent_h' }], port);
    const eligibleAt = since + 30 * S + claimJitter('agent_h', 'need_p', 250);
    await timers.advance(eligibleAt - 1 - clock.now());
    expect(worker.claims).toEqual([]);
    await timers.advance(1);
    expect(worker.claims).toEqual([{ needId: 'need_p', agentId: 'agent_h', at: eligibleAt }]);
  });

  it('never claims while a lease is live; at its expiry a primary watcher claims at once', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const expiry = clock.now() + 3 * M;
    const held = needState({ id: 'need_l', leaseTask: 'task_0', leaseExpiresAt: expiry });
    worker.states.set(held.id, held);
    await bus.publishSnapshot({ seq: 0, needs: [held] });
    await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    await timers.advance(expiry - 1 - clock.now());
    expect(worker.claims).toEqual([]);
    // No event: the lease simply expired (the supervisor has not marked the need yet).
    await timers.advance(1);
    expect(worker.claims).toEqual([{ needId: 'need_l', agentId: 'agent_k', at: expiry }]);
  });

  it('never claims beyond its free capacity; claims once a session ends and frees a slot', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    worker.free = { worker: 0, identity: 2 };
    const unmet = needState({ id: 'need_c', unmetSince: clock.now() - 5 * M });
    worker.states.set(unmet.id, unmet);
    await bus.publishSnapshot({ seq: 0, needs: [unmet] });
    const loop = await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    await timers.advance(10 * M);
    expect(worker.claims).toEqual([]);
    worker.free = { worker: 3, identity: 0 }; // the identity's own capacity is used up
    loop.poke();
    await settle();
    expect(worker.claims).toEqual([]);
    worker.free = { worker: 3, identity: 1 };
    loop.poke();
    await settle();
    expect(worker.claims.map((c) => c.needId)).toEqual(['need_c']);
  });

  it('claims the most urgent needs first when capacity is short', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    worker.free = { worker: 1, identity: 1 };
    const old = clock.now() - 5 * M;
    const needs = [
      needState({ id: 'need_1', priority: 3, unmetSince: old }),
      needState({ id: 'need_2', priority: 1, unmetSince: old }),
      needState({ id: 'need_3', priority: 2, unmetSince: old }),
    ];
    for (const n of needs) worker.states.set(n.id, n);
    await bus.publishSnapshot({ seq: 0, needs });
    await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    expect(worker.claims.map((c) => c.needId)).toEqual(['need_2']);
  });

  it('one claim per need at a time, even when two agents of the worker may claim it', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const decisions: ((a: ClaimAttempt) => void)[] = [];
    worker.hold = (decide) => decisions.push(decide);
    const unmet = needState({ id: 'need_o', unmetSince: clock.now() - 5 * M });
    worker.states.set(unmet.id, unmet);
    await bus.publishSnapshot({ seq: 0, needs: [unmet] });
    await startLoop(
      [
        { identity: kernel, agentId: 'agent_k' },
        { identity: helper, agentId: 'agent_h' },
      ],
      port,
    );
    await change(worker, unmet);
    await timers.advance(30 * S);
    expect(worker.claims).toHaveLength(1);
    // It wins: the guard's state shows the new lease, which the loop reads again after a claim.
    worker.states.set(unmet.id, {
      ...unmet,
      unmetSince: null,
      leaseTask: 'task_1',
      leaseExpiresAt: clock.now() + M,
    });
    decisions[0]!({ started: true, taskId: 'task_1' });
    await settle();
    await timers.advance(30 * S);
    expect(worker.claims).toHaveLength(1);
  });

  it('an agent never claims a need it is running, however stale its view', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const unmet = needState({ id: 'need_s', unmetSince: clock.now() - 5 * M });
    worker.states.set(unmet.id, unmet);
    await bus.publishSnapshot({ seq: 0, needs: [unmet] });
    await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    expect(worker.claims).toHaveLength(1);
    // The guard's answers stay stale (the need looks unmet): the running session alone stops it.
    for (let i = 0; i < 3; i++) await change(worker, unmet);
    await timers.advance(5 * M);
    expect(worker.claims).toHaveLength(1);
  });

  it('a refused claim is logged at debug and retried only after the back-off or a change', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    worker.hold = (decide) =>
      decide({
        started: false,
        reason: 'need need_r is held by task_9 (another agent won)',
        eligibleAt: null,
      });
    const unmet = needState({ id: 'need_r', unmetSince: clock.now() - 5 * M });
    worker.states.set(unmet.id, unmet);
    await bus.publishSnapshot({ seq: 0, needs: [unmet] });
    const debug: string[] = [];
    const loop = new TakeoverLoop({
      bus,
      port,
      seats: [{ identity: kernel, agentId: 'agent_k' }],
      clock,
      timers,
      checkMs: 5 * S,
      log: { info() {}, warn() {}, debug: (_o, msg) => debug.push(msg ?? '') },
    });
    loops.push(loop);
    await loop.start();
    await settle();
    expect(worker.claims).toHaveLength(1);
    expect(debug).toContain('round table: claim refused');
    expect(loop.takeovers).toBe(0);
    await timers.advance(5 * S - 1);
    expect(worker.claims).toHaveLength(1);
    await timers.advance(1);
    expect(worker.claims).toHaveLength(2);
    // The winner's claim is published: the view shows its live lease, and the loop stops trying.
    await change(worker, {
      ...unmet,
      unmetSince: null,
      leaseTask: 'task_9',
      leaseExpiresAt: clock.now() + M,
    });
    await timers.advance(30 * S);
    expect(worker.claims).toHaveLength(2);
  });

  it('drops needs that are resolved or outside every seat’s view', async () => {
    const { worker, port } = fakeWorker();
    worker.clock = clock;
    const mine = needState({ id: 'need_v', leaseTask: 't', leaseExpiresAt: clock.now() + M });
    const other = needState({ id: 'need_x', tags: ['billing'] });
    await bus.publishSnapshot({ seq: 0, needs: [mine, other] });
    const loop = await startLoop([{ identity: kernel, agentId: 'agent_k' }], port);
    expect([...loop.view.keys()]).toEqual(['need_v']);
    await change(worker, { ...mine, status: 'resolved', leaseTask: null, leaseExpiresAt: null });
    expect(loop.view.size).toBe(0);
    await timers.advance(10 * M);
    expect(worker.claims).toEqual([]);
  });
});

describe('the takeover loop on the real store (EmbeddedConnector)', () => {
  let world: ReturnType<typeof createGuardWorld>;
  beforeEach(() => {
    world = createGuardWorld({ leaseMs: 60 * S });
  });
  afterEach(() => world.close());

  it('two loops of different agents on one need: exactly one claim succeeds', async () => {
    const { store, clock } = world;
    const timers = new ManualTimers(clock);
    const bus = new MemoryNeedBus();
    const architect = world.identity('architect');
    const pin = store.identities.require('architect');
    const need = store.needs.create({ title: 'Orphaned kernel work', tags: ['kernel'] });
    store.needs.setFlags(need.id, { unmetSince: clock.now() });
    clock.advance(5 * M);
    const connector = new EmbeddedConnector(world.deps);
    const started: StartedTask[] = [];
    const refusals: string[] = [];
    const loops = ['w1', 'w2'].map((name) => {
      const agent = store.agents.register('architect', pin.hash, name, 2);
      const running = new Map<string, string>();
      const port = createTakeoverPort(
        {
          get running() {
            return running.size;
          },
          runningOf: () => running.size,
          isRunning: (_identity, needId) => [...running.values()].includes(needId),
        },
        {
          connector,
          concurrency: 2,
          capacity: new Map([['architect', 2]]),
          run: (task) => {
            running.set(task.taskId, task.needId);
            started.push(task);
          },
        },
      );
      return new TakeoverLoop({
        bus,
        port,
        seats: [{ identity: architect, agentId: agent.id }],
        clock,
        timers,
        log: { info() {}, warn() {}, debug: (o) => refusals.push((o as { reason: string }).reason) },
      });
    });
    await bus.publishSnapshot({
      seq: store.events.headSeq(),
      needs: store.scheduling.needStates(clock.now()).needs,
    });
    await Promise.all(loops.map((l) => l.start()));
    for (let i = 0; i < 5; i++) await settle();
    await timers.advance(30 * S);

    expect(started).toHaveLength(1);
    // Both claimed at once; the guard let one through and told the other why not.
    expect(refusals).toEqual([
      expect.stringContaining(`need ${need.id} is held by task ${started[0]!.taskId}`),
    ]);
    expect(loops.map((l) => l.takeovers).sort()).toEqual([0, 1]);
    const claims = store.events.since(0, 10_000).filter((e) => e.kind === 'need.claimed');
    expect(claims).toHaveLength(1);
    expect(claims[0]!.payload).toMatchObject({ identity: 'architect', roundTable: true });
    expect(store.tasks.require(started[0]!.taskId).status).toBe('running');
    await Promise.all(loops.map((l) => l.close()));
    await Promise.all(started.map((s) => s.close()));
    await bus.close();
  });
});
