/**
 * Migration 7: an index of the `need.updated` events that changed a need's tags or scope (their
 * payload records the tags and scope before the change). A workspace's files name the latest
 * event about any need they show or showed; a need that left the workspace's selection is found
 * through this index without reading every update.
 */
export const sql = /* sql */ `
CREATE INDEX events_need_moves ON events (seq)
  WHERE kind = 'need.updated' AND json_type(payload, '$.previous') IS NOT NULL;
`;
