// Migration 3: the GitHub webhook inbox. A delivery is stored before it is acknowledged
// and processed later by a worker (DESIGN.md, rule 3); rejected deliveries are recorded
// without their body.
export default /* sql */ `
-- One row per delivery. The id is X-GitHub-Delivery, which GitHub keeps on a redelivery,
-- so a redelivered webhook is stored (and processed) once.
CREATE TABLE github_deliveries (
  id              text PRIMARY KEY,
  event           text NOT NULL,            -- X-GitHub-Event
  action          text,                     -- payload.action, when the event has one
  installation_id bigint,                   -- payload.installation.id, when present
  hook_id         bigint,                   -- X-GitHub-Hook-ID: which hook to redeliver from
  received_at     timestamptz NOT NULL,
  payload         jsonb NOT NULL,
  status          text NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'processed', 'failed', 'ignored')),
  attempts        integer NOT NULL DEFAULT 0,
  last_error      text,
  run_at          timestamptz NOT NULL,     -- not before: the first attempt, then the retry backoff
  locked_by       text,                     -- the worker processing it, while its lease holds
  locked_until    timestamptz,
  finished_at     timestamptz
);
CREATE INDEX github_deliveries_pending_idx ON github_deliveries (run_at) WHERE status = 'pending';
CREATE INDEX github_deliveries_received_idx ON github_deliveries (received_at DESC);

-- Requests to the webhook URL that were refused (bad or missing signature, malformed).
-- The claimed delivery id and event are unverified; the body is never kept.
CREATE TABLE github_delivery_rejections (
  id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  delivery_id    text,
  event          text,
  reason         text NOT NULL,
  remote_address text,
  received_at    timestamptz NOT NULL
);
CREATE INDEX github_delivery_rejections_received_idx ON github_delivery_rejections (received_at DESC);
`;
