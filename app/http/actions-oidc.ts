/**
 * GitHub Actions' OIDC tokens as a way into the run API: a workflow job with
 * `permissions: { id-token: write }` asks GitHub for a token naming its repository,
 * workflow and run, with Baton as the audience (the Baton action does it), and Baton
 * checks GitHub's signature against the issuer's published keys. No secret to store in
 * the repository, and nothing that outlives the job (the tokens live minutes).
 *
 * What a workflow may then do is decided in github-user-client.ts (a `WorkflowClient`):
 * on its own repository, what a writer may do except deciding approvals and managing
 * secrets; nothing elsewhere.
 *
 * The issuer is https://token.actions.githubusercontent.com for github.com, and
 * https://<host>/_services/token for GitHub Enterprise Server; its keys are at
 * `<issuer>/.well-known/jwks`, kept an hour and fetched again for a key id not seen.
 */
import { createPublicKey, verify, type JsonWebKey, type KeyObject } from "node:crypto";
import { AuthenticationError } from "./errors.js";

export interface WorkflowIdentity {
  /** owner/repo of the workflow's run. */
  repository: string;
  /** e.g. acme/widgets/.github/workflows/release.yml@refs/heads/main */
  workflowRef: string;
  /** The Actions run's id. */
  runId: string;
  /** Who triggered the workflow run. */
  actor: string;
  eventName: string;
}

export interface ActionsOidcOptions {
  issuer: string;
  /** What the token's `aud` must be: Baton's URL (the action asks for it). */
  audience: string;
  /** (Default: global fetch) */
  fetch?: typeof fetch;
  /** (Default: Date.now) */
  now?: () => number;
}

/** Clock skew allowed on `exp`, `nbf` and `iat`. */
const LEEWAY_SECONDS = 60;
const KEYS_TTL_MS = 60 * 60 * 1000;
/** At most one fetch of the keys per this, whatever key ids tokens name. */
const REFETCH_MS = 60 * 1000;

export function actionsOidcIssuer(apiBaseUrl: string): string {
  const url = new URL(apiBaseUrl);
  if (url.hostname === "api.github.com") return "https://token.actions.githubusercontent.com";
  return `${url.protocol}//${url.host}/_services/token`;
}

/** Whether a bearer token has the shape of a JWT (an OIDC token), not of a GitHub token. */
export function isJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token);
}

export class ActionsOidc {
  readonly #options: ActionsOidcOptions;
  #keys = new Map<string, KeyObject>();
  #fetchedAt = Number.NEGATIVE_INFINITY;
  #fetching: Promise<void> | undefined;

  constructor(options: ActionsOidcOptions) {
    this.#options = options;
  }

  async verify(token: string): Promise<WorkflowIdentity> {
    const [headerPart = "", claimsPart = "", signaturePart = ""] = token.split(".");
    const header = decodeJson(headerPart);
    const claims = decodeJson(claimsPart);
    if (!header || !claims) throw refused("it is not a JWT");
    if (header.alg !== "RS256" || typeof header.kid !== "string")
      throw refused("it is not signed with RS256 and a key id");
    const key = await this.#key(header.kid);
    const signed = verify(
      "RSA-SHA256",
      Buffer.from(`${headerPart}.${claimsPart}`),
      key,
      Buffer.from(signaturePart, "base64url"),
    );
    if (!signed) throw refused("its signature is not the issuer's");
    const now = Math.floor((this.#options.now ?? Date.now)() / 1000);
    if (claims.iss !== this.#options.issuer)
      throw refused(`it was issued by ${String(claims.iss)}, not ${this.#options.issuer}`);
    const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!audiences.includes(this.#options.audience))
      throw refused(`its audience is not Baton's: ask for the audience ${this.#options.audience}`);
    if (typeof claims.exp !== "number" || claims.exp + LEEWAY_SECONDS < now)
      throw refused("it expired");
    if (typeof claims.nbf === "number" && claims.nbf - LEEWAY_SECONDS > now)
      throw refused("it is not valid yet");
    const text = (name: string): string => {
      const value = claims[name];
      if (typeof value !== "string" || value === "") throw refused(`it has no ${name} claim`);
      return value;
    };
    return {
      repository: text("repository"),
      workflowRef: text("workflow_ref"),
      runId: text("run_id"),
      actor: text("actor"),
      eventName: text("event_name"),
    };
  }

  async #key(kid: string): Promise<KeyObject> {
    const now = (this.#options.now ?? Date.now)();
    const stale = now - this.#fetchedAt > KEYS_TTL_MS;
    if (stale || (!this.#keys.has(kid) && now - this.#fetchedAt > REFETCH_MS)) {
      this.#fetching ??= this.#fetchKeys(now).finally(() => {
        this.#fetching = undefined;
      });
      await this.#fetching;
    }
    const key = this.#keys.get(kid);
    if (!key) throw refused(`its key ${kid} is not one the issuer publishes`);
    return key;
  }

  async #fetchKeys(now: number): Promise<void> {
    const url = `${this.#options.issuer}/.well-known/jwks`;
    let body: { keys?: unknown };
    try {
      const response = await (this.#options.fetch ?? fetch)(url);
      if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
      body = (await response.json()) as { keys?: unknown };
    } catch (error: unknown) {
      throw new AuthenticationError(
        `Cannot check the Actions OIDC token: the issuer's keys (${url}) could not be read`,
        { cause: error },
      );
    }
    const keys = new Map<string, KeyObject>();
    for (const jwk of Array.isArray(body.keys) ? (body.keys as JsonWebKey[]) : []) {
      if (jwk.kty !== "RSA" || typeof jwk.kid !== "string") continue;
      keys.set(jwk.kid, createPublicKey({ key: jwk, format: "jwk" }));
    }
    this.#keys = keys;
    this.#fetchedAt = now;
  }
}

function refused(why: string): AuthenticationError {
  return new AuthenticationError(`The Actions OIDC token was refused: ${why}.`);
}

function decodeJson(part: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(part, "base64url").toString("utf8"));
    return value !== null && typeof value === "object" && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
