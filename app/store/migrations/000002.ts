// Migration 2: indexes for lookups that grow with the number of runs.
export default /* sql */ `
-- A finished run drops its pending timers (DELETE … WHERE run_id = $1), and deleting a
-- run cascades to its tasks: both look tasks up by run.
CREATE INDEX tasks_run_idx ON tasks (run_id) WHERE run_id IS NOT NULL;

-- Runs are found by a prefix of their id (\`baton show 01a2b3\`): LIKE 'prefix%' can use
-- only a pattern-ops index under a non-C collation.
CREATE INDEX runs_id_prefix_idx ON runs (id text_pattern_ops);
`;
