/**
 * Recovering missed webhook deliveries. GitHub never redelivers by itself: a delivery that
 * failed (Baton was down, the network dropped it, the inbox answered 503) is lost unless
 * someone asks. At start and every few minutes, one app process (a lease in the database)
 * lists the app's deliveries of the last 3 days (`GET /app/hook/deliveries`, newest
 * first, cursor-paginated) and asks GitHub to redeliver (`POST /app/hook/deliveries/{id}
 * /attempts`) each one whose GUID the inbox has not stored. A redelivery keeps its GUID,
 * so the inbox stores it once whatever happens; each GUID is asked for once
 * (github_redeliveries), so a delivery that keeps failing is not asked for forever.
 *
 * A scan stops at the 3-day horizon (GitHub keeps no older deliveries), or an hour before
 * where the previous complete scan started: the overlap covers deliveries GitHub records
 * late.
 */
import type { Logger } from "../runtime/log.js";
import type { Database } from "../store/database.js";
import type { BackgroundJob } from "./github-app.js";
import type { GitHubClient } from "./github-client.js";
import { defaultWorkerId } from "./process-deliveries.js";

const LEASE = "github-delivery-recovery";
const HORIZON_MS = 3 * 24 * 60 * 60 * 1000;
const OVERLAP_MS = 60 * 60 * 1000;

export interface RecoveryOptions {
  store: Database;
  github: GitHubClient;
  log: Logger;
  /** (Default: Date.now) */
  now?: () => number;
  /** Identifies this process in the lease. (Default: host:pid:random) */
  workerId?: string;
}

export interface RecoveryResult {
  /** Deliveries GitHub listed within the horizon. */
  listed: number;
  /** Redeliveries asked for. */
  redelivered: string[];
  /** False when another process holds the recovery lease. */
  ran: boolean;
}

interface HookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  status_code: number;
}

/** One scan; at most one process scans at a time. */
export async function recoverDeliveries(options: RecoveryOptions): Promise<RecoveryResult> {
  const now = options.now ?? Date.now;
  const workerId = options.workerId ?? defaultWorkerId();
  const startedAt = now();
  const lease = await takeLease(options.store, workerId, startedAt, 10 * 60 * 1000);
  if (!lease) return { listed: 0, redelivered: [], ran: false };
  const stopAt = Math.max(startedAt - HORIZON_MS, (lease.lastScanStartedAt ?? 0) - OVERLAP_MS);
  const result: RecoveryResult = { listed: 0, redelivered: [], ran: true };
  try {
    const octokit = options.github.app();
    // GUIDs to check, with the newest attempt of each (the one to redeliver).
    const latest = new Map<string, HookDelivery>();
    pages: for await (const page of octokit.paginate.iterator("GET /app/hook/deliveries", {
      per_page: 100,
    })) {
      for (const delivery of page.data as HookDelivery[]) {
        if (Date.parse(delivery.delivered_at) < stopAt) break pages;
        result.listed += 1;
        if (!latest.has(delivery.guid)) latest.set(delivery.guid, delivery);
      }
    }
    const unknown = await unknownGuids(options.store, [...latest.keys()]);
    for (const guid of unknown) {
      const delivery = latest.get(guid);
      if (!delivery) continue;
      await octokit.request("POST /app/hook/deliveries/{delivery_id}/attempts", {
        delivery_id: delivery.id,
      });
      await options.store.query(
        `INSERT INTO github_redeliveries (guid, hook_delivery_id, requested_at)
         VALUES ($1, $2, $3) ON CONFLICT (guid) DO NOTHING`,
        [guid, delivery.id, new Date(now())],
      );
      result.redelivered.push(guid);
    }
    if (result.redelivered.length > 0)
      options.log.info("asked GitHub to redeliver missed webhook deliveries", {
        count: result.redelivered.length,
      });
    await releaseLease(options.store, workerId, { lastScanStartedAt: startedAt });
  } catch (error: unknown) {
    await releaseLease(options.store, workerId, undefined);
    throw error;
  }
  return result;
}

/** Recover at start, then every `intervalMs`. (Default: 5 minutes) */
export function startDeliveryRecovery(
  options: RecoveryOptions & { intervalMs?: number },
): BackgroundJob {
  const intervalMs = options.intervalMs ?? 5 * 60 * 1000;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = (): void => {
    running = recoverDeliveries(options)
      .then(() => undefined)
      .catch((error: unknown) => {
        options.log.error("recovering missed webhook deliveries failed; trying again later", {
          error,
        });
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, intervalMs);
      });
  };
  tick();
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}

/** Of `guids`, those neither stored by the inbox nor asked for already. */
async function unknownGuids(store: Database, guids: string[]): Promise<string[]> {
  if (guids.length === 0) return [];
  const result = await store.query<{ guid: string }>(
    `SELECT g.guid FROM unnest($1::text[]) AS g (guid)
      WHERE NOT EXISTS (SELECT 1 FROM github_deliveries AS d WHERE d.id = g.guid)
        AND NOT EXISTS (SELECT 1 FROM github_redeliveries AS r WHERE r.guid = g.guid)`,
    [guids],
  );
  return result.rows.map((row) => row.guid);
}

async function takeLease(
  store: Database,
  workerId: string,
  now: number,
  leaseMs: number,
): Promise<{ lastScanStartedAt?: number } | undefined> {
  const result = await store.query<{ state: { lastScanStartedAt?: number } }>(
    `INSERT INTO background_leases (name, holder, locked_until) VALUES ($1, $2, $3)
     ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, locked_until = excluded.locked_until
       WHERE background_leases.locked_until IS NULL OR background_leases.locked_until < $4
     RETURNING state`,
    [LEASE, workerId, new Date(now + leaseMs), new Date(now)],
  );
  return result.rows[0]?.state;
}

async function releaseLease(
  store: Database,
  workerId: string,
  state: { lastScanStartedAt: number } | undefined,
): Promise<void> {
  await store.query(
    `UPDATE background_leases SET holder = NULL, locked_until = NULL,
            state = coalesce($3::jsonb, state)
      WHERE name = $1 AND holder = $2`,
    [LEASE, workerId, state ? JSON.stringify(state) : null],
  );
}
