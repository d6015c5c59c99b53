// Migration 6: check runs, GitHub's view of runs (issue 4).
export default /* sql */ `
-- The check run that shows a run (app/github/check-runs). GitHub keeps a completed check
-- run's status and conclusion, so a run that waited on people (action_required) and goes
-- on, or is rerun after it finished, continues on a new check run: check_run_id is the latest.
CREATE TABLE github_check_runs (
  run_id              text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  check_run_id        bigint,                   -- null until GitHub has answered a create
  conclusion          text,                     -- what check_run_id was sent completed with, if it was
  rendered_seq        integer NOT NULL DEFAULT 0,      -- the run's last_seq the check run shows
  rendered_hash       text,                     -- sha256 of what was sent: skip unchanged updates
  -- The latest note for people (a refused button click and why), and how many notes were
  -- written (note_seq) and shown (rendered_note_seq): a new note also needs an update.
  note                text,
  note_seq            integer NOT NULL DEFAULT 0,
  rendered_note_seq   integer NOT NULL DEFAULT 0,
  updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Writes to GitHub are paced per installation, across processes (secondary rate limits):
-- the moment the next write may go. A writer takes the slot (greatest(next_at, now)) and
-- moves next_at one interval past it, in one statement.
CREATE TABLE github_write_pacing (
  installation_id bigint PRIMARY KEY,
  next_at         timestamptz NOT NULL
);
`;
