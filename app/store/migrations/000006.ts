// Migration 6: check runs, GitHub's view of runs (issue 4).
export default /* sql */ `
-- One check run per run. rendered_seq is the last run event the check run shows.
CREATE TABLE github_check_runs (
  run_id        text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  check_run_id  bigint,
  rendered_seq  integer NOT NULL DEFAULT 0,
  rendered_hash text,
  updated_at    timestamptz NOT NULL DEFAULT now()
);

-- Writes to GitHub are paced per installation, across processes (secondary rate limits):
-- the next moment a write may go.
CREATE TABLE github_write_pacing (
  installation_id bigint PRIMARY KEY,
  next_at         timestamptz NOT NULL
);
`;
