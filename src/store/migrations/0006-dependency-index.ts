/**
 * Migration 6: an index of the `depends_on` edges alone. Every views compile and every PROBLEM.md
 * render reads all of them (blockers, the dependency graph); without it that read went through
 * every edge, and each task adds edges of its own (its transcript `produced_by` it, its artifacts
 * reference it), so the read grew with the run's history instead of with the graph.
 */
export const sql = /* sql */ `
CREATE INDEX edges_depends_on ON edges (from_id, to_id) WHERE rel = 'depends_on';
`;
