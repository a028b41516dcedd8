import type { Statement } from 'better-sqlite3';
import type { Db } from './database.js';
import { sha256 } from './hash.js';
import type { StoredEvent } from './types.js';

export const GENESIS_HASH = '0'.repeat(64);

/** An event before it is chained: what happened, to what, by whom. */
export interface EventInput {
  readonly kind: string;
  readonly entity: string;
  readonly needId?: string | null;
  readonly payload: Record<string, unknown>;
}

interface EventRow {
  seq: number;
  at: number;
  actor: string;
  kind: string;
  entity: string;
  need_id: string | null;
  payload: string;
  prev_hash: string;
  hash: string;
}

/**
 * RFC 8785 (JCS) canonical JSON: object keys sorted by UTF-16 code units, numbers and strings
 * serialized as ECMAScript does, no whitespace. The same value always gives the same bytes.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError(`cannot encode ${value} as JSON`);
    return JSON.stringify(value);
  }
  if (Array.isArray(value))
    return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`cannot encode a ${typeof value} as JSON`);
}

/** The hash of one event: sha256 over the canonical encoding of every field but the hash. */
export function eventHash(e: Omit<StoredEvent, 'hash'>): string {
  return hashWithPayload(e, canonicalJson(e.payload));
}

/**
 * `eventHash` given the payload's canonical JSON, which the append path has already built: the
 * envelope's keys are written in their canonical (sorted) order around it, so the bytes are the
 * ones `canonicalJson` gives for the whole event.
 */
function hashWithPayload(e: Omit<StoredEvent, 'hash' | 'payload'>, payloadJson: string): string {
  const body =
    `{"actor":${JSON.stringify(e.actor)},"at":${canonicalJson(e.at)},"entity":${JSON.stringify(e.entity)}` +
    `,"kind":${JSON.stringify(e.kind)},"needId":${JSON.stringify(e.needId)},"payload":${payloadJson}` +
    `,"prevHash":${JSON.stringify(e.prevHash)},"seq":${canonicalJson(e.seq)}}`;
  return sha256(body);
}

/**
 * The append path's and the hot reads' statements (the bus publisher tails `since` every tick,
 * every context pack reads `forNeed`), prepared once per connection: a log is built per store
 * handle, and preparing costs more than running these.
 */
const logStatements = new WeakMap<
  Db,
  {
    head: Statement<[], { seq: number; hash: string }>;
    insert: Statement<unknown[], unknown>;
    since: Statement<[number, number], EventRow>;
    forNeed: Statement<[string, number], EventRow>;
  }
>();

/**
 * The append-only, hash-chained event log. `append` must run inside a write transaction: it
 * reads the chain head under the write lock, so concurrent writers never fork the chain.
 */
export class EventLog {
  readonly #head;
  readonly #insert;
  readonly #since;
  readonly #forNeed;
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
    let statements = logStatements.get(db);
    if (!statements) {
      statements = {
        head: db.prepare<[], { seq: number; hash: string }>(
          'SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1',
        ),
        insert: db.prepare(
          `INSERT INTO events (seq, at, actor, kind, entity, need_id, payload, prev_hash, hash)
           VALUES (@seq, @at, @actor, @kind, @entity, @needId, @payload, @prevHash, @hash)`,
        ),
        since: db.prepare('SELECT * FROM events WHERE seq > ? ORDER BY seq LIMIT ?'),
        forNeed: db.prepare('SELECT * FROM events WHERE need_id = ? ORDER BY seq DESC LIMIT ?'),
      };
      logStatements.set(db, statements);
    }
    this.#head = statements.head;
    this.#insert = statements.insert;
    this.#since = statements.since;
    this.#forNeed = statements.forNeed;
  }

  append(actor: string, at: number, input: EventInput): StoredEvent {
    if (!this.#db.inTransaction) throw new Error('EventLog.append must run inside a write transaction');
    const head = this.#head.get();
    const payloadJson = canonicalJson(input.payload);
    const unhashed = {
      seq: (head?.seq ?? 0) + 1,
      at,
      actor,
      kind: input.kind,
      entity: input.entity,
      needId: input.needId ?? null,
      prevHash: head?.hash ?? GENESIS_HASH,
    };
    const hash = hashWithPayload(unhashed, payloadJson);
    this.#insert.run({ ...unhashed, payload: payloadJson, hash });
    // The stored event carries the payload as it reads back from the log (undefined dropped…).
    const event: StoredEvent = {
      ...unhashed,
      payload: JSON.parse(payloadJson) as StoredEvent['payload'],
      hash,
    };
    return event;
  }

  headSeq(): number {
    return this.#head.get()?.seq ?? 0;
  }

  /** Events after `afterSeq`, in order, at most `limit`. */
  since(afterSeq: number, limit = 1000): StoredEvent[] {
    return this.#since.all(afterSeq, limit).map(toEvent);
  }

  /** How many needs an event of `kind` names after `afterSeq` (each need once): one pass over those events. */
  needsWithEventSince(afterSeq: number, kind: string): number {
    return (
      this.#db
        .prepare<[number, string], number>(
          'SELECT count(DISTINCT need_id) FROM events WHERE seq > ? AND kind = ?',
        )
        .pluck()
        .get(afterSeq, kind) ?? 0
    );
  }

  /** The latest events about one need, newest first. */
  forNeed(needId: string, limit = 20): StoredEvent[] {
    return this.#forNeed.all(needId, limit).map(toEvent);
  }

  /** The seq of the latest event about each of the given needs (0 when none). */
  lastSeqByNeed(): Map<string, number> {
    const rows = this.#db
      .prepare<[], { need_id: string; seq: number }>(
        'SELECT need_id, max(seq) AS seq FROM events WHERE need_id IS NOT NULL GROUP BY need_id',
      )
      .all();
    return new Map(rows.map((r) => [r.need_id, r.seq]));
  }

  /**
   * Walks the whole chain and checks every link and every hash.
   * Returns the first broken seq and why, or ok with the number of events checked.
   */
  verify(): VerifyResult {
    let prevHash = GENESIS_HASH;
    let expectedSeq = 1;
    let checked = 0;
    const rows = this.#db.prepare<[], EventRow>('SELECT * FROM events ORDER BY seq').iterate();
    for (const row of rows) {
      const event = toEvent(row);
      if (event.seq !== expectedSeq) return broken(expectedSeq, `event ${expectedSeq} is missing`, checked);
      if (event.prevHash !== prevHash)
        return broken(event.seq, 'prev_hash does not match the previous event', checked);
      if (eventHash(event) !== event.hash)
        return broken(event.seq, 'hash does not match the event contents', checked);
      prevHash = event.hash;
      expectedSeq++;
      checked++;
    }
    return { ok: true, checked, headHash: prevHash };
  }
}

export type VerifyResult =
  | { readonly ok: true; readonly checked: number; readonly headHash: string }
  | { readonly ok: false; readonly checked: number; readonly brokenSeq: number; readonly reason: string };

function broken(seq: number, reason: string, checked: number): VerifyResult {
  return { ok: false, checked, brokenSeq: seq, reason };
}

function toEvent(row: EventRow): StoredEvent {
  let payload: unknown;
  try {
    payload = JSON.parse(row.payload);
  } catch {
    payload = row.payload;
  }
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    kind: row.kind,
    entity: row.entity,
    needId: row.need_id,
    payload,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
