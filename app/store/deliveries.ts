/**
 * The SQL of the webhook inbox (tables from migration 3), one function per statement.
 * Kept here, beside its only user, until the store's files are free to change; it speaks
 * only through the store's `Queryable`, parameterised, so it moves into app/store as is.
 *
 * Row types are snake_case (`DbDelivery`); `Delivery` is what handlers see.
 */
import type { Queryable } from "./database.js";
import { CHANNELS } from "./database.js";

export const DELIVERY_STATUSES = ["pending", "processed", "failed", "ignored"] as const;
/**
 * - pending:   stored, waiting for a worker (its first attempt, or a retry at `run_at`).
 * - processed: a handler finished it.
 * - failed:    the handler failed `maxAttempts` times, or threw a permanent error.
 * - ignored:   no handler is registered for its event.
 */
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

export interface DbDelivery {
  id: string;
  event: string;
  action: string | null;
  installation_id: number | string | bigint | null;
  hook_id: number | string | bigint | null;
  received_at: Date;
  payload: unknown;
  status: DeliveryStatus;
  attempts: number;
  last_error: string | null;
  run_at: Date;
  locked_by: string | null;
  locked_until: Date | null;
  finished_at: Date | null;
}

/** A stored webhook delivery, as handlers see it. */
export interface Delivery {
  /** X-GitHub-Delivery: the same on a redelivery. */
  id: string;
  /** X-GitHub-Event, e.g. `pull_request`. */
  event: string;
  /** `payload.action`, e.g. `opened`, when the event has one. */
  action: string | undefined;
  installationId: number | undefined;
  hookId: number | undefined;
  receivedAt: Date;
  payload: Record<string, unknown>;
  status: DeliveryStatus;
  /** Attempts so far, this one included once claimed. */
  attempts: number;
  lastError: string | undefined;
}

/** int8 arrives as a number (pg, with Baton's parser), a string or a bigint (PGlite). */
function toNumber(value: number | string | bigint | null): number | undefined {
  return value === null ? undefined : Number(value);
}

export function toDelivery(row: DbDelivery): Delivery {
  return {
    id: row.id,
    event: row.event,
    action: row.action ?? undefined,
    installationId: toNumber(row.installation_id),
    hookId: toNumber(row.hook_id),
    receivedAt: row.received_at,
    payload: row.payload as Record<string, unknown>,
    status: row.status,
    attempts: row.attempts,
    lastError: row.last_error ?? undefined,
  };
}

export interface NewDelivery {
  id: string;
  event: string;
  action: string | undefined;
  installationId: number | undefined;
  hookId: number | undefined;
  receivedAt: Date;
  /** The payload as JSON text (stored as jsonb). */
  payloadJson: string;
}

/**
 * Store a delivery unless one with its id exists. Returns false for a redelivery.
 * On Postgres the same statement notifies `CHANNELS.deliveries`, waking the delivery
 * workers of every process (PGlite has one process, whose inbox wakes its worker).
 */
export async function insertDelivery(db: Queryable, delivery: NewDelivery): Promise<boolean> {
  const result = await db.query(
    `WITH stored AS (
       INSERT INTO github_deliveries (id, event, action, installation_id, hook_id, received_at, payload, run_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb, $6)
       ON CONFLICT (id) DO NOTHING
       RETURNING id
     )
     SELECT pg_notify('${CHANNELS.deliveries}', id) FROM stored`,
    [
      delivery.id,
      delivery.event,
      delivery.action ?? null,
      delivery.installationId ?? null,
      delivery.hookId ?? null,
      delivery.receivedAt,
      delivery.payloadJson,
    ],
  );
  return result.rowCount > 0;
}

/**
 * `insertDelivery` for many deliveries in one statement (the inbox groups the deliveries
 * that arrive while a write is in flight). Returns the ids it stored; an id already
 * stored, or given twice, is stored once.
 */
export async function insertDeliveries(
  db: Queryable,
  deliveries: readonly NewDelivery[],
): Promise<Set<string>> {
  const result = await db.query<{ id: string }>(
    `WITH stored AS (
       INSERT INTO github_deliveries (id, event, action, installation_id, hook_id, received_at, payload, run_at)
       SELECT d.id, d.event, d.action, d.installation_id, d.hook_id, d.received_at, d.payload::jsonb, d.received_at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::timestamptz[], $7::text[])
           AS d (id, event, action, installation_id, hook_id, received_at, payload)
       ON CONFLICT (id) DO NOTHING
       RETURNING id
     )
     SELECT id, pg_notify('${CHANNELS.deliveries}', id) FROM stored`,
    [
      deliveries.map((d) => d.id),
      deliveries.map((d) => d.event),
      deliveries.map((d) => d.action ?? null),
      deliveries.map((d) => d.installationId ?? null),
      deliveries.map((d) => d.hookId ?? null),
      deliveries.map((d) => d.receivedAt),
      deliveries.map((d) => d.payloadJson),
    ],
  );
  return new Set(result.rows.map((row) => row.id));
}

export interface NewRejection {
  deliveryId: string | undefined;
  event: string | undefined;
  reason: string;
  remoteAddress: string | undefined;
  receivedAt: Date;
}

export async function insertRejection(db: Queryable, rejection: NewRejection): Promise<void> {
  await db.query(
    `INSERT INTO github_delivery_rejections (delivery_id, event, reason, remote_address, received_at)
     VALUES ($1, $2, $3, $4, $5)`,
    [
      rejection.deliveryId ?? null,
      rejection.event ?? null,
      rejection.reason,
      rejection.remoteAddress ?? null,
      rejection.receivedAt,
    ],
  );
}

/**
 * Claim the oldest due pending delivery for `workerId` until `leaseUntil`, counting an
 * attempt. SKIP LOCKED lets any number of workers claim at once without waiting on each
 * other; a delivery whose lease has expired (its worker died) is claimable again.
 */
export async function claimDelivery(
  db: Queryable,
  workerId: string,
  now: Date,
  leaseUntil: Date,
): Promise<Delivery | undefined> {
  const result = await db.query<DbDelivery>(
    `UPDATE github_deliveries
        SET locked_by = $1, locked_until = $3, attempts = attempts + 1
      WHERE id = (
        SELECT id FROM github_deliveries
         WHERE status = 'pending' AND run_at <= $2
           AND (locked_until IS NULL OR locked_until <= $2)
         ORDER BY run_at, received_at
         LIMIT 1
         FOR UPDATE SKIP LOCKED)
      RETURNING *`,
    [workerId, now, leaseUntil],
  );
  const row = result.rows[0];
  return row ? toDelivery(row) : undefined;
}

/**
 * Finish a claimed delivery (processed or ignored), only if `workerId` still holds it.
 * Returns false when it does not (its lease expired and another worker took it over):
 * the caller must then roll back whatever it did in the same transaction.
 */
export async function finishDelivery(
  db: Queryable,
  id: string,
  workerId: string,
  status: "processed" | "ignored",
  now: Date,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE github_deliveries
        SET status = $3, finished_at = $4, locked_by = NULL, locked_until = NULL
      WHERE id = $1 AND locked_by = $2 AND status = 'pending'`,
    [id, workerId, status, now],
  );
  return result.rowCount > 0;
}

/**
 * Record a failed attempt: retry at `retryAt`, or give up (`failed`) when `retryAt` is
 * undefined. Only if `workerId` still holds the delivery; returns whether it did.
 */
export async function failDelivery(
  db: Queryable,
  id: string,
  workerId: string,
  error: string,
  now: Date,
  retryAt: Date | undefined,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE github_deliveries
        SET status = CASE WHEN $5::timestamptz IS NULL THEN 'failed' ELSE 'pending' END,
            run_at = COALESCE($5::timestamptz, run_at),
            finished_at = CASE WHEN $5::timestamptz IS NULL THEN $4::timestamptz END,
            last_error = $3, locked_by = NULL, locked_until = NULL
      WHERE id = $1 AND locked_by = $2 AND status = 'pending'`,
    [id, workerId, error, now, retryAt ?? null],
  );
  return result.rowCount > 0;
}

/** When the next pending delivery is due (its run_at, or its lease's end), if any. */
export async function nextDeliveryDue(db: Queryable): Promise<Date | undefined> {
  const result = await db.query<{ due: Date | null }>(
    `SELECT min(GREATEST(run_at, COALESCE(locked_until, run_at))) AS due
       FROM github_deliveries WHERE status = 'pending'`,
  );
  return result.rows[0]?.due ?? undefined;
}

export async function getDelivery(db: Queryable, id: string): Promise<Delivery | undefined> {
  const result = await db.query<DbDelivery>("SELECT * FROM github_deliveries WHERE id = $1", [id]);
  const row = result.rows[0];
  return row ? toDelivery(row) : undefined;
}
