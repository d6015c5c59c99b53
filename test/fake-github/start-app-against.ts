/**
 * The app as `npm start` composes it (every part), pointed at a fake GitHub and receiving
 * its webhooks: what the end-to-end suites and the app's benchmarks start.
 */
import { createGitHubClient } from "../../app/github/github-client.js";
import type { PartsOptions } from "../../app/server/parts.js";
import { defaultParts } from "../../app/server/parts.js";
import type { RunningApp } from "../../app/server/start-app.js";
import { startApp } from "../../app/server/start-app.js";
import { silentLogger } from "../../app/runtime/log.js";
import type { Database } from "../../app/store/database.js";
import type { FakeGitHub } from "./server.js";

export interface AppAgainstFakeOptions {
  /** The app's webhook secret; the fake signs with it. */
  secret: string;
  /** Options of the parts; the triggers part ignores `baton[bot]` unless told otherwise. */
  parts?: PartsOptions;
  /** (Default: 0, a free port) */
  port?: number;
  publicUrl?: string;
}

export async function startAppAgainst(
  fake: FakeGitHub,
  store: Database,
  options: AppAgainstFakeOptions,
): Promise<RunningApp> {
  const app = await startApp({
    store,
    github: createGitHubClient({
      appId: fake.appId,
      privateKey: fake.privateKey,
      baseUrl: fake.url,
      throttle: false,
    }),
    webhookSecret: options.secret,
    parts: (app) => defaultParts(app, { triggers: { botLogin: "baton[bot]" }, ...options.parts }),
    log: silentLogger,
    port: options.port ?? 0,
    host: "127.0.0.1",
    recoveryIntervalMs: 0,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
  });
  fake.webhook = { url: `${app.url}/api/github/webhooks`, secret: options.secret };
  return app;
}
