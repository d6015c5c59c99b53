/**
 * Processing stored webhook deliveries: claim one (SKIP LOCKED, with a lease), hand it to
 * the handler registered for its event, mark it processed; on failure retry it later with
 * exponential backoff, up to `maxAttempts`.
 *
 * Exactly once, for database writes: a handler that writes through `ctx.commit(fn)` has
 * `fn` run in the transaction that marks the delivery processed, after checking that
 * this worker still holds it. Either both commit or neither does, so a redelivery, a
 * retry, or a second worker never applies the writes twice.
 *
 * At least once, for everything else: a handler's effects outside `commit` (GitHub calls)
 * may be repeated when it fails after them or loses its lease, so they must be idempotent
 * (key them on the delivery id, or check GitHub's state first).
 *
 * No transaction is held while a handler runs — only inside `commit` — because PGlite
 * has one connection: a handler holding it would stall the inbox's INSERT, and with it
 * the acknowledgement GitHub waits 10 s for.
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { type Logger, stderrLogger } from "../runtime/index.js";
import type { Database, Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import type { Delivery } from "../store/deliveries.js";
import {
  claimDelivery,
  failDelivery,
  finishDelivery,
  nextDeliveryDue,
} from "../store/deliveries.js";
import {
  DeliveryAlreadyCommittedError,
  DeliveryLeaseLostError,
  PermanentDeliveryError,
} from "./errors.js";

export interface DeliveryContext {
  store: Database;
  log: Logger;
  /**
   * Run `fn` in the transaction that marks this delivery processed: its writes commit if
   * and only if the delivery is marked processed by this worker. Call it at most once,
   * last, with every database write of the handler. Throws `DeliveryLeaseLostError` (and
   * rolls back) when another worker has taken the delivery over.
   */
  commit<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
}

/** Handles one delivery of one event; throws to have it retried (see PermanentDeliveryError). */
export type DeliveryHandler = (delivery: Delivery, ctx: DeliveryContext) => Promise<void>;

/** Handlers by event name (X-GitHub-Event, e.g. `pull_request`); filter actions inside. */
export type DeliveryHandlers = Readonly<Partial<Record<string, DeliveryHandler>>>;

export interface RetryPolicy {
  /** Attempts before a delivery is marked failed. (Default: 10) */
  maxAttempts: number;
  /** The delay after the first failure; it doubles with each further one. (Default: 1000 ms) */
  baseDelayMs: number;
  /** The longest delay between attempts. (Default: 300000 ms) */
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 10,
  baseDelayMs: 1000,
  maxDelayMs: 300_000,
};

export interface ProcessDeliveriesOptions {
  store: Database;
  handlers: DeliveryHandlers;
  /** Identifies this worker in `locked_by`. (Default: host:pid:random) */
  workerId?: string;
  /** Process at most this many deliveries in this call. (Default: 100) */
  limit?: number;
  /** How long a claim holds: a crashed worker's delivery waits this long. (Default: 60000 ms) */
  leaseMs?: number;
  /** (Default: DEFAULT_RETRY) */
  retry?: Partial<RetryPolicy>;
  /** (Default: one line per message on stderr) */
  log?: Logger;
  /** The clock. (Default: Date.now) */
  now?: () => number;
  /** Claim nothing more once aborted; the delivery in hand is finished. (Default: none) */
  signal?: AbortSignal;
}

export interface ProcessDeliveriesResult {
  processed: number;
  /** Deliveries of an event with no handler. */
  ignored: number;
  /** Failed attempts that will be retried. */
  retried: number;
  /** Deliveries given up on. */
  failed: number;
  /** Deliveries another worker took over while this one handled them. */
  lost: number;
}

export function defaultWorkerId(): string {
  return `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
}

/** The delay before attempt `attempts + 1`, after `attempts` failures. */
export function retryDelayMs(policy: RetryPolicy, attempts: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempts - 1));
}

/**
 * Process the due pending deliveries, one at a time in the order they are due, until none
 * is left or `limit` is reached. Safe to call from any number of processes at once.
 */
export async function processDeliveries(
  options: ProcessDeliveriesOptions,
): Promise<ProcessDeliveriesResult> {
  const store = options.store;
  const log = options.log ?? stderrLogger;
  const now = options.now ?? Date.now;
  const workerId = options.workerId ?? defaultWorkerId();
  const leaseMs = options.leaseMs ?? 60_000;
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...options.retry };
  const result: ProcessDeliveriesResult = {
    processed: 0,
    ignored: 0,
    retried: 0,
    failed: 0,
    lost: 0,
  };

  for (let handled = 0; handled < (options.limit ?? 100); handled++) {
    if (options.signal?.aborted) break;
    const at = now();
    const delivery = await claimDelivery(store, workerId, new Date(at), new Date(at + leaseMs));
    if (!delivery) break;
    const fields = { id: delivery.id, event: delivery.event, attempt: delivery.attempts };
    const handler = options.handlers[delivery.event];
    if (!handler) {
      if (await finishDelivery(store, delivery.id, workerId, "ignored", new Date(now())))
        result.ignored += 1;
      else result.lost += 1;
      continue;
    }

    // An object, not a variable: it changes inside `commit`, behind the compiler's back.
    const commitState: { value: "none" | "started" | "committed" } = { value: "none" };
    const ctx: DeliveryContext = {
      store,
      log,
      commit: async <T>(fn: (tx: Transaction) => Promise<T>): Promise<T> => {
        if (commitState.value !== "none") throw new DeliveryAlreadyCommittedError(delivery.id);
        commitState.value = "started";
        const value = await store.transaction(async (tx) => {
          // Marked first: the row lock then keeps any other worker out until we commit.
          if (!(await finishDelivery(tx, delivery.id, workerId, "processed", new Date(now()))))
            throw new DeliveryLeaseLostError(delivery.id, workerId);
          return fn(tx);
        });
        commitState.value = "committed";
        return value;
      },
    };

    try {
      await handler(delivery, ctx);
      if (commitState.value === "started")
        // The handler swallowed its commit's failure: the writes were rolled back, so the
        // delivery is not done.
        throw new Error("The handler's commit() failed and the handler did not rethrow");
      if (
        commitState.value === "none" &&
        !(await finishProcessed(store, delivery.id, workerId, now))
      )
        throw new DeliveryLeaseLostError(delivery.id, workerId);
      result.processed += 1;
    } catch (error: unknown) {
      if (error instanceof DeliveryLeaseLostError) {
        log.warn("webhook delivery taken over by another worker", { ...fields, workerId });
        result.lost += 1;
        continue;
      }
      if (commitState.value === "committed") {
        // Its writes and the mark committed together: the delivery is done and is not
        // retried (that would repeat the writes). What failed after must not be lost.
        log.error("webhook handler failed after its commit; the delivery stays processed", {
          ...fields,
          error,
        });
        result.processed += 1;
        continue;
      }
      const permanent = error instanceof PermanentDeliveryError;
      const giveUp = permanent || delivery.attempts >= retry.maxAttempts;
      const retryAt = giveUp ? undefined : new Date(now() + retryDelayMs(retry, delivery.attempts));
      const message = describe(error);
      const recorded = await failDelivery(
        store,
        delivery.id,
        workerId,
        message,
        new Date(now()),
        retryAt,
      );
      if (!recorded) {
        result.lost += 1;
        continue;
      }
      if (giveUp) {
        log.error("webhook delivery failed; giving up", { ...fields, permanent, error });
        result.failed += 1;
      } else {
        log.warn("webhook delivery failed; will retry", { ...fields, retryAt, error });
        result.retried += 1;
      }
    }
  }
  return result;
}

function finishProcessed(
  store: Database,
  id: string,
  workerId: string,
  now: () => number,
): Promise<boolean> {
  return finishDelivery(store, id, workerId, "processed", new Date(now()));
}

/** The error as stored in `last_error`: name, message and causes, capped. */
function describe(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    parts.push(
      current instanceof Error ? `${current.name}: ${current.message}` : JSON.stringify(current),
    );
    current = current instanceof Error ? current.cause : undefined;
  }
  return parts.join(" <- ").slice(0, 2000);
}

export interface DeliveryWorkerOptions extends ProcessDeliveriesOptions {
  /**
   * The longest sleep between looks at the inbox. A delivery stored by this process wakes
   * the worker at once (`kick`), one stored by another process through a notification
   * (Postgres); this is the fallback if a notification is lost. (Default: 30000 ms)
   */
  pollMs?: number;
}

export interface DeliveryWorker {
  readonly workerId: string;
  /** Look at the inbox now (the inbox's `onStored`). */
  kick(): void;
  /** Stop after the delivery in hand, if any. */
  stop(): Promise<void>;
}

/** A loop around `processDeliveries`: runs when kicked, when a retry is due, and every `pollMs`. */
export function startDeliveryWorker(options: DeliveryWorkerOptions): DeliveryWorker {
  const log = options.log ?? stderrLogger;
  const now = options.now ?? Date.now;
  const pollMs = options.pollMs ?? 30_000;
  const workerId = options.workerId ?? defaultWorkerId();
  let stopped = false;
  const stopping = new AbortController();
  let kicked = false;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;

  const loop = async (): Promise<void> => {
    while (!stopped) {
      kicked = false;
      let sleepMs = pollMs;
      try {
        await processDeliveries({ ...options, workerId, log, signal: stopping.signal });
        const due = await nextDeliveryDue(options.store);
        if (due) sleepMs = Math.max(0, Math.min(pollMs, due.getTime() - now()));
      } catch (error: unknown) {
        // The database is unreachable or similar: keep the loop alive, try again later.
        log.error("webhook delivery worker failed; retrying", { workerId, error });
      }
      if (stopped || kicked) continue;
      await new Promise<void>((resolve) => {
        wake = resolve;
        timer = setTimeout(resolve, sleepMs);
      });
      clearTimeout(timer);
      wake = undefined;
    }
  };
  const kick = (): void => {
    kicked = true;
    wake?.();
  };
  const listening = options.store.listen(CHANNELS.deliveries, kick).catch((error: unknown) => {
    log.warn("cannot listen for stored deliveries; polling instead", { error });
    return undefined;
  });
  const running = loop();

  return {
    workerId,
    kick,
    async stop() {
      stopped = true;
      stopping.abort();
      wake?.();
      await running;
      await (
        await listening
      )?.();
    },
  };
}
