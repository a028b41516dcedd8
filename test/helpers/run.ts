import { type ChildProcess, spawn } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';
import { identityHash } from '../../src/kernel/identity/index.js';
import { Store } from '../../src/store/index.js';
import { BIN } from './cli.js';
import { IDENTITIES_DIR } from './guard.js';

export const WORK_SCRIPT = join(import.meta.dirname, '../fixtures/scripts/work.yaml');
const TAGS = [['kernel'], ['context'], ['cleanup']];

/**
 * Seeds `count` needs in chains of five (each waits for the previous one), tags spread over the
 * three example identities. Returns their ids.
 */
export function seedWork(dbPath: string, count: number): string[] {
  const store = Store.open(dbPath);
  try {
    return store.transaction(() => {
      const ids: string[] = [];
      for (let i = 0; i < count; i++) {
        const dependsOn = i % 5 === 0 ? [] : [ids[i - 1]!];
        ids.push(store.needs.create({ title: `Work item ${i}`, tags: TAGS[i % 3]!, dependsOn }).id);
      }
      return ids;
    });
  } finally {
    store.close();
  }
}

export interface RunningProcess {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exited: Promise<number | null>;
}

/** Starts the built CLI (`mlos …`) as a child process in `cwd`, collecting its output. */
export function spawnMlos(
  args: readonly string[],
  cwd: string,
  env: Record<string, string> = {},
): RunningProcess {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr!.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, output: () => out, exited };
}

/** Polls `check` until it returns true or `timeoutMs` passes (then throws with `what`). */
export async function waitFor(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** Counts from the database (opened read-write briefly; WAL lets the run go on). */
export function census(dbPath: string) {
  const store = Store.open(dbPath);
  try {
    const counts = Object.fromEntries(store.needs.counts().map((c) => [c.status, c.count]));
    const resolvedEvents = new Map<string, number>();
    let seq = 0;
    for (;;) {
      const batch = store.events.since(seq, 5000);
      if (batch.length === 0) break;
      for (const e of batch) {
        if (e.kind === 'need.resolved' && e.needId)
          resolvedEvents.set(e.needId, (resolvedEvents.get(e.needId) ?? 0) + 1);
      }
      seq = batch[batch.length - 1]!.seq;
    }
    const succeededResolving = new Map<string, number>();
    for (const t of store.tasks.listByStatus(['succeeded'], 1_000_000)) {
      if (t.outcome === 'resolved')
        succeededResolving.set(t.needId, (succeededResolving.get(t.needId) ?? 0) + 1);
    }
    return {
      resolved: counts['resolved'] ?? 0,
      open: counts['open'] ?? 0,
      active: counts['active'] ?? 0,
      resolvedEvents,
      succeededResolving,
      lost: store.tasks.listByStatus(['lost'], 1_000_000).length,
      verified: store.events.verify().ok,
    };
  } finally {
    store.close();
  }
}

/** Pins the repository's example identities into a database (what `mlos run` would do). */
export function pinExamples(dbPath: string, readFile: (p: string) => string): void {
  const store = Store.open(dbPath);
  try {
    for (const name of ['architect', 'context-manager', 'janitor']) {
      const bytes = readFile(join(IDENTITIES_DIR, `${name}.md`));
      store.identities.pin(name, identityHash(bytes), bytes);
    }
  } finally {
    store.close();
  }
}

/** Every need resolved exactly once, as the event log and the tasks prove; nothing left active. */
export function expectEachResolvedOnce(dbPath: string, ids: readonly string[]) {
  const c = census(dbPath);
  expect(c.resolved).toBe(ids.length);
  expect(c.active).toBe(0);
  for (const id of ids) {
    expect(c.resolvedEvents.get(id), id).toBe(1);
    expect(c.succeededResolving.get(id), id).toBe(1);
  }
  expect(c.verified).toBe(true);
  return c;
}

/** Copies the example identities into `dir`/identities with daily budgets large enough for hundreds of sessions. */
export function copyIdentitiesWithLargeBudgets(dir: string): void {
  const target = join(dir, 'identities');
  cpSync(IDENTITIES_DIR, target, { recursive: true });
  for (const file of readdirSync(target)) {
    const path = join(target, file);
    writeFileSync(path, readFileSync(path, 'utf8').replace(/per_day: \d+/, 'per_day: 500000000'));
  }
}
