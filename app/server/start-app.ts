/**
 * The GitHub app in one process: the webhook inbox and the parts' HTTP routes on one HTTP
 * server, the delivery worker that hands stored deliveries to the parts, the runtime's
 * workers (steps, timers, check-run updates, GitHub requests of the outbox), and the
 * background jobs (the schedule ticker, the recovery of missed deliveries).
 *
 * Any number of such processes may share one Postgres (docs/architecture.md rule 4): everything
 * they coordinate on is in the database.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import {
  BatonService,
  type Executors,
  layerHandlers,
  type Logger,
  type Runtime,
  startRuntime,
  subRunTask,
  type TaskHandler,
} from "../runtime/index.js";
import type { Executor } from "../runner/executor.js";
import { refusing } from "../runner/executor.js";
import { repositorySubFlows } from "../github/flows/sub-flows.js";
import type { Database } from "../store/database.js";
import type { BackgroundJob, GitHubApp, GitHubAppPart } from "../github/github-app.js";
import { combineEventHandlers } from "../github/github-app.js";
import type { GitHubClient } from "../github/github-client.js";
import { githubStepExecutor } from "../github/github-step.js";
import { GITHUB_WRITE_KINDS, GITHUB_REQUEST, githubRequestTask } from "../github/outbox.js";
import { startDeliveryWorker, type DeliveryWorker } from "../github/process-deliveries.js";
import { startDeliveryRecovery } from "../github/recover-deliveries.js";
import { createWebhookInbox, WEBHOOK_PATH } from "../github/webhook-inbox.js";

export interface StartAppOptions {
  store: Database;
  github: GitHubClient;
  /** The app's webhook secret (WEBHOOK_SECRET). */
  webhookSecret: string;
  /** The parts of the GitHub side, in the order their event handlers run. */
  parts: (app: GitHubApp) => GitHubAppPart[];
  log: Logger;
  /** (Default: 3000) 0 picks a free port. */
  port?: number;
  /** (Default: 0.0.0.0; GitHub must reach the webhook URL) */
  host?: string;
  /** Where people reach the app, for links. (Default: none) */
  publicUrl?: string;
  /** Steps and tasks handled at once by this process. (Default: 8) */
  concurrency?: number;
  /** Recover missed deliveries at start and every this often; 0 turns it off. (Default: 5 minutes) */
  recoveryIntervalMs?: number;
  /**
   * Step executors beside the defaults: `github` with the app's token; `run` and `agent`
   * refused (they go to self-hosted runners, the runners part's handlers, before any
   * executor: the app's host runs no flow code).
   */
  executors?: Executors;
  /** (Default: Date.now) */
  now?: () => number;
}

export interface RunningApp {
  /** The HTTP server's base URL, e.g. http://127.0.0.1:3000. */
  readonly url: string;
  readonly app: GitHubApp;
  readonly runtime: Runtime;
  readonly deliveries: DeliveryWorker;
  stop(): Promise<void>;
}

/**
 * The app's executor for `run` and `agent` steps: none. The runners part sends them to
 * runners before an executor is asked; this answers only an app composed without it,
 * so that flow code never runs on the app's host with the app's environment.
 */
function onRunnersOnly(kind: "run" | "agent"): Executor {
  return refusing(
    `\`${kind}\` steps run on self-hosted runners, never on the app's host, and this app ` +
      "has no runners part (app/runners/runners-part.ts) to send them to one",
  );
}

export async function startApp(options: StartAppOptions): Promise<RunningApp> {
  const now = options.now ?? Date.now;
  const app: GitHubApp = {
    store: options.store,
    service: new BatonService({ store: options.store, now }),
    github: options.github,
    log: options.log,
    now,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
  };
  const parts = options.parts(app);
  // A part given twice would handle every event twice (two runs for one trigger).
  const names = parts.map((part) => part.name);
  const twice = names.filter((name, i) => names.indexOf(name) !== i);
  if (twice.length > 0) throw new Error(`The app's parts are given twice: ${twice.join(", ")}`);
  // A later part's handler of a task kind goes in front of an earlier one's (its `next`).
  const tasks = parts.reduce<Record<string, TaskHandler>>(
    (layered, part) => layerHandlers(layered, part.tasks ?? {}),
    {
      [GITHUB_REQUEST]: githubRequestTask(app),
      // `flow` steps of repository flows: the sub-flow at the parent's commit.
      "start-sub-run": subRunTask(repositorySubFlows(app)),
    },
  );

  const runtime = startRuntime({
    store: options.store,
    concurrency: options.concurrency ?? 8,
    handlers: tasks,
    door: app.service.door,
    // GitHub's writes wait on its pacing: their own lane, never a step's slot.
    lanes: [{ name: "github", kinds: GITHUB_WRITE_KINDS, concurrency: 4 }],
    executors: {
      run: onRunnersOnly("run"),
      agent: onRunnersOnly("agent"),
      github: githubStepExecutor(app),
      ...options.executors,
    },
    log: options.log,
    now,
  });
  const deliveries = startDeliveryWorker({
    store: options.store,
    handlers: combineEventHandlers(app, parts),
    log: options.log,
    now,
  });
  const inbox = createWebhookInbox({
    store: options.store,
    secret: options.webhookSecret,
    onStored: () => deliveries.kick(),
    log: options.log,
    now,
  });
  const routes = parts.flatMap((part) => part.routes ?? []);

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? "/", "http://baton.invalid");
    if (url.pathname === WEBHOOK_PATH) return inbox(request, response);
    if (url.pathname === "/healthz" && request.method === "GET") {
      response.writeHead(200, { "content-type": "application/json" }).end('{"ok":true}');
      return;
    }
    for (const route of routes) if (await route(request, response, url)) return;
    response.writeHead(404, { "content-type": "application/json" });
    response.end(JSON.stringify({ error: `No route for ${request.method} ${url.pathname}` }));
  };
  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      options.log.error("HTTP request failed", { path: request.url, error });
      if (!response.headersSent) response.writeHead(500, { "content-type": "application/json" });
      response.end(JSON.stringify({ error: "Internal error" }));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 3000, options.host ?? "0.0.0.0", () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host === "0.0.0.0" ? "127.0.0.1" : host}:${address.port}`;

  const jobs: BackgroundJob[] = parts.flatMap((part) => (part.start ? [part.start()] : []));
  if ((options.recoveryIntervalMs ?? 1) > 0)
    jobs.push(
      startDeliveryRecovery({
        store: options.store,
        github: options.github,
        log: options.log,
        now,
        ...(options.recoveryIntervalMs !== undefined
          ? { intervalMs: options.recoveryIntervalMs }
          : {}),
      }),
    );

  let stopping: Promise<void> | undefined;
  return {
    url,
    app,
    runtime,
    deliveries,
    stop() {
      stopping ??= (async () => {
        await new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeAllConnections();
        });
        await Promise.all(jobs.map((job) => job.stop()));
        await deliveries.stop();
        await runtime.stop();
      })();
      return stopping;
    },
  };
}
