/**
 * The SQL of triggers: live flows and schedules (tables written by the flow loader,
 * migration 5), webhook-trigger secrets and refusals (migration 7). Only installed
 * repositories (`removed_at IS NULL`) and flows with a valid live version trigger.
 */
import type { Queryable } from "./database.js";

// --- Schedules ---------------------------------------------------------------------------

export interface DueSchedule {
  repository: string;
  flow: string;
  idx: number;
  cron: string;
  timezone: string;
  versionId: string;
  /** The tick the row waits for. */
  nextAt: Date;
  /** `next_at` exactly as stored, for the compare-and-set. */
  nextAtText: string;
  /** `on.schedule[idx].catch-up` of the live version. */
  catchUp: string | undefined;
  installationId: number;
  headSha: string;
}

interface DbDueSchedule {
  repository: string;
  flow: string;
  idx: number;
  cron: string;
  timezone: string;
  version_id: string;
  next_at: Date;
  next_at_text: string;
  catch_up: string | null;
  installation_id: string | number;
  head_sha: string;
}

const ACTIVE_SCHEDULES = `
  FROM flow_schedules s
  JOIN github_repositories r ON r.repository = s.repository AND r.removed_at IS NULL
  JOIN flow_versions fv ON fv.id = s.version_id`;

/** Schedules whose tick is due at `now`, earliest first. */
export async function dueSchedules(
  db: Queryable,
  now: Date,
  limit: number,
): Promise<DueSchedule[]> {
  const result = await db.query<DbDueSchedule>(
    `SELECT s.repository, s.flow, s.idx, s.cron, s.timezone, s.version_id, s.next_at,
            s.next_at::text AS next_at_text,
            fv.definition -> 'on' -> 'schedule' -> s.idx ->> 'catch-up' AS catch_up,
            r.installation_id, coalesce(r.live_sha, fv.sha) AS head_sha
     ${ACTIVE_SCHEDULES}
      WHERE s.next_at <= $1
      ORDER BY s.next_at
      LIMIT $2`,
    [now, limit],
  );
  return result.rows.map((row) => ({
    repository: row.repository,
    flow: row.flow,
    idx: row.idx,
    cron: row.cron,
    timezone: row.timezone,
    versionId: row.version_id,
    nextAt: new Date(row.next_at),
    nextAtText: row.next_at_text,
    catchUp: row.catch_up ?? undefined,
    installationId: Number(row.installation_id),
    headSha: row.head_sha,
  }));
}

/** The earliest tick any active schedule waits for. */
export async function earliestScheduleTick(db: Queryable): Promise<Date | undefined> {
  const result = await db.query<{ next_at: Date | null }>(
    `SELECT min(s.next_at) AS next_at ${ACTIVE_SCHEDULES}`,
  );
  const next = result.rows[0]?.next_at;
  return next ? new Date(next) : undefined;
}

/**
 * Claim a schedule's tick: move `next_at` from what this process saw to `next`, if no one
 * else has (the row is unchanged since it was read). The row lock taken here makes a
 * second claimer wait for this transaction and then find `next_at` moved: it claims nothing.
 */
export async function claimScheduleTick(
  db: Queryable,
  schedule: Pick<DueSchedule, "repository" | "flow" | "idx" | "versionId" | "nextAtText">,
  next: Date,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE flow_schedules SET next_at = $6
      WHERE repository = $1 AND flow = $2 AND idx = $3 AND version_id = $4
        AND next_at = $5::timestamptz`,
    [
      schedule.repository,
      schedule.flow,
      schedule.idx,
      schedule.versionId,
      schedule.nextAtText,
      next,
    ],
  );
  return result.rowCount === 1;
}

// --- Webhook-trigger secrets and refusals -------------------------------------------------

/** A key Baton derives its own secrets from, created once (the first creator wins a race). */
export async function ensureKey(db: Queryable, name: string, candidate: string): Promise<string> {
  await db.query(`INSERT INTO baton_keys (name, key) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [
    name,
    candidate,
  ]);
  const result = await db.query<{ key: string }>(`SELECT key FROM baton_keys WHERE name = $1`, [
    name,
  ]);
  const key = result.rows[0]?.key;
  if (key === undefined) throw new Error(`baton_keys row ${name} vanished after it was inserted`);
  return key;
}

/** A flow's issued webhook secret: which generation, derived how, for which repository id. */
export interface WebhookSecretIssue {
  generation: number;
  derivation: "name" | "repository-id";
  /** The GitHub id of the repository it was issued to, when known. */
  repositoryId: number | undefined;
}

interface DbSecretIssue {
  generation: number;
  derivation: WebhookSecretIssue["derivation"];
  repository_id: string | number | null;
}

function toIssue(row: DbSecretIssue): WebhookSecretIssue {
  return {
    generation: row.generation,
    derivation: row.derivation,
    repositoryId: row.repository_id !== null ? Number(row.repository_id) : undefined,
  };
}

/** The issued secret of a flow; undefined while none was issued. */
export async function webhookSecretIssue(
  db: Queryable,
  repository: string,
  flow: string,
): Promise<WebhookSecretIssue | undefined> {
  const result = await db.query<DbSecretIssue>(
    `SELECT generation, derivation, repository_id FROM flow_webhook_secrets
      WHERE repository = $1 AND flow = $2`,
    [repository, flow],
  );
  const row = result.rows[0];
  return row ? toIssue(row) : undefined;
}

/**
 * Issue generation 1 (if none was), or with `rotate` the next one. A secret issued to a
 * repository that had this name before (another GitHub id) is replaced as if rotated:
 * the repository now of this name never inherits it. New generations derive from the
 * repository id when GitHub's id is known.
 */
export async function issueWebhookSecret(
  db: Queryable,
  repository: string,
  flow: string,
  options: { rotate: boolean; by: string | undefined; at: Date },
): Promise<WebhookSecretIssue> {
  const result = await db.query<DbSecretIssue>(
    `WITH repo AS (
       SELECT (SELECT github_id FROM github_repositories WHERE repository = $1) AS id
     )
     INSERT INTO flow_webhook_secrets AS s
            (repository, flow, generation, rotated_by, rotated_at, repository_id, derivation)
     SELECT $1, $2, 1, $3, $4, repo.id,
            CASE WHEN repo.id IS NULL THEN 'name' ELSE 'repository-id' END
       FROM repo
     ON CONFLICT (repository, flow) DO UPDATE
       SET generation = s.generation + 1,
           rotated_by = excluded.rotated_by, rotated_at = excluded.rotated_at,
           repository_id = excluded.repository_id, derivation = excluded.derivation
       WHERE $5 OR (excluded.repository_id IS NOT NULL AND s.repository_id IS NOT NULL
                    AND excluded.repository_id <> s.repository_id)
     RETURNING generation, derivation, repository_id`,
    [repository, flow, options.by ?? null, options.at, options.rotate],
  );
  const row = result.rows[0];
  if (row) return toIssue(row);
  // Already issued and kept as it is.
  const issued = await webhookSecretIssue(db, repository, flow);
  if (!issued) throw new Error("issuing a webhook secret returned nothing");
  return issued;
}

/**
 * Remember a delivery id a flow's webhook accepted, in the transaction that starts its
 * run. False when it was seen before: a replay. Ids older than `forgetBefore` (well past
 * the timestamp tolerance, when a replay is refused as stale anyway) are forgotten here.
 */
export async function recordWebhookDelivery(
  db: Queryable,
  delivery: { repository: string; flow: string; id: string; receivedAt: Date; forgetBefore: Date },
): Promise<boolean> {
  await db.query(
    `DELETE FROM flow_webhook_deliveries
      WHERE repository = $1 AND flow = $2 AND received_at < $3`,
    [delivery.repository, delivery.flow, delivery.forgetBefore],
  );
  const result = await db.query(
    `INSERT INTO flow_webhook_deliveries (repository, flow, delivery_id, received_at)
     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING`,
    [delivery.repository, delivery.flow, delivery.id, delivery.receivedAt],
  );
  return result.rowCount > 0;
}

/** The run a delivery started (kept with the delivery id, for people tracing a request). */
export async function setWebhookDeliveryRun(
  db: Queryable,
  delivery: { repository: string; flow: string; id: string; runId: string },
): Promise<void> {
  await db.query(
    `UPDATE flow_webhook_deliveries SET run_id = $4
      WHERE repository = $1 AND flow = $2 AND delivery_id = $3`,
    [delivery.repository, delivery.flow, delivery.id, delivery.runId],
  );
}

export interface WebhookRejection {
  repository: string;
  flow: string;
  /** Why, for people: never the body, never a signature. */
  reason: string;
  remoteAddress: string | undefined;
  receivedAt: Date;
}

export async function recordWebhookRejection(
  db: Queryable,
  rejection: WebhookRejection,
): Promise<void> {
  await db.query(
    `INSERT INTO flow_webhook_rejections (repository, flow, reason, remote_address, received_at)
     VALUES ($1, $2, $3, $4, $5)`,
    [
      rejection.repository,
      rejection.flow,
      rejection.reason,
      rejection.remoteAddress ?? null,
      rejection.receivedAt,
    ],
  );
}

export async function listWebhookRejections(
  db: Queryable,
  repository: string,
  flow: string,
  limit = 50,
): Promise<WebhookRejection[]> {
  const result = await db.query<{
    repository: string;
    flow: string;
    reason: string;
    remote_address: string | null;
    received_at: Date;
  }>(
    `SELECT repository, flow, reason, remote_address, received_at FROM flow_webhook_rejections
      WHERE repository = $1 AND flow = $2 ORDER BY received_at DESC, id DESC LIMIT $3`,
    [repository, flow, limit],
  );
  return result.rows.map((row) => ({
    repository: row.repository,
    flow: row.flow,
    reason: row.reason,
    remoteAddress: row.remote_address ?? undefined,
    receivedAt: new Date(row.received_at),
  }));
}
