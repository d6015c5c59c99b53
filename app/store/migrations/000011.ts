// Migration 11: tenants stay apart (issue 12). Concurrency groups are a repository's;
// runners are refused, and recorded, outside their scope; late results are bounded.
export default /* sql */ `
-- A concurrency group is looked up within the run's repository (app/store/runs.ts).
DROP INDEX runs_active_group_idx;
CREATE INDEX runs_active_group_idx ON runs (repository, concurrency_group, created_at)
  WHERE concurrency_group IS NOT NULL AND status IN ('queued', 'running', 'compensating');

-- Until now a group was one string across repositories, so a queued run may be waiting
-- for an active run of another repository, which will no longer free it when it ends.
-- For each repository's group that has queued runs and none active, enqueue the task a
-- run's end enqueues (run-ended, for the group's oldest queued run): the runtime admits
-- that run, as it would have when the other repository's run ended. Harmless when
-- nothing waits: run-ended admits only when nothing in the group is active.
INSERT INTO tasks (kind, run_id, key, payload)
SELECT DISTINCT ON (q.repository, q.concurrency_group)
       'run-ended', q.id, q.id || '/run-ended/regroup',
       jsonb_build_object('type', 'run-ended', 'concurrencyGroup', q.concurrency_group)
  FROM runs q
 WHERE q.status = 'queued' AND q.concurrency_group IS NOT NULL
   AND NOT EXISTS (
     SELECT 1 FROM runs a
      WHERE a.repository = q.repository AND a.concurrency_group = q.concurrency_group
        AND a.status IN ('running', 'compensating'))
 ORDER BY q.repository, q.concurrency_group, q.created_at, q.number
ON CONFLICT DO NOTHING;

-- Late results (under a lease the job no longer has) are kept up to a bound per job (the
-- first 10); later ones are only counted.
ALTER TABLE runner_jobs ADD COLUMN late_results_dropped integer NOT NULL DEFAULT 0;
UPDATE runner_jobs
   SET late_results_dropped = jsonb_array_length(late_results) - 10,
       late_results = (SELECT coalesce(jsonb_agg(e ORDER BY n), '[]'::jsonb)
                         FROM jsonb_array_elements(late_results) WITH ORDINALITY AS x (e, n)
                        WHERE n <= 10)
 WHERE jsonb_array_length(late_results) > 10;

-- Requests of a runner about a job outside its scope (another repository, organisation
-- or installation): refused with 403, recorded here, never applied to the job.
CREATE TABLE runner_refusals (
  id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at        timestamptz NOT NULL DEFAULT now(),
  runner_id text NOT NULL REFERENCES runners (id) ON DELETE CASCADE,
  request   text NOT NULL CHECK (request IN ('result', 'heartbeat', 'logs')),
  key       text NOT NULL,            -- the job the runner named
  reason    text NOT NULL
);
CREATE INDEX runner_refusals_runner_idx ON runner_refusals (runner_id, at);
`;
