// Migration 7: triggers (issue 4): webhook-trigger secrets and refused requests.
export default /* sql */ `
-- Keys Baton derives its own secrets from (never user secrets), when BATON_SECRET_KEY is
-- not set: generated once, by whichever process inserts first.
CREATE TABLE baton_keys (
  name       text PRIMARY KEY,
  key        text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
);

-- A flow's webhook secret is HMAC(key, '<repository>/<flow>/<generation>'), never stored:
-- the row says a secret was issued (a webhook is refused until one is) and which
-- generation is valid; rotating bumps it, and the old secret stops working at once.
CREATE TABLE flow_webhook_secrets (
  repository text NOT NULL,
  flow       text NOT NULL,
  generation integer NOT NULL DEFAULT 1,
  rotated_by text,
  rotated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (repository, flow)
);

-- Requests to a flow's webhook URL that were refused; the body is never kept.
CREATE TABLE flow_webhook_rejections (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  repository     text NOT NULL,
  flow           text NOT NULL,
  reason         text NOT NULL,
  remote_address text,
  received_at    timestamptz NOT NULL
);
CREATE INDEX flow_webhook_rejections_flow_idx
  ON flow_webhook_rejections (repository, flow, received_at);
`;
