import { describe, expect, it } from 'vitest';
import { parseIdentity } from '../../src/kernel/identity/index.js';
import { MemoryNeedBus } from '../../src/roundtable/memory-need-bus.js';
import type { BusEvent, NeedSnapshot } from '../../src/roundtable/need-bus.js';
import { pickAgent } from '../../src/scheduler/simulation/central-scheduler.js';
import { Epoch } from '../../src/scheduler/simulation/epoch.js';
import {
  FAULT_PERIOD_MS,
  FaultDice,
  formatFaults,
  OUTAGE_MS,
  outageUntil,
  parseFaults,
} from '../../src/scheduler/simulation/faults.js';
import { FaultyNeedBus } from '../../src/scheduler/simulation/faulty-bus.js';
import type { SimAgent } from '../../src/scheduler/simulation/sim-agents.js';
import { VirtualTime } from '../../src/scheduler/simulation/virtual-time.js';
import { createSeededPrng } from '../../src/store/index.js';

const START = Date.UTC(2026, 0, 1);

function events(from: number, to: number): BusEvent[] {
  const out: BusEvent[] = [];
  for (let seq = from; seq <= to; seq++)
    out.push({ seq, at: START + seq, kind: 'need.updated', entity: `need_${seq}`, needId: `need_${seq}` });
  return out;
}

/** A subscriber that records what it is handed and fails on anything out of order or repeated. */
function recorder() {
  const seen: number[] = [];
  const resyncs: { seq: number; reason: string }[] = [];
  let last = 0;
  return {
    seen,
    resyncs,
    subscriber: {
      onEvents(batch: readonly BusEvent[]) {
        for (const e of batch) {
          if (e.seq !== last + 1) throw new Error(`event ${e.seq} handed after ${last}`);
          last = e.seq;
          seen.push(e.seq);
        }
      },
      onResync(snapshot: NeedSnapshot, reason: string) {
        last = snapshot.seq;
        resyncs.push({ seq: snapshot.seq, reason });
      },
    },
  };
}

describe('faulty need bus', () => {
  it('hands the subscriber every event once and in order despite duplicates and reordering', async () => {
    const time = new VirtualTime(START);
    const bus = new FaultyNeedBus(new MemoryNeedBus({ onError: (e) => expect.unreachable(String(e)) }), {
      dice: new FaultDice(createSeededPrng(7)),
      rates: { loss: 0, dup: 0.3, reorder: 0.3 },
      timers: time.timers,
    });
    const r = recorder();
    await bus.subscribe(r.subscriber);
    for (let i = 0; i < 10; i++) await bus.publish(events(i * 20 + 1, i * 20 + 20));
    while (time.fireNext()) await Promise.resolve();
    expect(bus.stats.duplicated).toBeGreaterThan(10);
    expect(bus.stats.reordered).toBeGreaterThan(10);
    expect(r.seen).toEqual(events(1, 200).map((e) => e.seq));
    expect(bus.stats.resyncs).toBe(0);
  });

  it('resyncs a subscriber that lost events from the next snapshot that covers the hole', async () => {
    const time = new VirtualTime(START);
    const bus = new FaultyNeedBus(new MemoryNeedBus(), {
      dice: new FaultDice(createSeededPrng(3)),
      rates: { loss: 0.2, dup: 0, reorder: 0 },
      timers: time.timers,
    });
    const r = recorder();
    const subscription = await bus.subscribe(r.subscriber);
    await bus.publish(events(1, 50));
    while (time.fireNext()) await Promise.resolve();
    expect(bus.stats.lost).toBeGreaterThan(0);
    // No snapshot yet past the hole: the subscriber waits there rather than skip it.
    expect(bus.positions()[0]!.waiting).toBeGreaterThan(0);
    const stalledAt = subscription.seq;
    expect(stalledAt).toBeLessThan(50);
    await bus.publishSnapshot({ seq: 50, needs: [] });
    expect(r.resyncs.at(-1)).toEqual({ seq: 50, reason: 'seq_jump' });
    expect(bus.positions()).toEqual([{ last: 50, waiting: 0 }]);
    expect(subscription.seq).toBe(50);
  });
});

describe('epoch', () => {
  it('fires nothing of an ended incarnation, and its sleeps never resolve', async () => {
    const time = new VirtualTime(START);
    const epoch = new Epoch(time.timers, 'worker 1');
    const fired: string[] = [];
    epoch.timers.setTimeout(() => fired.push('before'), 100);
    epoch.timers.setTimeout(() => fired.push('after'), 300);
    let woke = false;
    void epoch.sleep(500).then(() => {
      woke = true;
    });
    time.fireNext();
    expect(fired).toEqual(['before']);
    epoch.end();
    epoch.timers.setTimeout(() => fired.push('armed after the end'), 1);
    while (time.fireNext()) await Promise.resolve();
    expect(fired).toEqual(['before']);
    expect(woke).toBe(false);
    expect(epoch.suppressed).toBe(3);
    expect(epoch.signal.aborted).toBe(true);
  });
});

describe('central scheduler', () => {
  const identity = (name: string, primary: string, peripheral: string) =>
    parseIdentity(
      `---\nname: ${name}\nobjective: Test.\nscope: { primary: [${primary}], peripheral: [${peripheral}] }\nmodel: scripted:default\ncapacity: 2\n---\nBody.\n`,
      { file: `${name}.md` },
    );
  const agent = (seat: number, id: ReturnType<typeof identity>) =>
    ({ seat, identity: id, id: `agent_${seat}`, alive: true }) as unknown as SimAgent;

  it('picks a primary-scope agent first, then the least loaded, and never one that cannot see the need', () => {
    const alpha = identity('alpha', 'a', 'b');
    const beta = identity('beta', 'b', 'c');
    const [a1, a2, b1] = [agent(0, alpha), agent(1, alpha), agent(2, beta)];
    const load = new Map([
      [a1, 1],
      [a2, 0],
      [b1, 0],
    ]);
    const loadOf = (a: SimAgent) => load.get(a) ?? 0;
    expect(pickAgent({ tags: ['a'] }, [a1, a2, b1], loadOf)).toBe(a2);
    expect(pickAgent({ tags: ['b'] }, [a1, a2, b1], loadOf)).toBe(b1);
    expect(pickAgent({ tags: ['b'] }, [a1, a2], loadOf)).toBe(a2);
    expect(pickAgent({ tags: ['c'] }, [a1, a2], loadOf)).toBeUndefined();
  });
});

describe('faults', () => {
  it('parses every fault, refuses unknown names and rates out of range', () => {
    const faults = parseFaults('crash=0.1,hang=0.05,model=0.02,bus_loss=0.05,supervisor_restart=0.1');
    expect(faults).toMatchObject({
      crash: 0.1,
      hang: 0.05,
      server: 0.02,
      bus_loss: 0.05,
      supervisor_restart: 0.1,
    });
    expect(parseFaults(formatFaults(faults))).toEqual(faults);
    expect(() => parseFaults('crash=2')).toThrow(/probability in \[0, 1\]/);
    expect(() => parseFaults('explode=0.1')).toThrow(/unknown fault "explode"/);
    expect(() => parseFaults('bus_loss=0.6,bus_dup=0.6')).toThrow(/bus fault rates/);
  });

  it('draws model outages per identity and period: each lasts its drawn time, whoever asks when', () => {
    const dice = new FaultDice(createSeededPrng(11), 11);
    expect(outageUntil(dice, 0, 'alpha', START)).toBeNull();
    // Every period starts one at rate 1: covered from the period's first instant, for 10-60 s.
    for (let n = 0; n < 50; n++) {
      const at = START + n * FAULT_PERIOD_MS;
      const until = outageUntil(dice, 1, 'alpha', at)!;
      expect(until).toBeGreaterThanOrEqual(at + OUTAGE_MS.min);
      expect(until).toBeLessThanOrEqual(at + OUTAGE_MS.max);
    }
    // At a lower rate: an outage covering t covers every moment up to its end, and the answer
    // does not depend on the order of the questions (keyed dice, no draw consumed).
    let outages = 0;
    for (let at = START; at < START + 600_000; at += 700) {
      const until = outageUntil(dice, 0.05, 'beta', at);
      if (until === null) continue;
      outages++;
      expect(until).toBeGreaterThan(at);
      expect(outageUntil(dice, 0.05, 'beta', until - 1)).toBeGreaterThanOrEqual(until);
      expect(outageUntil(dice, 0.05, 'beta', at)).toBe(until);
    }
    expect(outages).toBeGreaterThan(0);
  });
});
