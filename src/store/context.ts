import type { Statement } from 'better-sqlite3';
import type { Clock } from './clock.js';
import type { Db } from './database.js';
import { ConflictError, IllegalTransitionError, MlosError, UserError } from './errors.js';
import type { EventInput, EventLog } from './event-log.js';
import type { IdGenerator } from './random.js';
import type { StoredEvent } from './types.js';

/** What every repository shares: the connection, the ports, who is acting, and the event log. */
/** Prepared statements per connection, shared by every context (actor) over it. */
const statementCaches = new WeakMap<Db, Map<string, Statement<unknown[], unknown>>>();
/** Statement sets built once per connection (see `StoreContext.once`). */
const onceCaches = new WeakMap<Db, Map<(db: Db) => unknown, unknown>>();
/** The fence checked in the connection's open write transaction (see `StoreContext.fenced`). */
const openFences = new WeakMap<Db, { readonly needId: string; readonly token: number }>();

/**
 * One transaction function per connection, whose argument is the body to run. better-sqlite3's
 * `db.transaction(fn)` builds four wrapper functions and their properties on every call; writes
 * are frequent enough (dozens per agent task, most of them nested) that building them per write
 * cost more than the savepoints themselves.
 */
type Runner = ReturnType<Db['transaction']> & { immediate: (body: () => unknown) => unknown };
const runners = new WeakMap<Db, Runner>();

function runnerFor(db: Db): Runner {
  let runner = runners.get(db);
  if (!runner) {
    runner = db.transaction((body: () => unknown) => body()) as Runner;
    runners.set(db, runner);
  }
  return runner;
}

/** The payload field that records the fencing token a write of the lease holder was checked under. */
export const FENCE_FIELD = 'fence';

export class StoreContext {
  readonly #statements: Map<string, Statement<unknown[], unknown>>;
  readonly db: Db;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly actor: string;
  readonly log: EventLog;

  constructor(db: Db, clock: Clock, ids: IdGenerator, actor: string, log: EventLog) {
    this.db = db;
    this.clock = clock;
    this.ids = ids;
    this.actor = actor;
    this.log = log;
    let cache = statementCaches.get(db);
    if (!cache) {
      cache = new Map();
      statementCaches.set(db, cache);
    }
    this.#statements = cache;
  }

  /**
   * Runs `fn` in a write transaction opened with BEGIN IMMEDIATE, so the write lock is taken
   * before anything is read and concurrent writers queue instead of failing. Nested calls
   * become savepoints of the outer transaction. A SQLite constraint failure is translated into
   * the error a caller can act on; the transaction is rolled back either way.
   */
  write<T>(fn: () => T): T {
    const txn = runnerFor(this.db);
    const outer = !this.db.inTransaction;
    try {
      return (outer ? txn.immediate(fn) : txn(fn)) as T;
    } catch (error) {
      throw translateSqliteError(error);
    } finally {
      if (outer) openFences.delete(this.db);
    }
  }

  /**
   * The current transaction writes under the lease of `needId` with `token` (its fence was just
   * checked): every event it appends about that need records the token in its payload, so the
   * log itself shows that each of the holder's writes carried the current fencing token.
   */
  fenced(needId: string, token: number): void {
    if (this.db.inTransaction) openFences.set(this.db, { needId, token });
  }

  /**
   * The lease of `needId` went to a new holder in this transaction: what follows is not under the
   * old fence. (A release keeps it: the holder's own last events follow the release.)
   */
  unfenced(needId: string): void {
    if (openFences.get(this.db)?.needId === needId) openFences.delete(this.db);
  }

  /**
   * A prepared statement, cached by its SQL: preparing is a good part of a small query's cost.
   * Its pluck mode is reset, so a caller that wants plucked rows asks for it each time.
   */
  prepare<P extends unknown[] | Record<string, unknown> = unknown[], R = unknown>(
    sql: string,
  ): Statement<P, R> {
    let statement = this.#statements.get(sql);
    if (!statement) {
      statement = this.db.prepare(sql);
      this.#statements.set(sql, statement);
    }
    if (statement.reader) statement.pluck(false);
    return statement as unknown as Statement<P, R>;
  }

  /**
   * What `build` returns for this connection, built on first use and shared by every context over
   * it: for a repository's own prepared statements, whose modes (pluck…) are set once there. Store
   * handles are made per actor (one per agent task), so building them must not prepare anything.
   */
  once<T>(build: (db: Db) => T): T {
    let cache = onceCaches.get(this.db);
    if (!cache) {
      cache = new Map();
      onceCaches.set(this.db, cache);
    }
    if (!cache.has(build)) cache.set(build, build(this.db));
    return cache.get(build) as T;
  }

  /** Appends one event in the current transaction, stamped with this context's actor and clock. */
  emit(input: EventInput): StoredEvent {
    const fence = openFences.get(this.db);
    const stamped =
      fence && input.needId === fence.needId
        ? { ...input, payload: { ...input.payload, [FENCE_FIELD]: fence.token } }
        : input;
    return this.log.append(this.actor, this.clock.now(), stamped);
  }

  now(): number {
    return this.clock.now();
  }
}

/** SQLite errors raised by CHECKs and triggers become typed mlos errors with the same text. */
export function translateSqliteError(error: unknown): unknown {
  if (error instanceof MlosError || !(error instanceof Error)) return error;
  const code = (error as { code?: unknown }).code;
  if (typeof code !== 'string' || !code.startsWith('SQLITE_CONSTRAINT')) return error;
  const transition = /^illegal transition of (\S+ \S+): (\S+) → (\S+)$/.exec(error.message);
  if (transition) return new IllegalTransitionError(transition[1]!, transition[2]!, transition[3]!);
  return new UserError(`the database refused the write: ${error.message}`, {
    code: 'constraint',
    cause: error,
  });
}

/** Checks an optimistic-concurrency version. */
export function checkVersion(entity: string, expected: number | undefined, current: number): void {
  if (expected !== undefined && expected !== current) throw new ConflictError(entity, expected, current);
}
