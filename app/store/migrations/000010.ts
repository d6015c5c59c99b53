// Migration 10: steps as GitHub Actions workflow runs (issue 6).
export default /* sql */ `
-- One row per dispatched attempt of a \`workflow\` step, or compensation by a workflow. The key
-- is the effect's idempotency key (<run>/<step>/<attempt>, with /compensate for a compensation). The workflow run is known at once when GitHub returns run
-- details, else (GitHub Enterprise Server) when a workflow_run event's title carries the
-- attempt's step token. \`outputs\` are what the Baton action reported, once (a second report
-- is a replay); the attempt finishes when the workflow run completes.
CREATE TABLE workflow_dispatches (
  key                 text PRIMARY KEY,
  run_id              text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step                text NOT NULL,
  attempt             integer NOT NULL,
  purpose             text NOT NULL DEFAULT 'attempt' CHECK (purpose IN ('attempt', 'compensation')),
  installation_id     bigint NOT NULL,
  repository          text NOT NULL,        -- where the workflow lives: owner/repo
  workflow            text NOT NULL,        -- its path: .github/workflows/build.yml
  ref                 text NOT NULL,        -- the branch or tag it was dispatched on
  status              text NOT NULL DEFAULT 'dispatched'
                      CHECK (status IN ('dispatched', 'queued', 'in_progress', 'waiting', 'completed')),
  workflow_run_id     bigint UNIQUE,
  html_url            text,
  detail              text,                 -- what the run is doing or waiting for
  conclusion          text,
  outputs             jsonb,
  outputs_at          timestamptz,
  cancel_requested_at timestamptz,
  dispatched_at       timestamptz NOT NULL DEFAULT now(),
  updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workflow_dispatches_run ON workflow_dispatches (run_id);

-- Step tokens that were refused at the callback: forged, expired, malformed, replayed, or
-- for an attempt that no longer runs. Only a hash of the token is kept.
CREATE TABLE step_token_rejections (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  at             timestamptz NOT NULL DEFAULT now(),
  reason         text NOT NULL CHECK (reason IN ('malformed', 'forged', 'expired', 'replayed', 'not-running')),
  key            text,                      -- the attempt the token names, when it could be read
  token_sha256   text NOT NULL,
  remote_address text
);
`;
