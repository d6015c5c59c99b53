// Migration 1: the run store. Append-only: never edit a migration that has landed; add
// the next number instead. Kept as a string in a .ts file so that it ships inside dist/.
export default /* sql */ `
-- Flow versions: a flow's parsed definition at one commit (repository) or one content
-- hash (local file). Immutable; runs point at the version they are pinned to.
CREATE TABLE flow_versions (
  id          text PRIMARY KEY,
  source_kind text NOT NULL CHECK (source_kind IN ('repository', 'local')),
  repository  text NOT NULL,              -- owner/repo, or 'local'
  path        text NOT NULL,              -- path in the repository, or the local file's absolute path
  sha         text NOT NULL,              -- commit SHA, or sha256 of the local file's content
  name        text NOT NULL,              -- the flow's name: its file name without .yml
  definition  jsonb NOT NULL,
  source      text NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now(),
  UNIQUE (repository, path, sha)
);

-- The last run number handed out per (repository, flow): run numbers count from 1.
CREATE TABLE run_numbers (
  repository  text NOT NULL,
  flow        text NOT NULL,
  last_number integer NOT NULL,
  PRIMARY KEY (repository, flow)
);

-- Runs. The events are the truth; status, state and the steps table are projections
-- updated in the same transaction as the events they derive from.
CREATE TABLE runs (
  id                text PRIMARY KEY,     -- UUIDv7: sortable by creation time
  flow_version_id   text NOT NULL REFERENCES flow_versions (id),
  repository        text NOT NULL,
  flow              text NOT NULL,
  number            integer NOT NULL,
  status            text NOT NULL CHECK (status IN ('queued', 'running', 'compensating', 'success', 'failure', 'cancelled')),
  concurrency_group text,
  parent_run_id     text REFERENCES runs (id),
  parent_step       text,
  parent_attempt    integer,
  actor             text NOT NULL,
  trigger_event     text NOT NULL,
  inputs            jsonb NOT NULL,
  state             jsonb,                -- the engine's RunState after the last event
  last_seq          integer NOT NULL DEFAULT 0,
  created_at        timestamptz NOT NULL DEFAULT now(),
  updated_at        timestamptz NOT NULL DEFAULT now(),
  finished_at       timestamptz,
  UNIQUE (repository, flow, number),
  UNIQUE (parent_run_id, parent_step, parent_attempt)
);
CREATE INDEX runs_created_idx ON runs (created_at DESC);
CREATE INDEX runs_flow_idx ON runs (flow, created_at DESC);
CREATE INDEX runs_active_group_idx ON runs (concurrency_group, created_at)
  WHERE concurrency_group IS NOT NULL AND status IN ('queued', 'running', 'compensating');

-- A run's append-only history.
CREATE TABLE run_events (
  run_id text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  seq    integer NOT NULL,
  type   text NOT NULL,
  at     timestamptz NOT NULL,
  data   jsonb NOT NULL,                  -- the whole event
  PRIMARY KEY (run_id, seq)
);
-- An attempt finishes once: a second report of the same attempt (an execution repeated
-- after a crash) is recognised, not recorded.
CREATE UNIQUE INDEX run_events_attempt_finished_idx ON run_events (run_id, (data ->> 'step'), ((data ->> 'attempt')::integer))
  WHERE type = 'attempt.finished';

-- Steps, projected from the run's state.
CREATE TABLE steps (
  run_id      text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step        text NOT NULL,
  status      text NOT NULL,
  result      text,
  attempt     integer NOT NULL DEFAULT 0,
  outputs     jsonb NOT NULL DEFAULT '{}',
  started_at  timestamptz,
  finished_at timestamptz,
  reason      text,
  PRIMARY KEY (run_id, step)
);

-- What steps printed, in bounded chunks, in order of arrival (seq).
CREATE TABLE step_logs (
  seq     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  run_id  text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step    text NOT NULL,
  attempt integer NOT NULL,
  stream  text NOT NULL CHECK (stream IN ('stdout', 'stderr', 'system')),
  chunk   text NOT NULL,
  at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX step_logs_run_idx ON step_logs (run_id, step, seq);

-- Work for the runtime (transactional outbox). Claimed with FOR UPDATE SKIP LOCKED; a
-- claim is a lease (locked_until) that another process takes over when it expires.
CREATE TABLE tasks (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  kind         text NOT NULL,
  run_id       text REFERENCES runs (id) ON DELETE CASCADE,
  key          text,                      -- idempotency key: one pending task per key
  payload      jsonb NOT NULL DEFAULT '{}',
  run_at       timestamptz NOT NULL DEFAULT now(),
  attempts     integer NOT NULL DEFAULT 0,
  locked_by    text,
  locked_until timestamptz,
  last_error   text,
  created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX tasks_key_idx ON tasks (key) WHERE key IS NOT NULL;
CREATE INDEX tasks_run_at_idx ON tasks (run_at, id);
`;
