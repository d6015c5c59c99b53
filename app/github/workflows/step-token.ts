/**
 * Step tokens: what a dispatched workflow carries (its `baton` input) to report the step's
 * outputs, or signal its run, through the Baton action (DESIGN.md rule 6: Baton's own
 * secrets are signed, never stored).
 *
 *   bst1.<base64url(JSON claims)>.<base64url(HMAC-SHA256(key, "bst1." + claims))>
 *
 * The claims name one run, step and attempt, an expiry, and Baton's URL (so the action needs
 * no configuration). They are readable by design: the action reads the URL without being
 * able to verify, and the run's inputs are visible to anyone who can read the repository, so
 * a token grants little (outputs once, for one attempt, while it runs; signals to its run).
 *
 * The key is derived from Baton's secret key (BATON_SECRET_KEY, else the stored one that the
 * webhook-trigger secrets derive from), under its own label, so one key never signs two
 * kinds of thing.
 */
import { createHash, createHmac, timingSafeEqual } from "node:crypto";
import type { Queryable } from "../../store/database.js";
import { webhookSecretKey } from "../triggers/webhook-secrets.js";

const PREFIX = "bst1.";

export interface StepTokenClaims {
  /** Baton's base URL, when the app knows it (PUBLIC_URL). */
  url?: string;
  run: string;
  step: string;
  attempt: number;
  /** Expiry, Unix seconds. */
  exp: number;
  /** Set for the workflow that compensates the attempt (its outputs are not used). */
  compensation?: true;
}

export type StepTokenCheck =
  | { ok: true; claims: StepTokenClaims }
  | { ok: false; reason: "malformed" | "forged" | "expired"; claims?: StepTokenClaims };

/** The signing key of step tokens, derived from Baton's secret key. */
export async function stepTokenKey(store: Queryable, explicit?: string): Promise<Buffer> {
  const secret = await webhookSecretKey(store, explicit);
  return createHmac("sha256", secret).update("baton step tokens v1").digest();
}

export function signStepToken(key: Buffer, claims: StepTokenClaims): string {
  const body = Buffer.from(JSON.stringify(claims)).toString("base64url");
  return `${PREFIX}${body}.${mac(key, body)}`;
}

/** Whether `token` is a step token Baton signed that has not expired (`now` in ms). */
export function verifyStepToken(key: Buffer, token: string, now: number): StepTokenCheck {
  const parts = token.split(".");
  if (parts.length !== 3 || `${parts[0]}.` !== PREFIX) return { ok: false, reason: "malformed" };
  const [, body = "", signature = ""] = parts;
  const claims = readClaims(body);
  if (!claims) return { ok: false, reason: "malformed" };
  const expected = Buffer.from(mac(key, body));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { ok: false, reason: "forged", claims };
  if (now >= claims.exp * 1000) return { ok: false, reason: "expired", claims };
  return { ok: true, claims };
}

/** Every string that looks like a step token in `text` (a workflow run's title). */
export function findStepTokens(text: string): string[] {
  return text.match(/bst1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/g) ?? [];
}

export function isStepToken(token: string): boolean {
  return token.startsWith(PREFIX);
}

/** The effect's idempotency key as the engine writes it: `<run>/<step>/<attempt>`, or with `/compensate`. */
export function attemptKeyOf(claims: StepTokenClaims): string {
  const key = `${claims.run}/${claims.step}/${claims.attempt}`;
  return claims.compensation ? `${key}/compensate` : key;
}

/** What is kept of a refused token: its SHA-256 (never the token). */
export function tokenDigest(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

function mac(key: Buffer, body: string): string {
  return createHmac("sha256", key)
    .update(PREFIX + body)
    .digest("base64url");
}

function readClaims(body: string): StepTokenClaims | undefined {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    return undefined;
  }
  if (value === null || typeof value !== "object") return undefined;
  const claims = value as Record<string, unknown>;
  if (
    typeof claims.run !== "string" ||
    typeof claims.step !== "string" ||
    typeof claims.attempt !== "number" ||
    typeof claims.exp !== "number" ||
    (claims.url !== undefined && typeof claims.url !== "string") ||
    (claims.compensation !== undefined && claims.compensation !== true)
  )
    return undefined;
  return {
    ...(typeof claims.url === "string" ? { url: claims.url } : {}),
    run: claims.run,
    step: claims.step,
    attempt: claims.attempt,
    exp: claims.exp,
    ...(claims.compensation === true ? { compensation: true as const } : {}),
  };
}
