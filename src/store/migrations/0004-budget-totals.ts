/**
 * Migration 4: running budget totals per identity and UTC day, and per run. A reservation checks
 * the day's and the run's totals; summing their entries made each check grow with the day (a long
 * run reserving thousands of calls slowed with every one). Triggers keep the totals equal to the
 * sum over the entries (a reserved entry counts its reservation, a settled one its use, a released
 * one nothing) whatever writes them; the existing entries are summed once here.
 */
/** What an entry counts, of the trigger's NEW or OLD row or (no prefix) of a row of a query. */
const contribution = (row: 'NEW.' | 'OLD.' | '') =>
  `(CASE ${row}state WHEN 'reserved' THEN ${row}reserved_tokens WHEN 'settled' THEN ${row}used_tokens ELSE 0 END)`;

/** Adds what the NEW row counts to its day's and its run's totals (creating them at first). */
const addNew = /* sql */ `
  INSERT INTO budget_totals (scope, key, identity, tokens) VALUES ('day', NEW.day, NEW.identity, ${contribution('NEW.')})
    ON CONFLICT (scope, key, identity) DO UPDATE SET tokens = tokens + excluded.tokens;
  INSERT INTO budget_totals (scope, key, identity, tokens)
    SELECT 'run', NEW.run_id, '', ${contribution('NEW.')} WHERE NEW.run_id IS NOT NULL
    ON CONFLICT (scope, key, identity) DO UPDATE SET tokens = tokens + excluded.tokens;`;

export const sql = /* sql */ `
CREATE TABLE budget_totals (
  scope    TEXT NOT NULL CHECK (scope IN ('day', 'run')),
  key      TEXT NOT NULL,
  identity TEXT NOT NULL,
  tokens   INTEGER NOT NULL CHECK (tokens >= 0),
  PRIMARY KEY (scope, key, identity)
) WITHOUT ROWID;

INSERT INTO budget_totals (scope, key, identity, tokens)
  SELECT 'day', day, identity, sum(${contribution('')})
  FROM budget_entries GROUP BY day, identity;
INSERT INTO budget_totals (scope, key, identity, tokens)
  SELECT 'run', run_id, '', sum(${contribution('')})
  FROM budget_entries WHERE run_id IS NOT NULL GROUP BY run_id;

CREATE TRIGGER budget_totals_insert AFTER INSERT ON budget_entries BEGIN
${addNew}
END;

CREATE TRIGGER budget_totals_update AFTER UPDATE ON budget_entries BEGIN
  UPDATE budget_totals SET tokens = tokens - ${contribution('OLD.')}
    WHERE scope = 'day' AND key = OLD.day AND identity = OLD.identity;
  UPDATE budget_totals SET tokens = tokens - ${contribution('OLD.')}
    WHERE scope = 'run' AND key = OLD.run_id AND identity = '';
${addNew}
END;

CREATE TRIGGER budget_entries_no_delete BEFORE DELETE ON budget_entries BEGIN
  SELECT RAISE(ABORT, 'budget entries are never deleted: the budget totals count them');
END;
`;
