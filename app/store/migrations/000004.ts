// Migration 4: runs that belong to a GitHub repository (issue 4). Where a run's check run
// lives, and which installation acts for it. Null for local runs.
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
`;
