/**
 * `npm start`: Baton as a GitHub App. The webhook inbox at /api/github/webhooks, the run
 * API, the runtime's workers and the background jobs, in one process, on the embedded
 * database unless DATABASE_URL is set.
 *
 * Before the app is registered (no APP_ID), it starts Probot's manifest flow instead:
 * open http://localhost:3000, "Register GitHub App" creates the app from app.yml and
 * writes APP_ID, PRIVATE_KEY and WEBHOOK_SECRET to .env; then `npm start` again.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { run as runProbotSetup } from "probot";
import { stderrLogger } from "../runtime/index.js";
import { openDatabase } from "../store/open-database.js";
import { readAppConfig } from "../github/app-config.js";
import { createGitHubClient } from "../github/github-client.js";
import { defaultParts } from "./parts.js";
import { startApp } from "./start-app.js";

async function main(): Promise<void> {
  const cwd = process.cwd();
  const envFile = resolve(cwd, ".env");
  if (existsSync(envFile)) process.loadEnvFile(envFile);
  const env = process.env;
  if (!env.APP_ID) {
    process.stderr.write(
      "baton: no APP_ID yet: starting Probot's setup. Open http://localhost:" +
        `${env.PORT ?? 3000} and register the app (see README, "Run Baton as a GitHub App").\n`,
    );
    await runProbotSetup(() => {});
    return;
  }
  const read = readAppConfig(env, cwd);
  if (!read.ok) {
    process.stderr.write(
      `baton: cannot start the app:\n${read.problems.map((p) => `  - ${p}`).join("\n")}\n`,
    );
    process.exitCode = 2;
    return;
  }
  const { config } = read;
  const log = stderrLogger;
  const store = await openDatabase({
    env,
    cwd,
    onError: (error) => log.error("database connection error", { error }),
  });
  const github = createGitHubClient({
    appId: config.appId,
    privateKey: config.privateKey,
    baseUrl: config.baseUrl,
  });
  // The app's own bot: events it causes (its check runs, its comments) trigger nothing.
  const { data: self } = await github.app().request("GET /app");
  const botLogin = self?.slug ? `${self.slug}[bot]` : undefined;
  const running = await startApp({
    store,
    github,
    webhookSecret: config.webhookSecret,
    parts: (app) => defaultParts(app, botLogin ? { triggers: { botLogin } } : {}),
    log,
    port: config.port,
    host: config.host,
    ...(config.publicUrl !== undefined ? { publicUrl: config.publicUrl } : {}),
    ...(config.concurrency !== undefined ? { concurrency: config.concurrency } : {}),
  });
  log.info("Baton is running", {
    url: running.url,
    webhooks: `${running.url}/api/github/webhooks`,
    github: config.baseUrl,
    database: store.description,
  });
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    void running
      .stop()
      .then(() => store.close())
      .then(() => process.exit(0));
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
}

await main();
