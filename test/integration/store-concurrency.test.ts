/**
 * Acceptance: several processes writing one database at once. Every write transaction is
 * BEGIN IMMEDIATE and reads the chain head under the write lock, so no write fails with
 * SQLITE_BUSY and the hash chain never forks.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runWriters, type WriterReport } from '../helpers/processes.js';
import { makeTempDir, openRaw, openTestStore } from '../helpers/store.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function temp() {
  const tmp = makeTempDir('mlos-concurrency-');
  cleanups.push(tmp.cleanup);
  return { db: join(tmp.dir, 'mlos.db'), go: join(tmp.dir, 'go') };
}

function checkDatabase(db: string, reports: WriterReport[]) {
  for (const r of reports) {
    expect(r.openError, `${r.actor} could not open the database`).toBeNull();
    expect(r.errors, `${r.actor} had failed writes`).toEqual([]);
    expect(r.failed).toBe(0);
    expect(r.created).toBeGreaterThan(0);
  }
  const { store } = openTestStore(db);
  cleanups.push(() => store.close());
  const created = reports.reduce((sum, r) => sum + r.created, 0);
  const resolved = reports.reduce((sum, r) => sum + r.resolved, 0);
  expect(store.needs.list().length).toBe(created);
  expect(store.needs.list({ status: ['resolved'] }).length).toBe(resolved);
  expect(store.events.verify()).toEqual({
    ok: true,
    checked: created + resolved,
    headHash: expect.any(String),
  });

  const raw = openRaw(db);
  cleanups.push(() => raw.close());
  const byActor = Object.fromEntries(
    raw
      .prepare<[], { actor: string; n: number }>('SELECT actor, count(*) AS n FROM events GROUP BY actor')
      .all()
      .map((r) => [r.actor, r.n]),
  );
  expect(byActor).toEqual(Object.fromEntries(reports.map((r) => [r.actor, r.created + r.resolved])));
  // The writers really ran at the same time: their events interleave in the chain.
  const actors = raw.prepare<[], string>('SELECT actor FROM events ORDER BY seq').pluck().all();
  const switches = actors.filter((a, i) => i > 0 && a !== actors[i - 1]).length;
  expect(switches).toBeGreaterThan(reports.length);
}

describe('several processes writing one database', () => {
  it('two writers adding needs for three seconds: no write fails and the chain verifies', async () => {
    const { db, go } = temp();
    openTestStore(db).store.close();
    const reports = await runWriters(db, go, ['alpha', 'beta'], 3000);
    checkDatabase(db, reports);
  });

  it('three writers that all create the database at the same moment agree on one schema and one chain', async () => {
    const { db, go } = temp();
    const reports = await runWriters(db, go, ['alpha', 'beta', 'gamma'], 2000, { openAfterGo: true });
    checkDatabase(db, reports);
  });
});
