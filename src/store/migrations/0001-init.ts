/**
 * Migration 1: the need graph. Every enum has a CHECK, every reference a foreign key, and the
 * rules that must hold whoever writes (transitions, append-only events, growing fencing tokens,
 * no dependency cycles) are triggers, so the database refuses bad data by itself.
 */
const HEX64 = (col: string) => `length(${col}) = 64 AND ${col} NOT GLOB '*[^0-9a-f]*'`;
const NAME = (col: string) =>
  `length(${col}) BETWEEN 1 AND 64 AND ${col} GLOB '[a-z]*' AND ${col} NOT GLOB '*[^a-z0-9-]*'`;

export const sql = /* sql */ `
CREATE TABLE transitions (
  kind        TEXT NOT NULL CHECK (kind IN ('need', 'task')),
  from_status TEXT NOT NULL,
  to_status   TEXT NOT NULL,
  PRIMARY KEY (kind, from_status, to_status)
) WITHOUT ROWID;

-- Every node an edge can touch: needs, tasks and artifacts register here by trigger.
CREATE TABLE nodes (
  id   TEXT PRIMARY KEY,
  kind TEXT NOT NULL CHECK (kind IN ('need', 'task', 'artifact'))
) WITHOUT ROWID;

CREATE TABLE identity_pins (
  name        TEXT PRIMARY KEY CHECK (${NAME('name')}),
  hash        TEXT NOT NULL CHECK (${HEX64('hash')}),
  content     TEXT NOT NULL,
  drift_hash  TEXT CHECK (drift_hash IS NULL OR (${HEX64('drift_hash')})),
  paused      INTEGER NOT NULL DEFAULT 0 CHECK (paused IN (0, 1)),
  pinned_at   INTEGER NOT NULL
);

CREATE TABLE needs (
  id          TEXT PRIMARY KEY CHECK (id GLOB 'need_*'),
  title       TEXT NOT NULL CHECK (length(trim(title)) > 0 AND length(title) <= 300),
  body        TEXT NOT NULL DEFAULT '' CHECK (length(CAST(body AS BLOB)) <= 1048576),
  acceptance  TEXT NOT NULL DEFAULT '' CHECK (length(CAST(acceptance AS BLOB)) <= 65536),
  status      TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'active', 'resolved', 'dropped')),
  priority    INTEGER NOT NULL DEFAULT 2 CHECK (typeof(priority) = 'integer' AND priority BETWEEN 0 AND 4),
  scope       TEXT NOT NULL DEFAULT 'default'
              CHECK (length(scope) BETWEEN 1 AND 64 AND scope NOT GLOB '*[^A-Za-z0-9._-]*'),
  mode        TEXT NOT NULL DEFAULT 'once' CHECK (mode IN ('once', 'standing')),
  cadence_ms  INTEGER CHECK (cadence_ms IS NULL OR cadence_ms > 0),
  not_before  INTEGER,
  unmet_since INTEGER,
  orphaned    INTEGER NOT NULL DEFAULT 0 CHECK (orphaned IN (0, 1)),
  version     INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
  created_at  INTEGER NOT NULL,
  updated_at  INTEGER NOT NULL,
  CHECK ((mode = 'standing') = (cadence_ms IS NOT NULL))
);
CREATE INDEX needs_by_status ON needs (status, priority, created_at);
CREATE INDEX needs_by_scope ON needs (scope, status);

CREATE TABLE need_tags (
  need_id TEXT NOT NULL REFERENCES needs (id),
  tag     TEXT NOT NULL CHECK (length(tag) BETWEEN 1 AND 64 AND tag GLOB '[a-z0-9]*' AND tag NOT GLOB '*[^a-z0-9._-]*'),
  PRIMARY KEY (need_id, tag)
) WITHOUT ROWID;
CREATE INDEX need_tags_by_tag ON need_tags (tag, need_id);

CREATE TABLE agents (
  id            TEXT PRIMARY KEY CHECK (id GLOB 'agent_*'),
  identity      TEXT NOT NULL REFERENCES identity_pins (name),
  identity_hash TEXT NOT NULL CHECK (${HEX64('identity_hash')}),
  worker        TEXT NOT NULL CHECK (length(worker) > 0),
  capacity      INTEGER NOT NULL CHECK (capacity >= 1),
  load          INTEGER NOT NULL DEFAULT 0 CHECK (load >= 0),
  status        TEXT NOT NULL DEFAULT 'live' CHECK (status IN ('live', 'stopped')),
  started_at    INTEGER NOT NULL,
  heartbeat_at  INTEGER NOT NULL
);
CREATE INDEX agents_by_identity ON agents (identity, status);

CREATE TABLE tasks (
  id                TEXT PRIMARY KEY CHECK (id GLOB 'task_*'),
  need_id           TEXT NOT NULL REFERENCES needs (id),
  identity          TEXT NOT NULL REFERENCES identity_pins (name),
  agent_id          TEXT REFERENCES agents (id),
  status            TEXT NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'superseded', 'lost')),
  attempt           INTEGER NOT NULL CHECK (attempt >= 1),
  fencing_token     INTEGER NOT NULL DEFAULT 0 CHECK (fencing_token >= 0),
  outcome           TEXT CHECK (outcome IS NULL OR outcome IN ('resolved', 'progressed', 'blocked', 'failed')),
  summary           TEXT,
  error             TEXT,
  pack_hash         TEXT CHECK (pack_hash IS NULL OR (${HEX64('pack_hash')})),
  tokens_in         INTEGER NOT NULL DEFAULT 0 CHECK (tokens_in >= 0),
  tokens_out        INTEGER NOT NULL DEFAULT 0 CHECK (tokens_out >= 0),
  tokens_cache_read INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cache_read >= 0),
  tokens_cache_write INTEGER NOT NULL DEFAULT 0 CHECK (tokens_cache_write >= 0),
  cost_usd          REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
  created_at        INTEGER NOT NULL,
  started_at        INTEGER,
  finished_at       INTEGER,
  heartbeat_at      INTEGER,
  progress_at       INTEGER,
  UNIQUE (need_id, attempt)
);
-- At most one live task per need: graduation and takeover can never both start work on one need.
CREATE UNIQUE INDEX tasks_one_live_per_need ON tasks (need_id) WHERE status IN ('queued', 'running');
CREATE INDEX tasks_by_status ON tasks (status, created_at);

CREATE TABLE artifacts (
  id           TEXT PRIMARY KEY CHECK (id GLOB 'art_*'),
  kind         TEXT NOT NULL CHECK (kind IN ('file', 'url', 'note', 'transcript', 'result')),
  uri          TEXT,
  title        TEXT NOT NULL CHECK (length(trim(title)) > 0 AND length(title) <= 300),
  content      TEXT CHECK (content IS NULL OR length(CAST(content AS BLOB)) <= 16777216),
  content_hash TEXT NOT NULL CHECK (${HEX64('content_hash')}),
  summary      TEXT,
  token_count  INTEGER NOT NULL DEFAULT 0 CHECK (token_count >= 0),
  created_at   INTEGER NOT NULL,
  CHECK (kind NOT IN ('file', 'url') OR uri IS NOT NULL)
);
CREATE INDEX artifacts_by_hash ON artifacts (content_hash, kind);

CREATE TABLE edges (
  from_id    TEXT NOT NULL REFERENCES nodes (id),
  rel        TEXT NOT NULL CHECK (rel IN ('depends_on', 'references', 'produced_by', 'source_transcript', 'derived_from', 'supersedes', 'child_of')),
  to_id      TEXT NOT NULL REFERENCES nodes (id),
  created_at INTEGER NOT NULL,
  PRIMARY KEY (from_id, rel, to_id),
  CHECK (from_id <> to_id)
) WITHOUT ROWID;
CREATE INDEX edges_by_to ON edges (to_id, rel, from_id);

-- One row per need, never deleted. The fencing token only grows.
CREATE TABLE leases (
  need_id       TEXT PRIMARY KEY REFERENCES needs (id),
  task_id       TEXT REFERENCES tasks (id),
  fencing_token INTEGER NOT NULL DEFAULT 0 CHECK (fencing_token >= 0),
  expires_at    INTEGER,
  updated_at    INTEGER NOT NULL,
  CHECK ((task_id IS NULL) = (expires_at IS NULL))
);
CREATE INDEX leases_by_expiry ON leases (expires_at) WHERE task_id IS NOT NULL;

CREATE TABLE runs (
  id           TEXT PRIMARY KEY CHECK (id GLOB 'run_*'),
  token_limit  INTEGER CHECK (token_limit IS NULL OR token_limit > 0),
  started_at   INTEGER NOT NULL,
  stopped_at   INTEGER
);

CREATE TABLE budget_entries (
  id              INTEGER PRIMARY KEY,
  task_id         TEXT NOT NULL REFERENCES tasks (id),
  identity        TEXT NOT NULL REFERENCES identity_pins (name),
  day             TEXT NOT NULL CHECK (day GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]'),
  run_id          TEXT REFERENCES runs (id),
  state           TEXT NOT NULL CHECK (state IN ('reserved', 'settled', 'released')),
  reserved_tokens INTEGER NOT NULL CHECK (reserved_tokens >= 0),
  used_tokens     INTEGER NOT NULL DEFAULT 0 CHECK (used_tokens >= 0),
  cost_usd        REAL NOT NULL DEFAULT 0 CHECK (cost_usd >= 0),
  created_at      INTEGER NOT NULL,
  settled_at      INTEGER
);
CREATE INDEX budget_by_task ON budget_entries (task_id, state);
CREATE INDEX budget_by_identity_day ON budget_entries (identity, day, state);
CREATE INDEX budget_by_run ON budget_entries (run_id, state);

-- Bookkeeping (no events): rows waiting to be pushed into the task queue.
CREATE TABLE outbox (
  id         INTEGER PRIMARY KEY AUTOINCREMENT,
  task_id    TEXT NOT NULL UNIQUE REFERENCES tasks (id),
  queue      TEXT NOT NULL CHECK (length(queue) > 0),
  created_at INTEGER NOT NULL
);

CREATE TABLE workspaces (
  name       TEXT PRIMARY KEY CHECK (${NAME('name')}),
  tags_any   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags_any) AND json_type(tags_any) = 'array'),
  tags_all   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags_all) AND json_type(tags_all) = 'array'),
  scope      TEXT,
  statuses   TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(statuses) AND json_type(statuses) = 'array'),
  out_dir    TEXT NOT NULL CHECK (length(out_dir) > 0),
  created_at INTEGER NOT NULL
);

-- Bookkeeping (no events): the one supervisor per database, and named cursors.
CREATE TABLE supervisor_lock (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  pid          INTEGER NOT NULL,
  host         TEXT NOT NULL,
  started_at   INTEGER NOT NULL,
  heartbeat_at INTEGER NOT NULL
);

CREATE TABLE cursors (
  name TEXT PRIMARY KEY,
  seq  INTEGER NOT NULL CHECK (seq >= 0)
);

CREATE TABLE secrets (
  name  TEXT PRIMARY KEY,
  value TEXT NOT NULL
);

CREATE TABLE events (
  seq       INTEGER PRIMARY KEY AUTOINCREMENT,
  at        INTEGER NOT NULL,
  actor     TEXT NOT NULL CHECK (length(actor) > 0),
  kind      TEXT NOT NULL CHECK (kind GLOB '[a-z]*.[a-z]*' AND kind NOT GLOB '*[^a-z._]*'),
  entity    TEXT NOT NULL,
  need_id   TEXT,
  payload   TEXT NOT NULL CHECK (json_valid(payload)),
  prev_hash TEXT NOT NULL CHECK (${HEX64('prev_hash')}),
  hash      TEXT NOT NULL UNIQUE CHECK (${HEX64('hash')})
);
CREATE INDEX events_by_need ON events (need_id, seq) WHERE need_id IS NOT NULL;

-- Derived: needs blocked by an unresolved dependency, and needs whose dependencies are all resolved.
CREATE VIEW need_blockers AS
  SELECT e.from_id AS need_id, d.id AS blocker_id, d.status AS blocker_status
  FROM edges e JOIN needs d ON d.id = e.to_id
  WHERE e.rel = 'depends_on' AND d.status <> 'resolved';

CREATE VIEW ready_needs AS
  SELECT n.* FROM needs n
  WHERE n.status = 'open'
    AND NOT EXISTS (SELECT 1 FROM need_blockers b WHERE b.need_id = n.id);

-- Triggers: nodes, leases, transitions, immutability.
CREATE TRIGGER needs_node AFTER INSERT ON needs BEGIN
  INSERT INTO nodes (id, kind) VALUES (NEW.id, 'need');
  INSERT INTO leases (need_id, fencing_token, updated_at) VALUES (NEW.id, 0, NEW.created_at);
END;
CREATE TRIGGER tasks_node AFTER INSERT ON tasks BEGIN
  INSERT INTO nodes (id, kind) VALUES (NEW.id, 'task');
END;
CREATE TRIGGER artifacts_node AFTER INSERT ON artifacts BEGIN
  INSERT INTO nodes (id, kind) VALUES (NEW.id, 'artifact');
END;

CREATE TRIGGER needs_insert_open BEFORE INSERT ON needs WHEN NEW.status <> 'open' BEGIN
  SELECT RAISE(ABORT, 'a need is created open, not ' || NEW.status);
END;
CREATE TRIGGER needs_no_delete BEFORE DELETE ON needs BEGIN
  SELECT RAISE(ABORT, 'needs are never deleted: drop need ' || OLD.id || ' instead');
END;
CREATE TRIGGER needs_status_transition BEFORE UPDATE OF status ON needs
WHEN OLD.status <> NEW.status AND NOT EXISTS (
  SELECT 1 FROM transitions WHERE kind = 'need' AND from_status = OLD.status AND to_status = NEW.status)
BEGIN
  SELECT RAISE(ABORT, 'illegal transition of need ' || OLD.id || ': ' || OLD.status || ' → ' || NEW.status);
END;
CREATE TRIGGER needs_standing_never_resolved BEFORE UPDATE OF status ON needs
WHEN NEW.status = 'resolved' AND NEW.mode = 'standing' BEGIN
  SELECT RAISE(ABORT, 'illegal transition of need ' || OLD.id || ': a standing need is never resolved');
END;

CREATE TRIGGER tasks_insert_live BEFORE INSERT ON tasks WHEN NEW.status NOT IN ('queued', 'running') BEGIN
  SELECT RAISE(ABORT, 'a task is created queued or running, not ' || NEW.status);
END;
CREATE TRIGGER tasks_no_delete BEFORE DELETE ON tasks BEGIN
  SELECT RAISE(ABORT, 'tasks are never deleted: cancel task ' || OLD.id || ' instead');
END;
CREATE TRIGGER tasks_status_transition BEFORE UPDATE OF status ON tasks
WHEN OLD.status <> NEW.status AND NOT EXISTS (
  SELECT 1 FROM transitions WHERE kind = 'task' AND from_status = OLD.status AND to_status = NEW.status)
BEGIN
  SELECT RAISE(ABORT, 'illegal transition of task ' || OLD.id || ': ' || OLD.status || ' → ' || NEW.status);
END;

CREATE TRIGGER leases_token_grows BEFORE UPDATE ON leases WHEN NEW.fencing_token < OLD.fencing_token BEGIN
  SELECT RAISE(ABORT, 'fencing token of need ' || OLD.need_id || ' may only grow (' || OLD.fencing_token || ' → ' || NEW.fencing_token || ')');
END;
CREATE TRIGGER leases_holder_of_need BEFORE UPDATE OF task_id ON leases
WHEN NEW.task_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = NEW.task_id AND need_id = NEW.need_id) BEGIN
  SELECT RAISE(ABORT, 'lease of need ' || NEW.need_id || ' can only be held by a task of that need');
END;
CREATE TRIGGER leases_no_delete BEFORE DELETE ON leases BEGIN
  SELECT RAISE(ABORT, 'leases are never deleted (need ' || OLD.need_id || ')');
END;

CREATE TRIGGER edges_kinds BEFORE INSERT ON edges
WHEN (NEW.rel IN ('depends_on', 'child_of') AND (
        (SELECT kind FROM nodes WHERE id = NEW.from_id) IS NOT 'need' OR (SELECT kind FROM nodes WHERE id = NEW.to_id) IS NOT 'need'))
  OR (NEW.rel = 'produced_by' AND (
        (SELECT kind FROM nodes WHERE id = NEW.from_id) IS NOT 'artifact' OR (SELECT kind FROM nodes WHERE id = NEW.to_id) IS NOT 'task'))
  OR (NEW.rel IN ('source_transcript', 'derived_from') AND (
        (SELECT kind FROM nodes WHERE id = NEW.from_id) IS NOT 'artifact' OR (SELECT kind FROM nodes WHERE id = NEW.to_id) IS NOT 'artifact'))
  OR (NEW.rel = 'supersedes' AND (SELECT kind FROM nodes WHERE id = NEW.from_id) IS NOT (SELECT kind FROM nodes WHERE id = NEW.to_id))
BEGIN
  SELECT RAISE(ABORT, 'edge ' || NEW.from_id || ' ' || NEW.rel || ' ' || NEW.to_id || ' joins the wrong kinds of node');
END;
CREATE TRIGGER edges_no_cycle BEFORE INSERT ON edges
WHEN NEW.rel = 'depends_on' AND EXISTS (
  WITH RECURSIVE reach (id) AS (
    SELECT NEW.to_id
    UNION
    SELECT e.to_id FROM edges e JOIN reach r ON e.from_id = r.id WHERE e.rel = 'depends_on')
  SELECT 1 FROM reach WHERE id = NEW.from_id)
BEGIN
  SELECT RAISE(ABORT, 'depends_on cycle refused: ' || NEW.from_id || ' → ' || NEW.to_id || ' closes a cycle');
END;
CREATE TRIGGER edges_immutable BEFORE UPDATE ON edges BEGIN
  SELECT RAISE(ABORT, 'edges are immutable: remove and add instead');
END;

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
`;
