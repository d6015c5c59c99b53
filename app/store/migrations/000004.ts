// Migration 4: runs that belong to a GitHub repository (issue 4): where a run's check run
// lives, and which installation acts for it (null for local runs); the recovery of missed
// webhook deliveries.
export default /* sql */ `
ALTER TABLE runs ADD COLUMN installation_id bigint;
-- The commit the run's check run is on: the pull request's head for runs a pull request
-- started, otherwise the commit the flow version was read at.
ALTER TABLE runs ADD COLUMN head_sha text;
-- The pull request that started the run, or the issue / pull request a comment asked on.
ALTER TABLE runs ADD COLUMN pull_request integer;
ALTER TABLE runs ADD COLUMN issue integer;
-- Run numbers count per repository and flow: '<flow>#<n>' lookups filter by repository.
CREATE INDEX runs_repository_flow_number_idx ON runs (repository, flow, number);

-- Background jobs that one process at a time should do (the recovery of missed webhook
-- deliveries): a lease, taken over when it expires, and where the job got to.
CREATE TABLE background_leases (
  name         text PRIMARY KEY,
  holder       text,
  locked_until timestamptz,
  state        jsonb NOT NULL DEFAULT '{}'
);

-- Redeliveries Baton asked GitHub for, by delivery GUID, so that a delivery that keeps
-- failing is asked for again only with backoff, and a few times at most.
CREATE TABLE github_redeliveries (
  guid             text PRIMARY KEY,
  hook_delivery_id bigint NOT NULL,
  requests         integer NOT NULL,
  requested_at     timestamptz NOT NULL
);
`;
