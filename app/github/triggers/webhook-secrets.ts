/**
 * Webhook-trigger secrets (DESIGN.md rule 6: Baton's own secrets are stored hashed or
 * signed, never in clear). A flow's secret is derived, not stored:
 *
 *   secret = hex(HMAC-SHA256(key, "<owner>/<repo>/<flow>/<generation>"))
 *
 * The key is BATON_SECRET_KEY when set (then every process must be given the same value),
 * else a random key generated once and kept in `baton_keys` (the first process to insert
 * it wins; the others read it). `flow_webhook_secrets` keeps only the generation:
 * rotating bumps it, and the previous secret stops working at once.
 */
import { createHmac, randomBytes } from "node:crypto";
import type { Queryable } from "../../store/database.js";
import { ensureKey, issueWebhookSecret } from "./triggers-sql.js";

/** The `baton_keys` row the webhook secrets derive from. */
export const WEBHOOK_KEY_NAME = "webhook-secrets";

export interface WebhookSecretOptions {
  /** Issue a new generation; the previous secret stops working. (Default: false) */
  rotate?: boolean;
  /** Who asked (a GitHub login), kept with the generation. */
  by?: string;
  /** (Default: process.env.BATON_SECRET_KEY, else the stored key) */
  key?: string;
  /** The clock. (Default: Date.now) */
  now?: () => number;
}

export interface WebhookSecret {
  /** Hex; give it to the sender, who signs each body with it. */
  secret: string;
  generation: number;
  /** Where to POST: `/api/flows/{owner}/{repo}/{flow}/webhook` (prefix the app's URL). */
  path: string;
}

/**
 * A flow's webhook secret, issuing generation 1 if none was (or the next with `rotate`).
 * For the API and the CLI: the caller checks that the asker is a repository admin.
 */
export async function webhookSecret(
  store: Queryable,
  repository: string,
  flow: string,
  options: WebhookSecretOptions = {},
): Promise<WebhookSecret> {
  const key = await webhookSecretKey(store, options.key);
  const generation = await issueWebhookSecret(store, repository, flow, {
    rotate: options.rotate ?? false,
    by: options.by,
    at: new Date((options.now ?? Date.now)()),
  });
  return {
    secret: deriveWebhookSecret(key, repository, flow, generation),
    generation,
    path: webhookPath(repository, flow),
  };
}

export function webhookPath(repository: string, flow: string): string {
  const [owner = "", repo = ""] = repository.split("/");
  return `/api/flows/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/${encodeURIComponent(flow)}/webhook`;
}

export function deriveWebhookSecret(
  key: string,
  repository: string,
  flow: string,
  generation: number,
): string {
  return createHmac("sha256", key).update(`${repository}/${flow}/${generation}`).digest("hex");
}

/** The key: explicit, else BATON_SECRET_KEY, else the stored one (created on first use). */
export async function webhookSecretKey(store: Queryable, explicit?: string): Promise<string> {
  const configured = explicit ?? process.env.BATON_SECRET_KEY;
  if (configured !== undefined && configured !== "") return configured;
  // A stored key never changes once inserted: read it once per store.
  let key = storedKeys.get(store);
  if (key === undefined) {
    key = await ensureKey(store, WEBHOOK_KEY_NAME, randomBytes(32).toString("hex"));
    storedKeys.set(store, key);
  }
  return key;
}

const storedKeys = new WeakMap<Queryable, string>();

/** `sha256=<hex>` of `body` under `secret`: what a sender puts in X-Baton-Signature-256. */
export function signWebhookBody(secret: string, body: string | Buffer): string {
  return `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
}
