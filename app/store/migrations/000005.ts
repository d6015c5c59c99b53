// Migration 5: flows from repositories (issue 4): installed repositories, live flows,
// their schedules, and the drafts pull requests propose.
export default /* sql */ `
-- Repositories the app is installed on.
CREATE TABLE github_repositories (
  repository      text PRIMARY KEY,          -- owner/name, as GitHub spells it
  github_id       bigint UNIQUE,
  installation_id bigint NOT NULL,
  default_branch  text NOT NULL,
  live_sha        text,                      -- the default-branch commit whose flows are live
  -- When the branch head that live_sha came from was asked of GitHub. Deliveries arrive
  -- and finish in any order; a load whose head was resolved earlier than the one that is
  -- live is stale and is not applied.
  live_resolved_at timestamptz,
  settings        jsonb NOT NULL DEFAULT '{}', -- .github/baton.yml at live_sha (its last valid version)
  removed_at      timestamptz,               -- uninstalled: nothing triggers
  updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX github_repositories_installation_idx ON github_repositories (installation_id);

-- One live version per (repository, flow): the last valid one. A newer version that
-- failed validation is recorded beside it, not made live.
CREATE TABLE live_flows (
  repository  text NOT NULL REFERENCES github_repositories (repository) ON DELETE CASCADE,
  flow        text NOT NULL,
  path        text NOT NULL,
  version_id  text REFERENCES flow_versions (id),  -- null while no version was ever valid
  invalid_sha text,                                 -- the newest commit whose version failed
  diagnostics jsonb,                                -- its diagnostics
  updated_at  timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, flow)
);

-- Schedules of live flows. Each tick is claimed by moving next_at forward with a
-- compare-and-set in the transaction that creates the run: one run per tick, whatever
-- the number of app processes.
CREATE TABLE flow_schedules (
  repository text NOT NULL,
  flow       text NOT NULL,
  idx        integer NOT NULL,                  -- position in on.schedule
  cron       text NOT NULL,
  timezone   text NOT NULL,
  version_id text NOT NULL REFERENCES flow_versions (id),
  next_at    timestamptz NOT NULL,
  PRIMARY KEY (repository, flow, idx),
  FOREIGN KEY (repository, flow) REFERENCES live_flows (repository, flow) ON DELETE CASCADE
);
CREATE INDEX flow_schedules_next_idx ON flow_schedules (next_at);

-- Flows a pull request changes, per head commit: what its "Run draft" buttons and
-- '/baton run <flow> --draft' comments run. version_id is null for a draft that failed
-- validation (it cannot run).
CREATE TABLE flow_drafts (
  repository   text NOT NULL,
  head_sha     text NOT NULL,
  flow         text NOT NULL,
  pull_request integer NOT NULL,
  version_id   text REFERENCES flow_versions (id),
  created_at   timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, head_sha, flow)
);
`;
