// Migration 12: webhook triggers bound to a repository and refused on replay (issue 12).
export default /* sql */ `
-- A secret belongs to the repository it was issued for, by GitHub id: a repository that
-- later takes the same name (another owner's, after a rename or transfer) is not given
-- it. Secrets issued before this migration were derived from the name ('name') and keep
-- working as they are; new and rotated ones derive from the repository id.
ALTER TABLE flow_webhook_secrets ADD COLUMN repository_id bigint;
ALTER TABLE flow_webhook_secrets ADD COLUMN derivation text NOT NULL DEFAULT 'name'
  CHECK (derivation IN ('name', 'repository-id'));
UPDATE flow_webhook_secrets s SET repository_id = r.github_id
  FROM github_repositories r WHERE r.repository = s.repository AND r.removed_at IS NULL;

-- Deliveries a flow's webhook accepted (X-Baton-Delivery), kept longer than the
-- timestamp tolerance: a body posted again with the same delivery id is a replay, and
-- one whose timestamp is older than the tolerance is refused without looking here.
CREATE TABLE flow_webhook_deliveries (
  repository  text NOT NULL,
  flow        text NOT NULL,
  delivery_id text NOT NULL,
  received_at timestamptz NOT NULL,
  run_id      text,
  PRIMARY KEY (repository, flow, delivery_id)
);
CREATE INDEX flow_webhook_deliveries_received_idx ON flow_webhook_deliveries (received_at);
`;
