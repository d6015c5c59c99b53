/** The GitHub app's configuration, read from its environment (and .env). */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { githubBaseUrl } from "./github-client.js";

export interface AppConfig {
  appId: string;
  privateKey: string;
  webhookSecret: string;
  baseUrl: string;
  port: number;
  host: string;
  publicUrl?: string;
  concurrency?: number;
}

/** The app's configuration from its environment, or what is missing or wrong. */
export function readAppConfig(
  env: NodeJS.ProcessEnv,
  cwd: string,
): { ok: true; config: AppConfig } | { ok: false; problems: string[] } {
  const problems: string[] = [];
  const appId = env.APP_ID?.trim() ?? "";
  if (!/^\d+$/.test(appId)) problems.push(`APP_ID must be the app's numeric id, not "${appId}".`);
  let privateKey = env.PRIVATE_KEY?.trim() ?? "";
  if (privateKey === "" && env.PRIVATE_KEY_PATH) {
    const path = resolve(cwd, env.PRIVATE_KEY_PATH);
    if (existsSync(path)) privateKey = readFileSync(path, "utf8");
    else problems.push(`PRIVATE_KEY_PATH names ${path}, which does not exist.`);
  }
  // .env files often hold the key on one line with literal \n.
  privateKey = privateKey.replace(/\\n/g, "\n");
  if (!privateKey.includes("PRIVATE KEY-----"))
    problems.push("PRIVATE_KEY (or PRIVATE_KEY_PATH) must hold the app's PEM private key.");
  const webhookSecret = env.WEBHOOK_SECRET ?? "";
  if (webhookSecret === "")
    problems.push(
      "WEBHOOK_SECRET must be the app's webhook secret (deliveries are verified with it).",
    );
  const port = Number(env.PORT ?? 3000);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    problems.push(`PORT must be a port number, not "${env.PORT}".`);
  const concurrency = env.BATON_CONCURRENCY ? Number(env.BATON_CONCURRENCY) : undefined;
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0))
    problems.push(`BATON_CONCURRENCY must be a positive integer, not "${env.BATON_CONCURRENCY}".`);
  if (problems.length > 0) return { ok: false, problems };
  return {
    ok: true,
    config: {
      appId,
      privateKey,
      webhookSecret,
      baseUrl: githubBaseUrl(env),
      port,
      host: env.HOST || "0.0.0.0",
      ...(env.BATON_PUBLIC_URL ? { publicUrl: env.BATON_PUBLIC_URL.replace(/\/+$/, "") } : {}),
      ...(concurrency !== undefined ? { concurrency } : {}),
    },
  };
}
