// Migration 8: approvals through GitHub (issue 5).
export default /* sql */ `
-- The pull request whose reviews decide a waiting approval step, when the flow names one
-- (\`approval.pull-request\`, an expression the engine evaluates when the step starts and
-- passes in its request-approval effect). Steps that review the run's own pull request
-- (runs.pull_request) need no row. Written by the request-approval task; one row per step
-- (a later attempt's request replaces it).
CREATE TABLE github_approval_requests (
  run_id       text NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
  step         text NOT NULL,
  attempt      integer NOT NULL,
  repository   text NOT NULL,
  pull_request integer NOT NULL,
  requested_at timestamptz NOT NULL,
  PRIMARY KEY (run_id, step)
);
CREATE INDEX github_approval_requests_pull_idx
  ON github_approval_requests (lower(repository), pull_request);

-- Runs started by an Actions deployment protection rule (deployment_protection_rule
-- event): GitHub waits for Baton's answer through the callback of the workflow run. The
-- answer is given once (answered_state), when the run's approval step decides or the run
-- ends.
CREATE TABLE github_deployment_gates (
  run_id           text PRIMARY KEY REFERENCES runs (id) ON DELETE CASCADE,
  installation_id  bigint NOT NULL,
  repository       text NOT NULL,
  environment      text NOT NULL,
  workflow_run_id  bigint NOT NULL,
  created_at       timestamptz NOT NULL,
  answered_state   text CHECK (answered_state IN ('approved', 'rejected')),
  answered_at      timestamptz
);
CREATE INDEX github_deployment_gates_open_idx ON github_deployment_gates (created_at)
  WHERE answered_state IS NULL;
`;
