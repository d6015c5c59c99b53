/**
 * Webhooks as GitHub sends them: real example payloads (@octokit/webhooks-examples),
 * patched to point at the fake's repositories and installations, signed with
 * @octokit/webhooks-methods (an implementation independent of Baton's verifier), and
 * POSTed with GitHub's headers.
 */
import { randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { sign } from "@octokit/webhooks-methods";

interface WebhookDefinition {
  name: string;
  examples: Record<string, unknown>[];
}

let definitions: WebhookDefinition[] | undefined;

/** The examples file is 4 MB: read it once per process, on first use. */
function loadDefinitions(): WebhookDefinition[] {
  if (!definitions) {
    const require = createRequire(import.meta.url);
    const path = require.resolve("@octokit/webhooks-examples");
    definitions = JSON.parse(readFileSync(path, "utf8")) as WebhookDefinition[];
  }
  return definitions;
}

export class NoWebhookExampleError extends Error {
  constructor(
    readonly event: string,
    readonly action: string | undefined,
  ) {
    super(
      `@octokit/webhooks-examples has no ${event}${action ? `.${action}` : ""} example; ` +
        `pick another action, or build the payload from a neighbouring example.`,
    );
    this.name = "NoWebhookExampleError";
  }
}

/** A deep copy of the first example of `event` (with `action`, and matching `where`, when given). */
export function webhookExample(
  event: string,
  action?: string,
  where: (example: Record<string, unknown>) => boolean = () => true,
): Record<string, unknown> {
  const definition = loadDefinitions().find((d) => d.name === event);
  const example = definition?.examples.find(
    (e) => (action === undefined || e.action === action) && where(e),
  );
  if (!example) throw new NoWebhookExampleError(event, action);
  return structuredClone(example);
}

export interface PayloadTarget {
  installationId?: number;
  repository?: { id: number; owner: string; name: string; defaultBranch?: string };
}

/**
 * Point a payload at the fake's installation and repository: `installation.id` and the
 * `repository` object's id, names, owner login and default branch. Other fields (SHAs,
 * numbers) are the test's to set.
 */
export function patchPayload(
  payload: Record<string, unknown>,
  target: PayloadTarget,
): Record<string, unknown> {
  if (target.installationId !== undefined) {
    const installation = (payload.installation ?? {}) as Record<string, unknown>;
    payload.installation = { ...installation, id: target.installationId };
  }
  const repo = target.repository;
  if (repo && typeof payload.repository === "object" && payload.repository !== null) {
    const repository = payload.repository as Record<string, unknown>;
    const owner = (repository.owner ?? {}) as Record<string, unknown>;
    payload.repository = {
      ...repository,
      id: repo.id,
      name: repo.name,
      full_name: `${repo.owner}/${repo.name}`,
      owner: { ...owner, login: repo.owner, name: repo.owner },
      ...(repo.defaultBranch !== undefined
        ? { default_branch: repo.defaultBranch, master_branch: repo.defaultBranch }
        : {}),
    };
  }
  return payload;
}

/**
 * A user object as webhooks carry it (`sender`, `user`, `pusher`-like fields), built on the
 * example's so that fields the test does not care about keep GitHub's shape.
 */
export function patchUser(
  template: unknown,
  user: { login: string; id: number; type?: "User" | "Organization" | "Bot" },
  baseUrl: string,
): Record<string, unknown> {
  const base = typeof template === "object" && template !== null ? template : {};
  const api = `${baseUrl}/users/${user.login}`;
  return {
    ...base,
    login: user.login,
    id: user.id,
    node_id: `U_${user.id}`,
    avatar_url: `${baseUrl}/avatars/${user.login}`,
    gravatar_id: "",
    url: api,
    html_url: `${baseUrl}/${user.login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: user.type ?? "User",
    site_admin: false,
  };
}

/**
 * Every string in `value` with `from` replaced by `to`: re-points the example's URLs
 * (`https://api.github.com/repos/Codertocat/Hello-World/...`) at the fake's repository.
 */
export function replaceInStrings<T>(value: T, from: string, to: string): T {
  if (typeof value === "string") return value.replaceAll(from, to) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => replaceInStrings(v, from, to)) as T;
  if (typeof value === "object" && value !== null)
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [k, replaceInStrings(v, from, to)]),
    ) as T;
  return value;
}

export interface SendWebhookOptions {
  /** The app's webhook URL, e.g. http://127.0.0.1:PORT/api/github/webhooks. */
  url: string;
  secret: string;
  event: string;
  payload: Record<string, unknown>;
  /** (Default: a new UUID, as GitHub's are; pass the same one to redeliver) */
  deliveryId?: string;
  /** Override the signature header: a string to send instead, null to send none. */
  signature?: string | null;
  hookId?: number;
}

export interface SentWebhook {
  deliveryId: string;
  status: number;
  body: unknown;
  /** Milliseconds from sending to the full answer. */
  elapsedMs: number;
}

/** POST a webhook the way GitHub does (headers, JSON body, HMAC-SHA256 signature). */
export async function sendWebhook(options: SendWebhookOptions): Promise<SentWebhook> {
  const deliveryId = options.deliveryId ?? randomUUID();
  const body = JSON.stringify(options.payload);
  const signature =
    options.signature === undefined ? await sign(options.secret, body) : options.signature;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "user-agent": "GitHub-Hookshot/fake",
    "x-github-delivery": deliveryId,
    "x-github-event": options.event,
    "x-github-hook-id": String(options.hookId ?? 1),
    "x-github-hook-installation-target-type": "integration",
  };
  if (signature !== null) headers["x-hub-signature-256"] = signature;
  const started = performance.now();
  const response = await fetch(options.url, { method: "POST", headers, body });
  const text = await response.text();
  const elapsedMs = performance.now() - started;
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { deliveryId, status: response.status, body: parsed, elapsedMs };
}
