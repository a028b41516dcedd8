import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, describe, expect, it } from 'vitest';
import { EventLog } from '../../../src/store/event-log.js';
import { DatabaseError, MlosError, Store, transitionRows } from '../../../src/store/index.js';
import { MIGRATIONS, SCHEMA_VERSION } from '../../../src/store/migrations/index.js';
import { makeTempDir, openRaw, openTestStore, snapshot, thrown } from '../../helpers/store.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

function tempPath(name = 'mlos.db'): string {
  const tmp = makeTempDir();
  cleanups.push(tmp.cleanup);
  return join(tmp.dir, name);
}

const schemaOf = (db: Database.Database) =>
  db.prepare('SELECT type, name, sql FROM sqlite_schema ORDER BY type, name').all();

describe('opening a database', () => {
  it('creates the file and its folders, in WAL mode, migrated to the current schema', () => {
    const path = join(tempPath(), '..', 'nested', 'deeper', 'mlos.db');
    const { store } = openTestStore(path);
    store.close();
    expect(existsSync(path)).toBe(true);
    const raw = new Database(path, { readonly: true });
    cleanups.push(() => raw.close());
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
  });

  it('is a no-op the second time: same schema, same rows, same chain', () => {
    const path = tempPath();
    const { store } = openTestStore(path);
    store.needs.create({ title: 'survives reopening', tags: ['kernel'] });
    store.close();
    const raw = openRaw(path);
    cleanups.push(() => raw.close());
    const before = { schema: schemaOf(raw), rows: snapshot(raw) };
    for (let i = 0; i < 2; i++) {
      const { store: again } = openTestStore(path);
      expect(again.events.verify()).toMatchObject({ ok: true, checked: 1 });
      expect(again.needs.list().map((n) => n.title)).toEqual(['survives reopening']);
      again.close();
    }
    expect({ schema: schemaOf(raw), rows: snapshot(raw) }).toEqual(before);
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION);
  });

  it('restores the transition table from the code when the copy in the database drifted', () => {
    const path = tempPath();
    openTestStore(path).store.close();
    const raw = openRaw(path);
    cleanups.push(() => raw.close());
    raw.exec(
      "DELETE FROM transitions WHERE kind = 'need' AND from_status = 'open' AND to_status = 'resolved'",
    );
    raw.exec("INSERT INTO transitions VALUES ('need', 'resolved', 'active')");
    const { store } = openTestStore(path);
    cleanups.push(() => store.close());
    const rows = raw
      .prepare<[], { kind: string; from: string; to: string }>(
        'SELECT kind, from_status AS "from", to_status AS "to" FROM transitions',
      )
      .all();
    const key = (r: { kind: string; from: string; to: string }) => `${r.kind}:${r.from}:${r.to}`;
    expect(rows.map(key).sort()).toEqual(transitionRows().map(key).sort());
    const need = store.needs.create({ title: 'x' });
    expect(store.needs.resolve(need.id).status).toBe('resolved');
  });

  it('refuses a database written by a newer schema, saying so, and leaves it untouched', () => {
    const path = tempPath();
    const { store } = openTestStore(path);
    store.needs.create({ title: 'from the future' });
    store.close();
    const raw = openRaw(path);
    raw.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    const before = { schema: schemaOf(raw), rows: snapshot(raw) };
    for (const readonly of [false, true]) {
      const error = thrown(() => Store.open(path, { readonly }));
      expect(error).toBeInstanceOf(DatabaseError);
      expect(error).toBeInstanceOf(MlosError);
      expect((error as DatabaseError).code).toBe('db_newer_schema');
      expect(error.message).toBe(
        `database ${path} has schema version ${SCHEMA_VERSION + 1}, newer than this mlos (${SCHEMA_VERSION}): upgrade mlos to open it`,
      );
    }
    expect({ schema: schemaOf(raw), rows: snapshot(raw) }).toEqual(before);
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION + 1);
    raw.close();
  });

  it('refuses a file that is not a database with a DatabaseError naming it', async () => {
    const path = tempPath('not-a.db');
    const { writeFileSync } = await import('node:fs');
    writeFileSync(path, 'this is a text file, not SQLite '.repeat(64));
    const error = thrown(() => Store.open(path));
    expect(error).toBeInstanceOf(DatabaseError);
    expect(error).toMatchObject({ code: 'db_open' });
    expect(error.message).toBe(`cannot open database ${path}: file is not a database`);
  });
});

describe.skipIf(SCHEMA_VERSION < 2)('upgrading an older database', () => {
  /** A database at schema `version` (by default the previous one), with one need, as an older mlos would leave it. */
  function olderDatabase(version = SCHEMA_VERSION - 1): string {
    const path = tempPath();
    const raw = openRaw(path);
    raw.transaction(() => {
      for (const m of MIGRATIONS.slice(0, version)) raw.exec(m.sql);
      const insert = raw.prepare('INSERT INTO transitions VALUES (@kind, @from, @to)');
      for (const row of transitionRows()) insert.run(row);
      raw
        .prepare(
          "INSERT INTO needs (id, title, created_at, updated_at) VALUES ('need_01JAAAAAAAAAAAAAAAAAAAAAAA', 'old', 0, 0)",
        )
        .run();
      raw.pragma(`user_version = ${version}`);
    })();
    raw.close();
    return path;
  }

  it('applies the missing migrations and keeps the data', () => {
    const path = olderDatabase();
    const seen: [number, number][] = [];
    const store = Store.open(path, { beforeMigrate: (_db, from, to) => seen.push([from, to]) });
    cleanups.push(() => store.close());
    expect(seen).toEqual([[SCHEMA_VERSION - 1, SCHEMA_VERSION]]);
    expect(store.needs.list().map((n) => n.title)).toEqual(['old']);
  });

  it('sums the budget entries an mlos before migration 4 wrote into the day and run totals', () => {
    const path = olderDatabase(3);
    const raw = openRaw(path);
    raw.transaction(() => {
      raw
        .prepare("INSERT INTO identity_pins (name, hash, content, pinned_at) VALUES ('janitor', ?, 'j', 0)")
        .run('a'.repeat(64));
      raw.prepare("INSERT INTO runs (id, started_at) VALUES ('run_old', 0)").run();
      raw
        .prepare(
          "INSERT INTO tasks (id, need_id, identity, status, attempt, created_at) VALUES ('task_01JAAAAAAAAAAAAAAAAAAAAAAA', 'need_01JAAAAAAAAAAAAAAAAAAAAAAA', 'janitor', 'queued', 1, 0)",
        )
        .run();
      const entry = raw.prepare(
        `INSERT INTO budget_entries (task_id, identity, day, run_id, state, reserved_tokens, used_tokens, created_at)
         VALUES ('task_01JAAAAAAAAAAAAAAAAAAAAAAA', 'janitor', ?, ?, ?, ?, ?, 0)`,
      );
      entry.run('2026-01-01', 'run_old', 'reserved', 500, 0);
      entry.run('2026-01-01', 'run_old', 'settled', 900, 120);
      entry.run('2026-01-01', null, 'released', 300, 0);
      entry.run('2026-01-02', 'run_old', 'settled', 100, 40);
    })();
    raw.close();
    const store = Store.open(path);
    cleanups.push(() => store.close());
    expect(store.budgets.used('day', '2026-01-01', 'janitor')).toBe(500 + 120);
    expect(store.budgets.used('day', '2026-01-02', 'janitor')).toBe(40);
    expect(store.budgets.used('run', 'run_old')).toBe(500 + 120 + 40);
  });

  it('rebuilds the event log of a database before migration 8 without its hash index, keeping the chain', () => {
    const path = olderDatabase(7);
    const need = 'need_01JAAAAAAAAAAAAAAAAAAAAAAA';
    const raw = openRaw(path);
    raw.transaction(() => {
      const log = new EventLog(raw);
      log.append('cli', 1, { kind: 'need.created', entity: need, needId: need, payload: { title: 'old' } });
      log.append('cli', 2, {
        kind: 'need.updated',
        entity: need,
        needId: need,
        payload: { tags: ['b'], previous: { tags: ['a'], scope: null } },
      });
    })();
    raw.close();
    const store = Store.open(path);
    cleanups.push(() => store.close());
    const check = openRaw(path);
    cleanups.push(() => check.close());
    expect(store.events.verify().ok).toBe(true);
    expect(store.events.since(0, 10).map((e) => [e.seq, e.kind])).toEqual([
      [1, 'need.created'],
      [2, 'need.updated'],
    ]);
    expect(
      check.prepare("SELECT name FROM sqlite_schema WHERE tbl_name = 'events' ORDER BY name").pluck().all(),
    ).toEqual([
      'events',
      'events_by_edge_target',
      'events_by_need',
      'events_by_workspace',
      'events_chain',
      'events_no_delete',
      'events_no_update',
      'need_moves_file',
    ]);
    expect(check.prepare("SELECT count(*) FROM sqlite_sequence WHERE name = 'events'").pluck().get()).toBe(0);
    // The retag filed before the upgrade is still there, its reference whole, and the trigger files new ones.
    expect(check.pragma('foreign_key_check')).toEqual([]);
    store.needs.update(need, { tags: ['c'] });
    expect(check.prepare('SELECT key, seq FROM need_moves ORDER BY seq, key').all()).toEqual([
      { key: 'tag:a', seq: 2 },
      // The raw need had no tags, in the default scope.
      { key: 'scope:default', seq: 3 },
    ]);
    expect(() => check.prepare('DELETE FROM events WHERE seq = 1').run()).toThrow(
      'events are append-only: DELETE of event 1 refused',
    );
    expect(store.events.verify().ok).toBe(true);
  });

  it('applies nothing when refused before migrating: the upgrade is one transaction', () => {
    const path = olderDatabase();
    const raw = openRaw(path);
    cleanups.push(() => raw.close());
    const before = { schema: schemaOf(raw), rows: snapshot(raw) };
    const error = thrown(() =>
      Store.open(path, {
        beforeMigrate: () => {
          throw new DatabaseError('supervisor_alive', 'a supervisor of an older mlos is running');
        },
      }),
    );
    expect(error.message).toBe('a supervisor of an older mlos is running');
    expect({ schema: schemaOf(raw), rows: snapshot(raw) }).toEqual(before);
    expect(raw.pragma('user_version', { simple: true })).toBe(SCHEMA_VERSION - 1);
  });
});

describe('migrating under a running supervisor', () => {
  it('is refused, naming the holder, and leaves the schema as it was', () => {
    const dir = mkdtempSync(join(tmpdir(), 'mlos-mig-'));
    try {
      const path = join(dir, 'old.db');
      const raw = new Database(path);
      raw.exec(MIGRATIONS[0]!.sql);
      raw
        .prepare(
          'INSERT INTO supervisor_lock (id, pid, host, started_at, heartbeat_at) VALUES (1, 4242, ?, ?, ?)',
        )
        .run('host-a', Date.now(), Date.now());
      raw.pragma('user_version = 1');
      raw.close();
      expect(() => Store.open(path)).toThrow(
        /its supervisor is running \(pid 4242 on host-a\): stop that mlos run first/,
      );
      const check = new Database(path);
      expect(check.pragma('user_version', { simple: true })).toBe(1);
      check.prepare('UPDATE supervisor_lock SET heartbeat_at = 0').run();
      check.close();
      Store.open(path).close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
