/**
 * A Baton server in a child process for the runner tests: what `baton serve` and the app
 * put together, without GitHub. The runtime (with the runner task handlers), the runner
 * protocol route (the local token is admin) and the local run API on one HTTP server.
 *
 *   BATON_RUNNERS_DATABASE_URL=postgres://… | BATON_RUNNERS_PGLITE_DIR=/tmp/…
 *   BATON_RUNNERS_LEASE_MS (Default: 30000)
 *   BATON_RUNNERS_CHECKOUT_URL, BATON_RUNNERS_CHECKOUT_SHA: what `checkout: true` clones
 *
 * Prints one JSON line {"url", "token"} when it serves; stops cleanly on SIGTERM.
 */
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createApiRoute } from "../../app/http/api-server.js";
import { runnerTaskHandlers } from "../../app/runners/runner-queue.js";
import { createRunnerRoute, localRunnerAdmin } from "../../app/runners/runner-route.js";
import { stderrLogger } from "../../app/runtime/log.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { finishTask } from "../../app/runtime/task-context.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { migrate } from "../../app/store/migrate.js";
import { openPglite } from "../../app/store/pglite.js";
import { openPostgres } from "../../app/store/postgres.js";

const url = process.env.BATON_RUNNERS_DATABASE_URL;
const dataDir = process.env.BATON_RUNNERS_PGLITE_DIR;
if (url === undefined && dataDir === undefined) {
  process.stderr.write(
    "server-child: BATON_RUNNERS_DATABASE_URL or BATON_RUNNERS_PGLITE_DIR is not set\n",
  );
} else {
  const store: Database = url
    ? openPostgres({ connectionString: url, max: 12 })
    : await openPglite(dataDir ?? "");
  await migrate(store);
  const log = process.env.BATON_TEST_LOG === "1" ? stderrLogger : { ...stderrLogger, info() {} };
  const token = "test-local-token";
  const leaseMs = Number(process.env.BATON_RUNNERS_LEASE_MS ?? 30_000);
  const runtime = startRuntime({
    store,
    concurrency: 8,
    maxIdleMs: 2000,
    handlers: {
      ...runnerTaskHandlers(),
      // Runs with a GitHub place ask for check-run updates; there is no GitHub here.
      "sync-check-run": (ctx, task) => finishTask(ctx, task, () => Promise.resolve()),
    },
    log,
  });
  const checkoutUrl = process.env.BATON_RUNNERS_CHECKOUT_URL;
  const routes = [
    createRunnerRoute({
      store,
      log,
      leaseMs,
      maxWaitMs: 5000,
      admin: localRunnerAdmin(token, "tester"),
      ...(checkoutUrl
        ? {
            checkout: () =>
              Promise.resolve({
                url: checkoutUrl,
                sha: process.env.BATON_RUNNERS_CHECKOUT_SHA ?? "",
                token: "step-token-not-needed-by-file-urls",
              }),
          }
        : {}),
    }),
    createApiRoute({
      service: new BatonService({ store }),
      store,
      auth: { kind: "local", token, defaultActor: "tester" },
      log,
    }),
  ];
  const server = createServer((request, response) => {
    const where = new URL(request.url ?? "/", "http://localhost");
    void (async () => {
      for (const route of routes) if (await route(request, response, where)) return;
      response.writeHead(404).end("{}");
    })().catch((error: unknown) => {
      log.error("request failed", { error });
      if (!response.headersSent) response.writeHead(500);
      response.end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  process.once("SIGTERM", () => {
    server.closeAllConnections();
    server.close();
    void runtime
      .stop({ graceMs: 2000 })
      .then(() => store.close())
      .then(() => process.exit(0));
  });
  process.stdout.write(`${JSON.stringify({ url: `http://127.0.0.1:${port}`, token })}\n`);
}
