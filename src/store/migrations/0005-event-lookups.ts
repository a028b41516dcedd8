/**
 * Migration 5: indexes for the views' event lookups. A view's header names the latest event it
 * reflects; two of those lookups had no index and read the whole event log on every compile, so
 * `mlos run`'s views slowed as the log grew even when the graph did not (~200 ms per compile at
 * 200,000 events, against ~2 ms with these):
 * - the latest edge event naming a need as its target (an edge event carries its source's id in
 *   need_id, its target's only in the payload);
 * - the latest `workspace.*` event about a workspace.
 * Both are partial: they hold only the events they look up.
 */
export const sql = /* sql */ `
CREATE INDEX events_by_edge_target ON events (json_extract(payload, '$.to'), seq)
  WHERE kind IN ('edge.added', 'edge.removed');
CREATE INDEX events_by_workspace ON events (entity, seq) WHERE kind GLOB 'workspace.*';
`;
