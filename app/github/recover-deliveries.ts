/**
 * Recovering missed webhook deliveries. GitHub never redelivers by itself: a delivery that
 * failed (Baton was down, the network dropped it, the inbox answered 503) is lost unless
 * someone asks. At start and every few minutes, one app process (a lease in the database)
 * lists the app's deliveries of the last 3 days (`GET /app/hook/deliveries`, newest
 * first, cursor-paginated) and asks GitHub to redeliver (`POST /app/hook/deliveries/{id}
 * /attempts`) each one whose GUID the inbox has not stored. A redelivery keeps its GUID,
 * so the inbox stores it once whatever happens. A GUID whose redelivery failed too (the
 * app was still unreachable) is asked for again after 10 minutes, then 20, 40, 80: five
 * requests at most (github_redeliveries), so a delivery that cannot succeed is not asked
 * for forever.
 *
 * A scan stops at the 3-day horizon (GitHub keeps no older deliveries), or an hour before
 * where the previous complete scan started (the overlap covers deliveries GitHub records
 * late), or an hour before the oldest redelivery still being retried was asked for (its
 * newest attempt is listed from then on), whichever is older.
 */
import type { Logger } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import {
  guidsToRequest,
  oldestRetriedRequest,
  recordRedeliveryRequest,
  releaseLease,
  takeLease,
} from "../store/redeliveries.js";
import type { BackgroundJob } from "./github-app.js";
import type { GitHubClient } from "./github-client.js";
import { defaultWorkerId } from "./process-deliveries.js";

const LEASE = "github-delivery-recovery";
const HORIZON_MS = 3 * 24 * 60 * 60 * 1000;
const OVERLAP_MS = 60 * 60 * 1000;
const MAX_REQUESTS = 5;
const FIRST_BACKOFF_MS = 10 * 60 * 1000;

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
  const lease = await takeLease(options.store, LEASE, workerId, startedAt, 10 * 60 * 1000);
  if (!lease) return { listed: 0, redelivered: [], ran: false };
  const retrying = await oldestRetriedRequest(options.store, MAX_REQUESTS);
  const stopAt = Math.max(
    startedAt - HORIZON_MS,
    Math.min(lease.lastScanStartedAt ?? 0, retrying ?? Infinity) - OVERLAP_MS,
  );
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
    const unknown = await guidsToRequest(options.store, [...latest.keys()], {
      now: now(),
      maxRequests: MAX_REQUESTS,
      firstBackoffMs: FIRST_BACKOFF_MS,
    });
    for (const guid of unknown) {
      const delivery = latest.get(guid);
      if (!delivery) continue;
      await octokit.request("POST /app/hook/deliveries/{delivery_id}/attempts", {
        delivery_id: delivery.id,
      });
      await recordRedeliveryRequest(options.store, guid, delivery.id, new Date(now()));
      result.redelivered.push(guid);
    }
    if (result.redelivered.length > 0)
      options.log.info("asked GitHub to redeliver missed webhook deliveries", {
        count: result.redelivered.length,
      });
    await releaseLease(options.store, LEASE, workerId, { lastScanStartedAt: startedAt });
  } catch (error: unknown) {
    await releaseLease(options.store, LEASE, workerId, undefined);
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
