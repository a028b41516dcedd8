import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { createSeededPrng, ManualClock, Store, type StoreOptions } from '../../src/store/index.js';

export type RawDb = Database.Database;

/** A fresh folder under the system temp dir; `cleanup` removes it and everything in it. */
export function makeTempDir(prefix = 'mlos-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A store on a manual clock and a seeded PRNG, so ids and times are reproducible. */
export function openTestStore(
  path = ':memory:',
  options: StoreOptions & { seed?: number } = {},
): { store: Store; clock: ManualClock } {
  const { seed = 1, ...rest } = options;
  const clock = rest.clock instanceof ManualClock ? rest.clock : new ManualClock();
  const store = Store.open(path, { prng: createSeededPrng(seed), ...rest, clock });
  return { store, clock };
}

/**
 * A raw better-sqlite3 connection with the pragmas the store uses, for writes that go around
 * the repository API on purpose.
 */
export function openRaw(path: string): RawDb {
  const db = new Database(path, { timeout: 30_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  return db;
}

/** Every row of every table, in a stable order: two equal snapshots mean an unchanged database. */
export function snapshot(db: RawDb): string {
  const tables = db
    .prepare<[], string>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .pluck()
    .all();
  const dump: Record<string, unknown[]> = {};
  for (const table of tables) {
    dump[table] = db.prepare(`SELECT * FROM "${table}" ORDER BY 1, 2`).all();
  }
  return JSON.stringify(dump);
}

/** Row counts per table and the event head, the cheap "nothing changed" check. */
export function counts(db: RawDb): Record<string, number> {
  const tables = db
    .prepare<[], string>(
      "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .pluck()
    .all();
  const out: Record<string, number> = {};
  for (const table of tables) {
    out[table] = db.prepare<[], number>(`SELECT count(*) FROM "${table}"`).pluck().get() ?? 0;
  }
  return out;
}

/** The error a function throws, for assertions on its class, code and message. */
export function thrown(fn: () => unknown): Error {
  try {
    fn();
  } catch (error) {
    if (error instanceof Error) return error;
    throw new Error(`expected an Error, got ${String(error)}`);
  }
  throw new Error('expected the call to throw, but it returned');
}
