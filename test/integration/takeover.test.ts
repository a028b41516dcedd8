import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MemoryNeedBus } from '../../src/roundtable/memory-need-bus.js';
import type { Logger } from '../../src/scheduler/logger.js';
import { MemoryTaskQueue } from '../../src/scheduler/memory-task-queue.js';
import { Runtime, type RuntimeConfig } from '../../src/scheduler/runtime.js';
import { Store } from '../../src/store/index.js';
import { tempDir } from '../helpers/cli.js';
import { waitFor } from '../helpers/run.js';

const LEASE_MS = 1500;

/** Two identities with the same primary scope; alpha gets the need first (routing breaks ties by name). */
function identityFile(name: string): string {
  return `---
name: ${name}
objective: Keep the x work moving.
scope:
  primary: [x]
model: scripted:demo
capacity: 2
budgets:
  per_task: 10000000
  per_day: 100000000
takeover:
  grace: 300ms
  peripheral_delay: 1s
  cooldown: 1m
  escalation: 10m
---
You are ${name}.
`;
}

/** alpha's model hangs on its first call (no progress, so its lease is never renewed); beta works. */
const SCRIPT = `name: hang-or-work
rules:
  - match: { identity: alpha }
    steps:
      - tool: get_need
        args: { id: "\${need.id}" }
        latency_ms: 60000
      - tool: finish
        args: { outcome: resolved, summary: "never reached" }
  - steps:
      - tool: get_need
        args: { id: "\${need.id}" }
      - tool: finish
        args: { outcome: resolved, summary: "resolved \${need.id}" }
`;

/**
 * The round table in an embedded run: a session stalls, its lease expires, and another agent of
 * the run takes the need over through its takeover loop — before the supervisor (whose loop is
 * slowed down to a minute here) could expire the lease and graduate the need again.
 */
describe('takeover in an embedded run', { timeout: 60_000 }, () => {
  let dir: string;
  let cleanup: () => void;
  let store: Store;
  let runtime: Runtime | undefined;
  let lines: { msg: string; obj: Record<string, unknown> }[];

  beforeEach(() => {
    ({ dir, cleanup } = tempDir());
    mkdirSync(join(dir, 'identities'));
    for (const name of ['alpha', 'beta'])
      writeFileSync(join(dir, 'identities', `${name}.md`), identityFile(name));
    writeFileSync(join(dir, 'script.yaml'), SCRIPT);
    store = Store.open(join(dir, 'mlos.db'));
    lines = [];
  });
  afterEach(async () => {
    await runtime?.close(0);
    runtime = undefined;
    store.close();
    cleanup();
  });

  function start(overrides: Partial<RuntimeConfig> = {}): Promise<void> {
    const record = (msg: string | undefined, obj: object) =>
      lines.push({ msg: msg ?? '', obj: obj as Record<string, unknown> });
    const log: Logger = {
      info: (obj, msg) => record(msg, obj),
      warn: (obj, msg) => record(msg, obj),
      error: (obj, msg) => record(msg, obj),
      debug: (obj, msg) => record(msg, obj),
    };
    runtime = new Runtime({
      store,
      queue: new MemoryTaskQueue(),
      bus: new MemoryNeedBus(),
      identitiesDir: join(dir, 'identities'),
      embeddedWorkers: true,
      concurrency: 4,
      leaseMs: LEASE_MS,
      heartbeatMs: 200,
      loopMs: 60_000,
      maxAttempts: 3,
      providerOverrides: { provider: 'scripted', model: join(dir, 'script.yaml') },
      env: {},
      compileViews: false,
      runTokenLimit: null,
      takeoverCheckMs: 200,
      log,
      ...overrides,
    });
    return runtime.start();
  }

  const claims = (needId: string) =>
    store.events
      .since(0, 100_000)
      .filter((e) => e.kind === 'need.claimed' && e.needId === needId)
      .map((e) => e.payload as { identity: string; takeover: boolean; roundTable?: boolean });

  it('a stalled session loses its need to another agent once its lease expires; the need is resolved once', async () => {
    const need = store.needs.create({ title: 'Stalls at first', tags: ['x'] });
    await start();
    await waitFor(() => claims(need.id).length >= 1, 10_000, 'alpha to claim the need');
    expect(claims(need.id)[0]).toMatchObject({ identity: 'alpha', takeover: false });

    await waitFor(() => store.needs.require(need.id).status === 'resolved', 20_000, 'the need resolved');
    expect(claims(need.id)).toEqual([
      expect.objectContaining({ identity: 'alpha', takeover: false }),
      expect.objectContaining({ identity: 'beta', takeover: true, roundTable: true }),
    ]);
    // Exactly two attempts: alpha's, lost to the takeover, and beta's; no graduation in between.
    const tasks = store.tasks.listByStatus(['queued', 'running', 'succeeded', 'failed', 'lost', 'cancelled']);
    const mine = tasks.filter((t) => t.needId === need.id);
    expect(mine.map((t) => [t.identity, t.status])).toEqual([
      ['alpha', 'lost'],
      ['beta', 'succeeded'],
    ]);
    const resolved = store.events
      .since(0, 100_000)
      .filter((e) => e.kind === 'need.resolved' && e.needId === need.id);
    expect(resolved).toHaveLength(1);
    const took = lines.find((l) => l.msg === 'round table: took the need over');
    expect(took?.obj).toMatchObject({ need: need.id, identity: 'beta', takeovers: 1 });

    await runtime!.close(200);
    expect(lines.find((l) => l.msg === 'round-table loop stopped')?.obj).toMatchObject({ takeovers: 1 });
    expect(store.events.verify().ok).toBe(true);
  });

  it('with takeover off, nobody takes the stalled need over (the supervisor alone would retry it)', async () => {
    const need = store.needs.create({ title: 'Stalls at first', tags: ['x'] });
    await start({ takeover: false });
    await waitFor(() => claims(need.id).length >= 1, 10_000, 'alpha to claim the need');
    await new Promise((r) => setTimeout(r, LEASE_MS + 1500));
    expect(claims(need.id)).toEqual([expect.objectContaining({ identity: 'alpha' })]);
    expect(store.needs.require(need.id).status).not.toBe('resolved');
    expect(lines.some((l) => l.msg === 'round-table loop stopped')).toBe(false);
  });
});
