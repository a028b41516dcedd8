import { describe, expect, it } from 'vitest';
import { parseFaults } from '../../src/scheduler/simulation/faults.js';
import { runSimulation } from '../../src/scheduler/simulation/run.js';
import { SIM_TIMING } from '../../src/scheduler/simulation/scenario.js';
import { CI_SCENARIO } from './seed-range.js';

describe('deterministic simulator', () => {
  it('gives the same report for the same seed, faults included', async () => {
    const options = { ...CI_SCENARIO, agents: 4, needs: 12, seed: 42 };
    const a = await runSimulation(options);
    const b = await runSimulation(options);
    expect(a.crashes + a.hangs + a.slowSessions + a.supervisorRestarts + a.workerRestarts).toBeGreaterThan(0);
    expect(b).toEqual(a);
    expect(b.headHash).toMatch(/^[0-9a-f]{64}$/);
    const other = await runSimulation({ ...options, seed: 43 });
    expect(other.events === a.events && other.drainMs === a.drainMs && other.tokens === a.tokens).toBe(false);
  });

  // Each fault alone, at a high rate: the run still drains with every invariant kept, and the
  // fault really happened (its counter in the report).
  const single: [string, (r: Awaited<ReturnType<typeof runSimulation>>) => number][] = [
    ['crash=0.3', (r) => r.crashes],
    ['agent_crash=1', (r) => r.crashes],
    ['hang=0.3', (r) => r.hangs],
    ['slow=0.5', (r) => r.slowSessions],
    ['server=0.3,rate_limit=0.1,timeout=0.05,malformed=0.1', (r) => r.sessions - r.needs],
    ['bus_loss=0.3', (r) => r.bus!.lost],
    ['bus_dup=0.3', (r) => r.bus!.duplicated],
    ['bus_reorder=0.3', (r) => r.bus!.reordered],
    ['supervisor_restart=0.3', (r) => r.supervisorRestarts],
    ['worker_restart=0.1', (r) => r.workerRestarts],
    ['outage=0.05', (r) => r.holds],
  ];
  for (const [faults, happened] of single) {
    it(`drains cleanly under ${faults}`, async () => {
      let total = 0;
      for (let seed = 1; seed <= 4; seed++) {
        const report = await runSimulation({ agents: 4, needs: 12, seed, faults: parseFaults(faults) });
        expect({ seed, violations: report.violations, drained: report.drained }).toEqual({
          seed,
          violations: [],
          drained: true,
        });
        total += happened(report);
      }
      expect(total).toBeGreaterThan(0);
    });
  }

  it('a hung session is declared lost at its lease expiry and its late writes are refused', async () => {
    let lost: (string | null)[] = [];
    const report = await runSimulation({
      agents: 3,
      needs: 10,
      seed: 7,
      faults: parseFaults('hang=0.5'),
      inspect: (store) => {
        lost = store.tasks.listByStatus(['lost']).map((t) => t.error);
      },
    });
    expect(report.hangs).toBeGreaterThan(0);
    // The supervisor tells a hung session (heartbeats, no progress) from a dead one.
    expect(lost).toContain('hung: heartbeats without progress until its lease expired');
    expect(lost).not.toContain('dead: no heartbeat until its lease expired');
    expect(report.recovery.count).toBeGreaterThan(0);
    // The hung call ends at its 120 s timeout, long after the 30 s lease; its next write is stale.
    expect(report.refusedStaleWrites).toBeGreaterThan(0);
    expect(report.duplicateEffects).toBe(0);
  });

  it('a restarted supervisor reopens the database; the dead incarnation never writes again', async () => {
    const spans = new Map<string, { first: number; last: number }>();
    const report = await runSimulation({
      agents: 4,
      needs: 16,
      seed: 3,
      faults: parseFaults('supervisor_restart=0.4,crash=0.1'),
      inspect: (store) => {
        for (const e of store.events.since(0, 100_000)) {
          if (!e.actor.startsWith('supervisor#')) continue;
          const span = spans.get(e.actor) ?? { first: e.seq, last: e.seq };
          span.last = e.seq;
          spans.set(e.actor, span);
        }
      },
    });
    expect(report.violations).toEqual([]);
    expect(report.supervisorRestarts).toBeGreaterThan(1);
    const incarnations = [...spans.entries()].sort((a, b) => a[1].first - b[1].first);
    expect(incarnations.length).toBeGreaterThan(1);
    // Incarnation k's last write comes before incarnation k+1's first: they never overlap.
    for (let i = 1; i < incarnations.length; i++)
      expect(incarnations[i - 1]![1].last).toBeLessThan(incarnations[i]![1].first);
  });
});

describe('central scheduler against the round table', () => {
  it('dispatches every session itself and starts a crashed agent’s need again at its lease expiry', async () => {
    const faults = parseFaults('crash=0.2');
    let recovered = 0;
    let waited = 0;
    for (let seed = 1; seed <= 6; seed++) {
      const central = await runSimulation({ agents: 6, needs: 16, seed, faults, scheduler: 'central' });
      expect(central.violations).toEqual([]);
      expect(central.drained).toBe(true);
      expect(central.takeovers).toBe(0);
      expect(central.dispatches).toBeGreaterThanOrEqual(central.sessions);
      // With six agents, one is nearly always free: the need starts again the moment the lease
      // expires, as a takeover would; when the supervisor declared the task lost first, it is a
      // failure like any other and the need waits out graduation's retry delay (never longer).
      recovered += central.recovery.count;
      waited += central.recovery.meanMs * central.recovery.count;
      expect(central.recovery.maxMs).toBeLessThanOrEqual(SIM_TIMING.retryDelayMs);
    }
    expect(recovered).toBeGreaterThan(0);
    expect(waited / recovered).toBeLessThan(SIM_TIMING.retryDelayMs / 4);
  });

  it('both drain the same scenario with the same faults, with no duplicate effect', async () => {
    const options = { agents: 6, needs: 30, seed: 9, faults: parseFaults('crash=0.1,server=0.05') };
    const roundtable = await runSimulation(options);
    const central = await runSimulation({ ...options, scheduler: 'central' });
    for (const r of [roundtable, central]) {
      expect(r.violations).toEqual([]);
      expect(r.drained).toBe(true);
      expect(r.duplicateEffects).toBe(0);
      expect(r.resolved).toBe(30);
    }
    expect(roundtable.takeovers).toBeGreaterThan(0);
    expect(central.dispatches).toBeGreaterThanOrEqual(30);
  });

  it('a hung session frees its agent without an event: the central scheduler uses it at once', async () => {
    for (const seed of [1, 6, 9]) {
      const options = { agents: 6, needs: 30, seed, faults: parseFaults('hang=0.2') };
      const roundtable = await runSimulation(options);
      const central = await runSimulation({ ...options, scheduler: 'central' });
      expect([roundtable.violations, central.violations]).toEqual([[], []]);
      expect(central.hangs).toBeGreaterThan(0);
      // Nothing waits for the escalation time (it once did: 6× the round table's drain time); which
      // sessions meet the hung calls differs by placement, so the two differ by up to about 1.25×.
      expect({ seed, orphanings: central.orphanings }).toEqual({ seed, orphanings: 0 });
      expect(central.drainMs).toBeLessThanOrEqual(roundtable.drainMs * 1.5);
    }
  });

  it('model outages hold identities under both schedulers, and every need is still resolved once', async () => {
    for (const seed of [1, 2, 3]) {
      const options = { agents: 3, needs: 12, seed, faults: parseFaults('outage=0.05') };
      const roundtable = await runSimulation(options);
      const central = await runSimulation({ ...options, scheduler: 'central' });
      for (const r of [roundtable, central]) {
        expect({ seed, scheduler: r.scheduler, violations: r.violations, drained: r.drained }).toEqual({
          seed,
          scheduler: r.scheduler,
          violations: [],
          drained: true,
        });
        expect(r.duplicateEffects).toBe(0);
        // Outages met sessions, which ended early and held their identity.
        expect(r.outageCalls).toBeGreaterThan(0);
        expect(r.holds).toBeGreaterThan(0);
      }
    }
  });
});
