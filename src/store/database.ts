import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { DatabaseError, MlosError } from './errors.js';
import { MIGRATIONS, SCHEMA_VERSION } from './migrations/index.js';
import { transitionRows } from './transitions.js';

export type Db = Database.Database;

export interface OpenDatabaseOptions {
  /** `synchronous = FULL` instead of NORMAL: every commit survives a power cut, at some speed. */
  readonly durable?: boolean;
  /** How long a writer waits for the write lock before failing, in ms. */
  readonly busyTimeoutMs?: number;
  readonly readonly?: boolean;
  /**
   * Called before migrations are applied to a database that already has data; may throw to
   * refuse (a live supervisor of an older build, for example).
   */
  readonly beforeMigrate?: (db: Db, from: number, to: number) => void;
}

/**
 * Opens (and creates, and migrates) an mlos database. WAL, foreign keys on, a busy timeout so
 * concurrent writers queue instead of failing. A database written by a newer schema is refused.
 */
export function openDatabase(path: string, options: OpenDatabaseOptions = {}): Db {
  if (path !== ':memory:' && !options.readonly) mkdirSync(dirname(path), { recursive: true });
  let db: Db;
  try {
    db = new Database(path, {
      timeout: options.busyTimeoutMs ?? 30_000,
      readonly: options.readonly ?? false,
    });
  } catch (cause) {
    throw new DatabaseError('db_open', `cannot open database ${path}: ${(cause as Error).message}`, {
      cause,
    });
  }
  try {
    if (!options.readonly) enableWal(db, options.busyTimeoutMs ?? 30_000);
    db.pragma(`synchronous = ${options.durable ? 'FULL' : 'NORMAL'}`);
    db.pragma('foreign_keys = ON');
    migrate(db, path, options);
    return db;
  } catch (error) {
    db.close();
    if (error instanceof MlosError) throw error;
    // SQLite opens lazily: a file that is not a database only fails at the first statement.
    throw new DatabaseError('db_open', `cannot open database ${path}: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Switches to WAL. While another process is creating the same file, this pragma can fail with
 * SQLITE_BUSY without waiting on the busy handler, so it is retried here within the busy timeout.
 */
function enableWal(db: Db, timeoutMs: number): void {
  const deadline = Date.now() + timeoutMs;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let wait = 5; ; wait = Math.min(wait * 2, 200)) {
    try {
      db.pragma('journal_mode = WAL');
      return;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (code !== 'SQLITE_BUSY' || Date.now() >= deadline) throw error;
      Atomics.wait(pause, 0, 0, wait);
    }
  }
}

function migrate(db: Db, path: string, options: OpenDatabaseOptions): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > SCHEMA_VERSION) {
    throw new DatabaseError(
      'db_newer_schema',
      `database ${path} has schema version ${current}, newer than this mlos (${SCHEMA_VERSION}): upgrade mlos to open it`,
    );
  }
  if (options.readonly) return;
  if (current === SCHEMA_VERSION) {
    if (!transitionsMatch(db)) db.transaction(() => syncTransitions(db)).immediate();
    return;
  }
  const apply = db.transaction(() => {
    // Re-read inside the write lock: another process may have migrated meanwhile.
    const from = db.pragma('user_version', { simple: true }) as number;
    if (from >= SCHEMA_VERSION) return;
    if (from > 0) {
      refuseWhileSupervised(db, path, from);
      options.beforeMigrate?.(db, from, SCHEMA_VERSION);
    }
    // Foreign keys are off while migrating (a rebuilt table is dropped and renamed while others
    // still reference it): the upgrade commits only if it broke no reference. (References broken
    // before it, say by hand with foreign keys off, are not its to refuse.)
    const brokenBefore = from > 0 ? brokenReferences(db) : 0;
    for (const m of MIGRATIONS) if (m.version > from) db.exec(m.sql);
    const broken = brokenReferences(db);
    if (broken > brokenBefore) {
      throw new DatabaseError(
        'db_migration',
        `migrating ${path} to schema ${SCHEMA_VERSION} would break ${broken - brokenBefore} references between rows (PRAGMA foreign_key_check lists them): the database is unchanged; report this with the output of mlos audit verify`,
      );
    }
    syncTransitions(db);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  });
  // Only settable outside a transaction; restored whatever happens.
  db.pragma('foreign_keys = OFF');
  try {
    apply.immediate();
  } finally {
    db.pragma('foreign_keys = ON');
  }
}

/** Rows whose foreign key names no row (what PRAGMA foreign_key_check lists). */
function brokenReferences(db: Db): number {
  return (db.pragma('foreign_key_check') as unknown[]).length;
}

/** A supervisor heartbeat younger than this means an `mlos run` is alive on the database. */
export const SUPERVISOR_ALIVE_MS = 15_000;

/**
 * A newer mlos must not change the schema under a running supervisor of an older one: it refuses
 * and names the holder. (The lock table exists from migration 1 on.)
 */
function refuseWhileSupervised(db: Db, path: string, from: number): void {
  const holder = db
    .prepare<[], { pid: number; host: string; heartbeat_at: number }>(
      'SELECT pid, host, heartbeat_at FROM supervisor_lock WHERE id = 1',
    )
    .get();
  if (holder && Date.now() - holder.heartbeat_at < SUPERVISOR_ALIVE_MS) {
    throw new DatabaseError(
      'db_supervised',
      `database ${path} (schema ${from}) needs migrating to ${SCHEMA_VERSION}, but its supervisor is running (pid ${holder.pid} on ${holder.host}): stop that mlos run first`,
    );
  }
}

function transitionsMatch(db: Db): boolean {
  const key = (r: { kind: string; from: string; to: string }) => `${r.kind}:${r.from}:${r.to}`;
  const stored = db
    .prepare<[], { kind: string; from: string; to: string }>(
      'SELECT kind, from_status AS "from", to_status AS "to" FROM transitions',
    )
    .all()
    .map(key)
    .sort();
  const wanted = transitionRows().map(key).sort();
  return stored.join('|') === wanted.join('|');
}

/** The database's transition table is a copy of the one in code, refreshed whenever they differ. */
function syncTransitions(db: Db): void {
  db.prepare('DELETE FROM transitions').run();
  const insert = db.prepare(
    'INSERT INTO transitions (kind, from_status, to_status) VALUES (@kind, @from, @to)',
  );
  for (const row of transitionRows()) insert.run(row);
}
