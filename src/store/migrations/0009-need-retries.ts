/**
 * Migration 9: an operator's retry of a need. A need escalated after `max_attempts` failed or lost
 * attempts (dead-lettered) waits for an operator; `mlos need retry` gives it a fresh count by
 * recording the attempt its failures count from: only attempts after `failures_from` (and after
 * its last success) count towards the limit and the retry delay. The attempts themselves stay.
 */
export const sql = /* sql */ `
ALTER TABLE needs ADD COLUMN failures_from INTEGER NOT NULL DEFAULT 0 CHECK (failures_from >= 0);
`;
