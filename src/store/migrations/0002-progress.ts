/**
 * Migration 2: progress counters on tasks. Liveness is progress, not a live process: a heartbeat
 * renews a lease only when one of these grew. Heartbeats are bookkeeping and write no events.
 */
export const sql = /* sql */ `
ALTER TABLE tasks ADD COLUMN progress_turns INTEGER NOT NULL DEFAULT 0 CHECK (progress_turns >= 0);
ALTER TABLE tasks ADD COLUMN progress_tokens INTEGER NOT NULL DEFAULT 0 CHECK (progress_tokens >= 0);
ALTER TABLE tasks ADD COLUMN progress_tool_calls INTEGER NOT NULL DEFAULT 0 CHECK (progress_tool_calls >= 0);
CREATE INDEX tasks_by_need_status ON tasks (need_id, status);
CREATE INDEX artifacts_by_uri ON artifacts (uri) WHERE uri IS NOT NULL;
`;
