/**
 * The SQL of recovering missed webhook deliveries (app/github/recover-deliveries.ts): the
 * redelivery requests made of GitHub (github_redeliveries) and the lease that lets one
 * process at a time scan (background_leases).
 */
import type { Queryable } from "./database.js";

/** Record that GitHub was asked to redeliver `guid` (once more). */
export async function recordRedeliveryRequest(
  store: Queryable,
  guid: string,
  hookDeliveryId: number,
  at: Date,
): Promise<void> {
  await store.query(
    `INSERT INTO github_redeliveries (guid, hook_delivery_id, requests, requested_at)
     VALUES ($1, $2, 1, $3)
     ON CONFLICT (guid) DO UPDATE SET hook_delivery_id = excluded.hook_delivery_id,
       requests = github_redeliveries.requests + 1, requested_at = excluded.requested_at`,
    [guid, hookDeliveryId, at],
  );
}

/** Of `guids`, those the inbox has not stored and whose last request (if any) has backed off. */
export async function guidsToRequest(
  store: Queryable,
  guids: string[],
  options: { now: number; maxRequests: number; firstBackoffMs: number },
): Promise<string[]> {
  if (guids.length === 0) return [];
  const result = await store.query<{ guid: string }>(
    `SELECT g.guid FROM unnest($1::text[]) AS g (guid)
       LEFT JOIN github_redeliveries AS r ON r.guid = g.guid
      WHERE NOT EXISTS (SELECT 1 FROM github_deliveries AS d WHERE d.id = g.guid)
        AND (r.guid IS NULL
             OR (r.requests < $2
                 AND r.requested_at <= $3::timestamptz - make_interval(secs => $4 * power(2, r.requests - 1))))`,
    [guids, options.maxRequests, new Date(options.now), options.firstBackoffMs / 1000],
  );
  return result.rows.map((row) => row.guid);
}

/** When the oldest redelivery that may still be asked for again was last asked for. */
export async function oldestRetriedRequest(
  store: Queryable,
  maxRequests: number,
): Promise<number | undefined> {
  const result = await store.query<{ at: Date | null }>(
    `SELECT min(r.requested_at) AS at FROM github_redeliveries AS r
      WHERE r.requests < $1 AND NOT EXISTS (SELECT 1 FROM github_deliveries AS d WHERE d.id = r.guid)`,
    [maxRequests],
  );
  const at = result.rows[0]?.at;
  return at ? at.getTime() : undefined;
}

export async function takeLease(
  store: Queryable,
  name: string,
  workerId: string,
  now: number,
  leaseMs: number,
): Promise<{ lastScanStartedAt?: number } | undefined> {
  const result = await store.query<{ state: { lastScanStartedAt?: number } }>(
    `INSERT INTO background_leases (name, holder, locked_until) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, locked_until = excluded.locked_until
       WHERE background_leases.locked_until IS NULL OR background_leases.locked_until < $4
     RETURNING state`,
    [name, workerId, new Date(now + leaseMs), new Date(now)],
  );
  return result.rows[0]?.state;
}

export async function releaseLease(
  store: Queryable,
  name: string,
  workerId: string,
  state: { lastScanStartedAt: number } | undefined,
): Promise<void> {
  await store.query(
    `UPDATE background_leases SET holder = NULL, locked_until = NULL,
            state = coalesce($3::jsonb, state)
      WHERE name = $1 AND holder = $2`,
    [name, workerId, state ? JSON.stringify(state) : null],
  );
}
