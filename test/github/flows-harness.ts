/**
 * The flows part wired as the app wires it, against the fake GitHub: signed webhooks
 * into the real inbox, deliveries processed by `processDeliveries` through
 * `combineEventHandlers(app, [flowsPart(app)])`, tasks (the check runs, the outbox's
 * replies) run by the real runtime. `drain()` processes what is stored and waits for
 * those tasks, so a test can look at the outcome; deliveries are processed only when
 * the test asks, so it decides their order.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { GitHubApp, GitHubAppPart } from "../../app/github/github-app.js";
import { combineEventHandlers } from "../../app/github/github-app.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { FLOWS_CHECK_RUN, flowsPart } from "../../app/github/flows/flows-part.js";
import { GITHUB_REQUEST, githubRequestTask } from "../../app/github/outbox.js";
import type { DeliveryHandlers } from "../../app/github/process-deliveries.js";
import { processDeliveries } from "../../app/github/process-deliveries.js";
import { createWebhookInbox } from "../../app/github/webhook-inbox.js";
import { silentLogger } from "../../app/runtime/log.js";
import type { Runtime } from "../../app/runtime/runtime.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import { finishTask } from "../../app/runtime/task-context.js";
import { SYNC_CHECK_RUN } from "../../app/runtime/task-kinds.js";
import type { Database } from "../../app/store/database.js";
import type { FakeGitHubOptions } from "../fake-github/server.js";
import { FakeGitHub } from "../fake-github/server.js";

const SECRET = "flows harness secret";

export interface FlowsHarness {
  fake: FakeGitHub;
  store: Database;
  app: GitHubApp;
  part: GitHubAppPart;
  handlers: DeliveryHandlers;
  /** Process every stored delivery, then wait until no check-run or reply task is left. */
  drain(): Promise<void>;
  stop(): Promise<void>;
}

export async function startFlowsHarness(
  store: Database,
  options: FakeGitHubOptions = {},
): Promise<FlowsHarness> {
  const fake = await FakeGitHub.start(options);
  const github = createGitHubClient({
    appId: fake.appId,
    privateKey: fake.privateKey,
    baseUrl: fake.url,
    throttle: false,
  });
  const app: GitHubApp = {
    store,
    service: new BatonService({ store }),
    github,
    log: silentLogger,
    now: Date.now,
  };
  const part = flowsPart(app);
  const handlers = combineEventHandlers(app, [part]);
  const inbox = createWebhookInbox({ store, secret: SECRET, log: silentLogger });
  const server: Server = createServer((request, response) => void inbox(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  fake.webhook = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
    secret: SECRET,
  };
  const runtime: Runtime = startRuntime({
    store,
    log: silentLogger,
    handlers: {
      ...part.tasks,
      [GITHUB_REQUEST]: githubRequestTask(app),
      // The run history part renders runs' check runs; not under test here.
      [SYNC_CHECK_RUN]: (ctx, task) => finishTask(ctx, task, async () => {}),
    },
  });

  return {
    fake,
    store,
    app,
    part,
    handlers,
    async drain() {
      for (;;) {
        const result = await processDeliveries({
          store,
          handlers,
          log: silentLogger,
          retry: { maxAttempts: 1 },
        });
        if (result.processed + result.ignored + result.failed + result.retried === 0) break;
      }
      const failed = await store.query<{ id: string; event: string; last_error: string }>(
        "SELECT id, event, last_error FROM github_deliveries WHERE status NOT IN ('processed', 'ignored')",
      );
      assert.deepEqual(failed.rows, [], "every delivery is processed");
      const deadline = Date.now() + 10_000;
      for (;;) {
        const left = await store.query<{ kind: string; last_error: string | null }>(
          "SELECT kind, last_error FROM tasks WHERE kind = ANY($1::text[])",
          [[FLOWS_CHECK_RUN, GITHUB_REQUEST]],
        );
        if (left.rows.length === 0) return;
        if (left.rows.some((row) => row.last_error !== null) || Date.now() > deadline)
          assert.fail(`tasks left: ${JSON.stringify(left.rows)}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    async stop() {
      await runtime.stop({ graceMs: 1000 });
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fake.stop();
    },
  };
}

/** Baton's replies (the fake also keeps the comments people made). */
export function botComments(fake: FakeGitHub): string[] {
  return fake.comments.filter((c) => c.user === "baton[bot]").map((c) => c.body);
}

export function flowsChecks(fake: FakeGitHub, sha: string): FakeGitHub["checkRuns"] {
  return fake.checkRuns.filter((run) => run.name === "baton / flows" && run.head_sha === sha);
}
