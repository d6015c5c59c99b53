// Migration 9: self-hosted runners (issue 7): registration tokens, runners, the runner job queue.
export default /* sql */ `
-- Tokens that register runners, created by a repository or organisation admin (or the
-- local user). Reusable until they expire or are revoked; only their SHA-256 is kept.
CREATE TABLE runner_registration_tokens (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  token_hash      text NOT NULL UNIQUE,
  scope_kind      text NOT NULL CHECK (scope_kind IN ('repository', 'organization', 'local')),
  scope           text NOT NULL,       -- owner/repo, an organisation login, or '*' (local)
  installation_id bigint,              -- the app's installation on that scope (GitHub scopes)
  created_by      text NOT NULL,
  created_at      timestamptz NOT NULL DEFAULT now(),
  expires_at      timestamptz NOT NULL,
  revoked_at      timestamptz
);

-- Registered runners. A runner acts with its own token (only its SHA-256 is kept) and
-- claims only jobs of its scope (and installation) whose labels it has.
CREATE TABLE runners (
  id                    text PRIMARY KEY,
  name                  text NOT NULL,
  labels                text[] NOT NULL,
  token_hash            text NOT NULL UNIQUE,
  scope_kind            text NOT NULL CHECK (scope_kind IN ('repository', 'organization', 'local')),
  scope                 text NOT NULL,
  installation_id       bigint,
  registration_token_id bigint REFERENCES runner_registration_tokens (id),
  registered_by         text NOT NULL,
  created_at            timestamptz NOT NULL DEFAULT now(),
  last_seen_at          timestamptz,
  revoked_at            timestamptz
);

-- Step attempts (and compensations) handed to runners. The key is the attempt's
-- idempotency key. A job is queued, then running under one lease (lease_id, renewed by
-- heartbeats until lease_until), then finished, lost (the lease expired: the attempt
-- failed as retryable and the engine's retry policy decides), or dropped (the attempt
-- stopped being current before a runner reported). Results reported under a lease that
-- is no longer the job's are kept in late_results and otherwise ignored.
CREATE TABLE runner_jobs (
  key             text PRIMARY KEY,
  run_id          text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step            text NOT NULL,
  attempt         integer NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('execute', 'compensate')),
  labels          text[] NOT NULL,
  repository      text NOT NULL,
  installation_id bigint,
  payload         jsonb NOT NULL,      -- the engine's execute (or compensate) effect
  status          text NOT NULL CHECK (status IN ('queued', 'running', 'finished', 'lost', 'dropped')),
  runner_id       text REFERENCES runners (id),
  lease_id        text,
  lease_until     timestamptz,
  claims          integer NOT NULL DEFAULT 0,
  created_at      timestamptz NOT NULL DEFAULT now(),
  claimed_at      timestamptz,
  finished_at     timestamptz,
  outcome         jsonb,
  late_results    jsonb NOT NULL DEFAULT '[]'
);
CREATE INDEX runner_jobs_queued_idx ON runner_jobs (created_at) WHERE status = 'queued';
CREATE INDEX runner_jobs_runner_idx ON runner_jobs (runner_id) WHERE status = 'running';
`;
