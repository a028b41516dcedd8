/**
 * Migration 8: the event log without a unique index on `hash`, and without AUTOINCREMENT.
 *
 * Every event hash is random, so the unique index took each append to a random page of a tree as
 * large as the log: at 20,000 events an append cost ~60 µs against ~20 µs without it, and the gap
 * grows with the log (one more dirty page per event in every commit). It guarded little: SQLite
 * cannot compute the sha256 of a row, so a stored hash is checked by `mlos audit` (which recomputes
 * the chain and finds any hash that is wrong, reused or not), and `events_chain` still admits only
 * the event that follows the head. AUTOINCREMENT kept a counter row in sqlite_sequence written on every append;
 * events are never deleted, so `seq` (given by the writer, checked by the chain) never repeats
 * without it.
 *
 * SQLite cannot drop a column constraint, so the table is rebuilt (the documented way: new table,
 * copy, drop, rename; the migration runs with foreign keys off and checks them before it commits),
 * and its indexes and triggers, dropped with it, are created again as migrations 1, 5 and 7 made
 * them.
 */
const HEX64 = (col: string) => `length(${col}) = 64 AND ${col} NOT GLOB '*[^0-9a-f]*'`;

export const sql = /* sql */ `
CREATE TABLE events_lean (
  seq       INTEGER PRIMARY KEY,
  at        INTEGER NOT NULL,
  actor     TEXT NOT NULL CHECK (length(actor) > 0),
  kind      TEXT NOT NULL CHECK (kind GLOB '[a-z]*.[a-z]*' AND kind NOT GLOB '*[^a-z._]*'),
  entity    TEXT NOT NULL,
  need_id   TEXT,
  payload   TEXT NOT NULL CHECK (json_valid(payload)),
  prev_hash TEXT NOT NULL CHECK (${HEX64('prev_hash')}),
  hash      TEXT NOT NULL CHECK (${HEX64('hash')})
);
INSERT INTO events_lean (seq, at, actor, kind, entity, need_id, payload, prev_hash, hash)
  SELECT seq, at, actor, kind, entity, need_id, payload, prev_hash, hash FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_lean RENAME TO events;
DELETE FROM sqlite_sequence WHERE name = 'events';

CREATE INDEX events_by_need ON events (need_id, seq) WHERE need_id IS NOT NULL;
CREATE INDEX events_by_edge_target ON events (json_extract(payload, '$.to'), seq)
  WHERE kind IN ('edge.added', 'edge.removed');
CREATE INDEX events_by_workspace ON events (entity, seq) WHERE kind GLOB 'workspace.*';

CREATE TRIGGER events_chain BEFORE INSERT ON events
WHEN NEW.seq IS NOT (SELECT coalesce(max(seq), 0) + 1 FROM events)
  OR NEW.prev_hash IS NOT coalesce((SELECT hash FROM events ORDER BY seq DESC LIMIT 1), '${'0'.repeat(64)}')
BEGIN
  SELECT RAISE(ABORT, 'event chain fork refused: event ' || coalesce(NEW.seq, 'null') || ' does not follow the chain head');
END;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events BEGIN
  SELECT RAISE(ABORT, 'events are append-only: UPDATE of event ' || OLD.seq || ' refused');
END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events BEGIN
  SELECT RAISE(ABORT, 'events are append-only: DELETE of event ' || OLD.seq || ' refused');
END;
CREATE TRIGGER need_moves_file AFTER INSERT ON events
WHEN NEW.kind = 'need.updated' AND json_type(NEW.payload, '$.previous') IS NOT NULL
BEGIN
  INSERT OR IGNORE INTO need_moves (key, seq)
    SELECT 'tag:' || t.value, NEW.seq FROM json_each(NEW.payload, '$.previous.tags') t;
  INSERT OR IGNORE INTO need_moves (key, seq)
    SELECT 'scope:' || json_extract(NEW.payload, '$.previous.scope'), NEW.seq
    WHERE json_type(NEW.payload, '$.previous.scope') = 'text';
END;
`;
