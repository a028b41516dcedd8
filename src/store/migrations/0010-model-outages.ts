/**
 * Migration 10: model outages. A task that failed because its model was unavailable (rate limited,
 * server errors, no connection, after the session's own retries) records that `cause`; such
 * failures do not count towards a need's `max_attempts`. Instead the identity is held: it gets no
 * new work until `held_until`, a back-off doubled per consecutive hold (`holds`) and cleared by its
 * next task that ends well or by the operator (`mlos identity resume`).
 */
export const sql = /* sql */ `
ALTER TABLE tasks ADD COLUMN cause TEXT CHECK (cause IS NULL OR cause = 'model_unavailable');
ALTER TABLE identity_pins ADD COLUMN held_until INTEGER;
ALTER TABLE identity_pins ADD COLUMN held_reason TEXT;
ALTER TABLE identity_pins ADD COLUMN holds INTEGER NOT NULL DEFAULT 0 CHECK (holds >= 0);
`;
