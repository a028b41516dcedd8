/**
 * Migration 7: where each retag and each move to another scope took a need from. A `need.updated`
 * event that changes a need's tags or scope records the tags and scope before the change in its
 * payload's `previous`; a trigger files that event under each of those tags and that scope, so a
 * workspace's views find the latest need that left their tags or scope by an index lookup per
 * tag, whatever the length of the log (see ViewRepository.latestSeq). Derived from the log alone:
 * the rows are written with the event, in its transaction, and can be rebuilt from it.
 *
 * Events written before this version carry no `previous`, so there is nothing to file from them: a
 * need retagged out of a workspace before the upgrade is not found this way (that workspace's
 * header seq may step back once).
 */
export const sql = /* sql */ `
CREATE TABLE need_moves (
  key TEXT NOT NULL CHECK (key GLOB 'tag:?*' OR key GLOB 'scope:?*'),
  seq INTEGER NOT NULL REFERENCES events (seq),
  PRIMARY KEY (key, seq)
) WITHOUT ROWID;

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
