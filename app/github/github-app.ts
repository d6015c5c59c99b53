/**
 * The GitHub side of Baton, as its parts see it: one `GitHubApp` (the store, the run
 * service, GitHub clients, the clock, the logger) and, per part, handlers of webhook
 * events, task kinds and HTTP routes that `app/server/start-app.ts` puts together.
 *
 * Webhook events. Several parts handle the same event (a `push` reloads flows, then
 * starts the runs it triggers), and a delivery's database writes must commit exactly
 * once, together with the delivery being marked processed. So an `EventHandler` reads
 * what it needs (from GitHub, from the store) and returns its writes as a `Write`; the
 * writes of every part run in order in one transaction (`combineEventHandlers`). GitHub
 * calls made before the commit run at least once (keep them idempotent); GitHub writes
 * that should happen once the writes commit go through the outbox (`enqueueGitHubRequest`
 * in app/github/outbox.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { BatonService, Logger, TaskHandler } from "../runtime/index.js";
import type { Database, Transaction } from "../store/database.js";
import type { Delivery } from "../store/deliveries.js";
import type { GitHubClient } from "./github-client.js";
import type { DeliveryHandlers } from "./process-deliveries.js";

export interface GitHubApp {
  store: Database;
  service: BatonService;
  github: GitHubClient;
  log: Logger;
  /** The clock. */
  now(): number;
  /**
   * Where people reach this app (links in check runs and comments), e.g.
   * https://baton.example.com. (Default: none; links are left out)
   */
  publicUrl?: string;
}

/** A stored webhook delivery, as the handlers see it. */
export interface GitHubEvent {
  /** X-GitHub-Delivery. */
  id: string;
  /** X-GitHub-Event, e.g. `pull_request`. */
  name: string;
  /** `payload.action`, e.g. `opened`. */
  action: string | undefined;
  installationId: number | undefined;
  /** The webhook payload, as GitHub sent it (shapes: @octokit/webhooks-types). */
  payload: Record<string, unknown>;
}

/** Database writes of one handler, run in the delivery's commit transaction. */
export type Write = (tx: Transaction) => Promise<void>;

/** Reads what it needs and returns its writes (or nothing). Throw to have the delivery retried. */
export type EventHandler = (event: GitHubEvent, app: GitHubApp) => Promise<Write | undefined>;

/** A part's event handlers by event name (`push`) or event and action (`check_run.requested_action`). */
export type EventHandlers = Readonly<Partial<Record<string, EventHandler>>>;

/** A route of the app's HTTP server: `handle` answers, or returns false to pass. */
export type HttpRoute = (
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
) => Promise<boolean>;

/** Something that runs in the background while the app runs (a ticker, a recovery loop). */
export interface BackgroundJob {
  stop(): Promise<void>;
}

/** What one part of the GitHub side contributes. Every field is optional. */
export interface GitHubAppPart {
  name: string;
  events?: EventHandlers;
  /** Task handlers by task kind (e.g. `sync-check-run`), run by the runtime's workers. */
  tasks?: Readonly<Record<string, TaskHandler>>;
  routes?: readonly HttpRoute[];
  start?: () => BackgroundJob;
}

/**
 * The delivery handlers of all parts: for each event, every part's handler for the event
 * and for `event.action`, in the parts' order; their writes commit in one transaction.
 */
export function combineEventHandlers(
  app: GitHubApp,
  parts: readonly GitHubAppPart[],
): DeliveryHandlers {
  const names = new Set(parts.flatMap((part) => Object.keys(part.events ?? {})));
  const byEvent: Record<string, DeliveryHandlers[string]> = {};
  for (const eventName of new Set([...names].map((name) => name.split(".")[0] ?? name))) {
    byEvent[eventName] = async (delivery, ctx) => {
      const event = toGitHubEvent(delivery);
      const writes: Write[] = [];
      for (const part of parts) {
        for (const key of [event.name, `${event.name}.${event.action ?? ""}`]) {
          const handler = part.events?.[key];
          if (!handler) continue;
          const write = await handler(event, app);
          if (write) writes.push(write);
        }
      }
      await ctx.commit(async (tx) => {
        for (const write of writes) await write(tx);
      });
    };
  }
  return byEvent;
}

export function toGitHubEvent(delivery: Delivery): GitHubEvent {
  return {
    id: delivery.id,
    name: delivery.event,
    action: delivery.action,
    installationId: delivery.installationId,
    payload: delivery.payload,
  };
}
