/**
 * Migration 3: open reservations by age. Reservations of an ended task are kept while a call of
 * it may still be in flight (see BudgetRepository.releaseStale); the supervisor sweeps them.
 */
export const sql = /* sql */ `
CREATE INDEX budget_open_by_age ON budget_entries (created_at) WHERE state = 'reserved';
`;
