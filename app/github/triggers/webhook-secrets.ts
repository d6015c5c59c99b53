/**
 * Webhook-trigger secrets (docs/architecture.md rule 6: Baton's own secrets are stored hashed or
 * signed, never in clear). A flow's secret is derived, not stored:
 *
 *   secret = hex(HMAC-SHA256(key, "repository-id:<GitHub id>/<flow>/<generation>"))
 *
 * bound to the repository by its GitHub id (rule 12), so that a repository which later
 * takes the name (after a rename or a transfer) shares nothing with the one that had it.
 * Secrets issued before migration 12 were derived from the name,
 * `"<owner>/<repo>/<flow>/<generation>"`, and keep working until rotated; they too are
 * valid only for the repository id they were issued to.
 *
 * The key is BATON_SECRET_KEY when set (then every process must be given the same value),
 * else a random key generated once and kept in `baton_keys` (the first process to insert
 * it wins; the others read it). `flow_webhook_secrets` keeps only the generation:
 * rotating bumps it, and the previous secret stops working at once.
 */
import { createHmac, randomBytes, randomUUID } from "node:crypto";
import type { Queryable } from "../../store/database.js";
import { ensureKey, issueWebhookSecret } from "../../store/triggers.js";

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
  const issued = await issueWebhookSecret(store, repository, flow, {
    rotate: options.rotate ?? false,
    by: options.by,
    at: new Date((options.now ?? Date.now)()),
  });
  return {
    secret: deriveWebhookSecret(key, { repository, flow, ...issued }),
    generation: issued.generation,
    path: webhookPath(repository, flow),
  };
}

export function webhookPath(repository: string, flow: string): string {
  const [owner = "", repo = ""] = repository.split("/");
  return `/api/flows/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/${encodeURIComponent(flow)}/webhook`;
}

/** What a flow's secret derives from: its row in `flow_webhook_secrets`. */
export interface SecretIssue {
  repository: string;
  flow: string;
  generation: number;
  /** `repository-id`: bound to the GitHub id; `name`: issued before migration 12. */
  derivation: "name" | "repository-id";
  repositoryId: number | undefined;
}

export function deriveWebhookSecret(key: string, issue: SecretIssue): string {
  const subject =
    issue.derivation === "repository-id" && issue.repositoryId !== undefined
      ? `repository-id:${issue.repositoryId}/${issue.flow}/${issue.generation}`
      : `${issue.repository}/${issue.flow}/${issue.generation}`;
  return createHmac("sha256", key).update(subject).digest("hex");
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

/** The headers of a signed webhook trigger. */
export const WEBHOOK_SIGNATURE_HEADER = "x-baton-signature-256";
export const WEBHOOK_TIMESTAMP_HEADER = "x-baton-timestamp";
export const WEBHOOK_DELIVERY_HEADER = "x-baton-delivery";

/** A delivery id: what a sender names one request by (a UUID will do). */
export const DELIVERY_ID = /^[A-Za-z0-9._-]{1,100}$/;

/**
 * What is signed: `v1:<timestamp>:<delivery>:<body>`, the timestamp in Unix seconds and
 * the body's exact bytes. The delivery id has no `:`, so the parts cannot be shifted.
 */
export function webhookSignedPrefix(timestamp: string, delivery: string): string {
  return `v1:${timestamp}:${delivery}:`;
}

/** `sha256=<hex>`: what a sender puts in X-Baton-Signature-256. */
export function signWebhookPayload(
  secret: string,
  timestamp: string,
  delivery: string,
  body: string | Buffer,
): string {
  return `sha256=${createHmac("sha256", secret)
    .update(webhookSignedPrefix(timestamp, delivery))
    .update(body)
    .digest("hex")}`;
}

/**
 * The three headers of a webhook trigger for `body`, signed with the flow's secret:
 * now (or `timestamp`, Unix seconds) and a new delivery id (or `delivery`).
 */
export function signWebhookRequest(
  secret: string,
  body: string | Buffer,
  options: { timestamp?: number; delivery?: string } = {},
): Record<string, string> {
  const timestamp = String(options.timestamp ?? Math.floor(Date.now() / 1000));
  const delivery = options.delivery ?? randomUUID();
  return {
    [WEBHOOK_TIMESTAMP_HEADER]: timestamp,
    [WEBHOOK_DELIVERY_HEADER]: delivery,
    [WEBHOOK_SIGNATURE_HEADER]: signWebhookPayload(secret, timestamp, delivery, body),
  };
}
