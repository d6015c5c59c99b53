/**
 * A fake GitHub for Baton's tests: a node:http server that keeps state in memory
 * (installations, repositories, commits and their files, refs, pull requests, check runs,
 * issue comments, reviews, webhook deliveries) and implements only the REST routes Baton
 * calls.
 *
 * Every request is checked against GitHub's published OpenAPI description first: an
 * undocumented route, an undocumented query parameter or a body that violates the
 * operation's schema is answered 400 with the reason and recorded, and
 * `assertNoUnexpectedRequests()` then fails the test. So do GitHub's limits on check runs
 * (answered 422, as GitHub does), a request without valid credentials (401), and a
 * documented route the fake does not implement yet (501). A 404 for something that does
 * not exist is not unexpected: Baton asks for files that may be absent.
 *
 * Credentials are checked like GitHub does: `/app/...` routes need a JWT signed with the
 * app's private key (RS256, iss = the app id); repository routes need an installation
 * token from `POST /app/installations/{id}/access_tokens`, for an installation that can
 * see the repository, not expired. Paths may carry GitHub Enterprise Server's `/api/v3`
 * prefix, so an app configured with GHE_HOST/GHE_PROTOCOL can be pointed here.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
  type KeyObject,
} from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { GitObjects, type Commit } from "./git-objects.js";
import { checkRequest, findOperation, type MatchedOperation } from "./openapi.js";
import { sendWebhook, type SentWebhook } from "./webhooks.js";

/** GitHub's limits on a check run request (docs: "Update a check run", "Create a check run"). */
export const CHECK_RUN_LIMITS = {
  summaryChars: 65_535,
  textChars: 65_535,
  annotationsPerRequest: 50,
  actions: 3,
  actionLabelChars: 20,
  actionIdentifierChars: 20,
  actionDescriptionChars: 40,
} as const;

/** The contents API returns a file's content up to 1 MB; larger files come with encoding "none". */
const CONTENTS_INLINE_LIMIT = 1024 * 1024;

export type RepositoryRole = "admin" | "maintain" | "write" | "triage" | "read";

export interface UnexpectedRequest {
  method: string;
  path: string;
  status: number;
  reason: string;
}

export interface RecordedRequest {
  method: string;
  path: string;
  operationId: string | undefined;
  status: number;
  body: unknown;
}

export interface FakeCheckRun {
  id: number;
  repository: string;
  name: string;
  head_sha: string;
  status: string;
  conclusion: string | null;
  external_id: string | null;
  details_url: string | null;
  started_at: string | null;
  completed_at: string | null;
  output: { title: string | null; summary: string | null; text: string | null };
  /** Every annotation sent, across requests (GitHub appends them). */
  annotations: Record<string, unknown>[];
  actions: { label: string; description: string; identifier: string }[];
}

export interface FakeIssueComment {
  id: number;
  repository: string;
  issue_number: number;
  body: string;
  user: string;
  created_at: string;
}

export interface FakePullRequest {
  number: number;
  title: string;
  head: { ref: string; sha: string; repoFullName: string };
  base: { ref: string; sha: string };
  user: string;
  state: "open" | "closed";
}

export interface FakeReview {
  id: number;
  pull_number: number;
  user: string;
  state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED" | "DISMISSED";
  commit_id: string;
}

interface Repository {
  id: number;
  owner: string;
  name: string;
  private: boolean;
  defaultBranch: string;
  installationId: number;
  /** Branch and tag names → commit SHAs. */
  refs: Map<string, string>;
  roles: Map<string, RepositoryRole>;
  pulls: Map<number, FakePullRequest>;
  issues: Set<number>;
  reviews: FakeReview[];
}

interface Installation {
  id: number;
  account: string;
}

interface IssuedToken {
  installationId: number;
  expiresAt: number;
  /** Repository ids the token is restricted to; undefined for all of the installation's. */
  repositoryIds: number[] | undefined;
  permissions: Record<string, string>;
}

export interface HookDelivery {
  id: number;
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  duration: number;
  status: string;
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  /** Kept to redeliver; not part of the list GitHub returns. */
  payload: Record<string, unknown>;
}

/** An answer other than 2xx from a handler; `unexpected` ones are recorded. */
class FakeHttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly unexpected: boolean,
  ) {
    super(message);
    this.name = "FakeHttpError";
  }
}
const notFound = (): FakeHttpError => new FakeHttpError(404, "Not Found", false);
const unprocessable = (message: string): FakeHttpError => new FakeHttpError(422, message, true);

/** The test made (or caused) requests GitHub would refuse or the fake does not know. */
export class UnexpectedGitHubRequestsError extends Error {
  constructor(readonly requests: readonly UnexpectedRequest[]) {
    super(
      `The fake GitHub received ${requests.length} unexpected request(s):\n` +
        requests.map((r) => `  ${r.method} ${r.path} -> ${r.status}: ${r.reason}`).join("\n"),
    );
    this.name = "UnexpectedGitHubRequestsError";
  }
}

export interface FakeGitHubOptions {
  /** (Default: 1) */
  appId?: number;
  /**
   * A recursive tree lists at most this many entries, then says `truncated: true`.
   * (Default: 100000, GitHub's limit; lower it to test truncation)
   */
  treeEntryLimit?: number;
  /** Where the fake delivers webhooks, and the secret it signs them with. */
  webhook?: { url: string; secret: string };
  /** The clock. (Default: Date.now) */
  now?: () => number;
}

type Handler = (request: {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  token: IssuedToken | undefined;
}) => { status: number; body: unknown } | Promise<{ status: number; body: unknown }>;

export class FakeGitHub {
  readonly appId: number;
  /** The app's private key (PKCS#1 PEM, as GitHub issues it), for APP_ID/PRIVATE_KEY. */
  readonly privateKey: string;
  readonly git = new GitObjects();
  readonly requests: RecordedRequest[] = [];
  readonly unexpected: UnexpectedRequest[] = [];
  readonly checkRuns: FakeCheckRun[] = [];
  readonly comments: FakeIssueComment[] = [];
  readonly deliveries: HookDelivery[] = [];
  webhook: { url: string; secret: string } | undefined;

  readonly #publicKey: KeyObject;
  readonly #server: Server;
  readonly #now: () => number;
  readonly #treeEntryLimit: number;
  readonly #installations = new Map<number, Installation>();
  readonly #repositories = new Map<string, Repository>();
  readonly #tokens = new Map<string, IssuedToken>();
  #nextId = 1000;
  #url = "";

  private constructor(options: FakeGitHubOptions) {
    this.appId = options.appId ?? 1;
    this.#now = options.now ?? Date.now;
    this.#treeEntryLimit = options.treeEntryLimit ?? 100_000;
    this.webhook = options.webhook;
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.privateKey = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
    this.#publicKey = createPublicKey(publicKey.export({ type: "spki", format: "pem" }));
    this.#server = createServer((request, response) => {
      this.#handle(request, response).catch((error: unknown) => {
        this.#unexpected(request.method ?? "", request.url ?? "", 500, String(error));
        if (!response.headersSent) json(response, 500, { message: String(error) });
      });
    });
  }

  /** Start on 127.0.0.1 on a free port. */
  static async start(options: FakeGitHubOptions = {}): Promise<FakeGitHub> {
    const fake = new FakeGitHub(options);
    await new Promise<void>((resolve) => fake.#server.listen(0, "127.0.0.1", resolve));
    const { port } = fake.#server.address() as AddressInfo;
    fake.#url = `http://127.0.0.1:${port}`;
    return fake;
  }

  /** The REST base URL (Octokit's `baseUrl`). */
  get url(): string {
    return this.#url;
  }

  stop(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.close((error) => (error ? reject(error) : resolve()));
      this.#server.closeAllConnections();
    });
  }

  /** Throws `UnexpectedGitHubRequestsError` listing every unexpected request so far. */
  assertNoUnexpectedRequests(): void {
    if (this.unexpected.length > 0) throw new UnexpectedGitHubRequestsError(this.unexpected);
  }

  // --- Seeding state -------------------------------------------------------------------

  addInstallation(installation: { id: number; account: string }): void {
    this.#installations.set(installation.id, { ...installation });
  }

  /** A repository with one commit of `files` on its default branch. Returns its id and head. */
  addRepository(options: {
    owner: string;
    name: string;
    installationId: number;
    files: Record<string, string | Buffer>;
    defaultBranch?: string;
    private?: boolean;
  }): { id: number; fullName: string; head: string } {
    if (!this.#installations.has(options.installationId))
      throw new Error(`Add installation ${options.installationId} before its repositories`);
    const repo: Repository = {
      id: this.#id(),
      owner: options.owner,
      name: options.name,
      private: options.private ?? false,
      defaultBranch: options.defaultBranch ?? "main",
      installationId: options.installationId,
      refs: new Map(),
      roles: new Map(),
      pulls: new Map(),
      issues: new Set(),
      reviews: [],
    };
    const fullName = `${options.owner}/${options.name}`;
    this.#repositories.set(fullName.toLowerCase(), repo);
    const head = this.commit(fullName, { files: options.files, message: "Initial commit" });
    return { id: repo.id, fullName, head };
  }

  /**
   * Commit on `branch` (Default: the default branch; a new branch starts from it): files
   * given are written, files given as null deleted, the others kept. Returns the SHA.
   */
  commit(
    fullName: string,
    options: { files: Record<string, string | Buffer | null>; branch?: string; message?: string },
  ): string {
    const repo = this.#repo(fullName);
    const branch = options.branch ?? repo.defaultBranch;
    const parent = repo.refs.get(branch) ?? repo.refs.get(repo.defaultBranch);
    const parentCommit = parent ? (this.git.get(parent) as Commit) : undefined;
    const files = parentCommit ? this.git.files(parentCommit.tree) : new Map<string, string>();
    for (const [path, content] of Object.entries(options.files)) {
      if (content === null) files.delete(path);
      else files.set(path, this.git.blob(content).sha);
    }
    const tree = this.git.treeFromFiles(files);
    const commit = this.git.commit(tree.sha, parent ? [parent] : [], options.message ?? "Commit");
    repo.refs.set(branch, commit.sha);
    return commit.sha;
  }

  /** The commit SHA a branch points at. */
  head(fullName: string, branch?: string): string {
    const repo = this.#repo(fullName);
    const sha = repo.refs.get(branch ?? repo.defaultBranch);
    if (!sha) throw new Error(`${fullName} has no branch ${branch ?? repo.defaultBranch}`);
    return sha;
  }

  /** A collaborator's role; anyone else has no permission. */
  setRole(fullName: string, user: string, role: RepositoryRole): void {
    this.#repo(fullName).roles.set(user.toLowerCase(), role);
  }

  addIssue(fullName: string, number: number): void {
    this.#repo(fullName).issues.add(number);
  }

  /**
   * A pull request from `headBranch` (which must exist here) into the default branch.
   * `fromFork` names the head repository of a pull request from a fork; its commits are
   * kept in this repository's objects (a shortcut: only the labels differ).
   */
  addPullRequest(
    fullName: string,
    options: {
      number: number;
      headBranch: string;
      user: string;
      title?: string;
      fromFork?: string;
    },
  ): FakePullRequest {
    const repo = this.#repo(fullName);
    const pull: FakePullRequest = {
      number: options.number,
      title: options.title ?? `Pull request ${options.number}`,
      head: {
        ref: options.headBranch,
        sha: this.head(fullName, options.headBranch),
        repoFullName: options.fromFork ?? fullName,
      },
      base: { ref: repo.defaultBranch, sha: this.head(fullName) },
      user: options.user,
      state: "open",
    };
    repo.pulls.set(pull.number, pull);
    return pull;
  }

  addReview(fullName: string, review: Omit<FakeReview, "id">): FakeReview {
    const stored = { id: this.#id(), ...review };
    this.#repo(fullName).reviews.push(stored);
    return stored;
  }

  // --- Webhooks ------------------------------------------------------------------------

  /**
   * Deliver a webhook to the configured URL, signed, and record it for
   * `GET /app/hook/deliveries`. The payload's installation and repository should already
   * point at the fake's (see `patchPayload`).
   */
  async deliverWebhook(event: string, payload: Record<string, unknown>): Promise<SentWebhook> {
    return this.#deliver(event, payload, undefined);
  }

  async #deliver(
    event: string,
    payload: Record<string, unknown>,
    redeliveryOf: HookDelivery | undefined,
  ): Promise<SentWebhook> {
    if (!this.webhook) throw new Error("The fake GitHub has no webhook URL configured");
    const guid = redeliveryOf?.guid;
    let sent: SentWebhook;
    let statusCode: number;
    try {
      sent = await sendWebhook({
        url: this.webhook.url,
        secret: this.webhook.secret,
        event,
        payload,
        ...(guid ? { deliveryId: guid } : {}),
      });
      statusCode = sent.status;
    } catch (error: unknown) {
      // Unreachable: GitHub records the failed delivery, status code 0.
      sent = { deliveryId: guid ?? "", status: 0, body: String(error), elapsedMs: 0 };
      statusCode = 0;
    }
    const installation = payload.installation as { id?: number } | undefined;
    const repository = payload.repository as { id?: number } | undefined;
    this.deliveries.push({
      id: this.#id(),
      guid: sent.deliveryId,
      delivered_at: new Date(this.#now()).toISOString(),
      redelivery: redeliveryOf !== undefined,
      duration: sent.elapsedMs / 1000,
      status: statusCode >= 200 && statusCode < 300 ? "OK" : "Failed",
      status_code: statusCode,
      event,
      action: typeof payload.action === "string" ? payload.action : null,
      installation_id: installation?.id ?? null,
      repository_id: repository?.id ?? null,
      payload,
    });
    return sent;
  }

  // --- Serving -------------------------------------------------------------------------

  #id(): number {
    return this.#nextId++;
  }

  #repo(fullName: string): Repository {
    const repo = this.#repositories.get(fullName.toLowerCase());
    if (!repo) throw new Error(`The fake GitHub has no repository ${fullName}`);
    return repo;
  }

  #unexpected(method: string, path: string, status: number, reason: string): void {
    this.unexpected.push({ method, path, status, reason });
  }

  async #handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const method = request.method ?? "GET";
    const url = new URL(request.url ?? "/", "http://fake");
    const pathname = url.pathname.replace(/^\/api\/v3(?=\/)/, "");
    const raw = await readAll(request);
    const fail = (status: number, reason: string, unexpected: boolean) => {
      if (unexpected) this.#unexpected(method, url.pathname + url.search, status, reason);
      this.requests.push({
        method,
        path: pathname,
        operationId: undefined,
        status,
        body: undefined,
      });
      json(response, status, {
        message: reason,
        documentation_url: "https://docs.github.com/rest",
      });
    };

    let body: unknown;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw.toString("utf8"));
      } catch {
        return fail(400, "Problems parsing JSON", true);
      }
    }
    const operation = findOperation(method, pathname);
    if (!operation)
      return fail(400, `${method} ${pathname} is not an operation of GitHub's REST API`, true);
    // GitHub's checks before the schema's: the limits Baton must render within.
    const limitProblem =
      operation.operationId === "checks/create" || operation.operationId === "checks/update"
        ? checkRunLimitProblem(body)
        : undefined;
    if (limitProblem) return fail(422, limitProblem, true);
    const problems = checkRequest(operation, method, url.searchParams, body);
    if (problems.length > 0)
      return fail(400, `${operation.operationId}: ${problems.join("; ")}`, true);

    const handler = this.#handlers[operation.operationId];
    if (!handler)
      return fail(
        501,
        `${operation.operationId} is documented but the fake does not implement it`,
        true,
      );
    let token: IssuedToken | undefined;
    try {
      token = this.#authenticate(request, operation);
      const result = await handler({
        params: operation.params,
        query: url.searchParams,
        body: (body ?? {}) as Record<string, unknown>,
        token,
      });
      this.requests.push({
        method,
        path: pathname,
        operationId: operation.operationId,
        status: result.status,
        body,
      });
      if (result.body === undefined) {
        response.writeHead(result.status).end();
      } else {
        json(response, result.status, result.body);
      }
    } catch (error: unknown) {
      if (!(error instanceof FakeHttpError)) throw error;
      fail(error.status, error.message, error.unexpected);
    }
  }

  /** The installation token's grant, for repository routes; checks the app JWT for /app routes. */
  #authenticate(request: IncomingMessage, operation: MatchedOperation): IssuedToken | undefined {
    const header = request.headers.authorization ?? "";
    const credential = header.replace(/^(bearer|token)\s+/i, "");
    if (operation.template.startsWith("/app/") || operation.template === "/app") {
      this.#verifyAppJwt(credential);
      return undefined;
    }
    const token = this.#tokens.get(credential);
    if (!token || token.expiresAt <= this.#now())
      throw new FakeHttpError(401, "Bad credentials: not a valid installation token", true);
    const owner = operation.params.owner;
    const name = operation.params.repo;
    if (owner !== undefined && name !== undefined) {
      const repo = this.#repositories.get(`${owner}/${name}`.toLowerCase());
      const visible =
        repo !== undefined &&
        repo.installationId === token.installationId &&
        (token.repositoryIds === undefined || token.repositoryIds.includes(repo.id));
      // GitHub answers 404, not 403, for a repository the token cannot see; for Baton
      // asking about a repository outside its installation is a bug, so it is recorded.
      if (!visible)
        throw new FakeHttpError(404, `Not Found (the token cannot see ${owner}/${name})`, !!repo);
    }
    return token;
  }

  #verifyAppJwt(jwt: string): void {
    const bad = (why: string) =>
      new FakeHttpError(401, `A JSON web token could not be decoded: ${why}`, true);
    const [header, payload, signature] = jwt.split(".");
    if (header === undefined || payload === undefined || signature === undefined)
      throw bad("not a JWT");
    const valid = verify(
      "RSA-SHA256",
      Buffer.from(`${header}.${payload}`),
      this.#publicKey,
      Buffer.from(signature, "base64url"),
    );
    if (!valid) throw bad("the signature is not the app's");
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as {
      iss?: unknown;
      exp?: unknown;
      iat?: unknown;
    };
    const nowSeconds = Math.floor(this.#now() / 1000);
    if (String(claims.iss) !== String(this.appId))
      throw bad(`iss ${String(claims.iss)} is not app ${this.appId}`);
    if (typeof claims.exp !== "number" || claims.exp <= nowSeconds) throw bad("expired");
    if (typeof claims.iat !== "number" || claims.iat > nowSeconds + 60)
      throw bad("issued in the future");
    if (claims.exp - claims.iat > 600) throw bad("exp is more than 10 minutes after iat");
  }

  #repoFor(params: Record<string, string>): Repository {
    const repo = this.#repositories.get(`${params.owner}/${params.repo}`.toLowerCase());
    if (!repo) throw notFound();
    return repo;
  }

  /** A commit SHA for a branch, a tag or a commit SHA. */
  #resolveCommit(repo: Repository, ref: string): Commit | undefined {
    const name = ref.replace(/^refs\/(heads|tags)\//, "");
    const sha = repo.refs.get(name) ?? ref;
    const object = this.git.get(sha);
    return object?.type === "commit" ? object : undefined;
  }

  #repositoryJson(repo: Repository): Record<string, unknown> {
    const fullName = `${repo.owner}/${repo.name}`;
    return {
      id: repo.id,
      node_id: `R_${repo.id}`,
      name: repo.name,
      full_name: fullName,
      private: repo.private,
      owner: { login: repo.owner, id: repo.installationId, type: "Organization" },
      html_url: `${this.#url}/${fullName}`,
      url: `${this.#url}/repos/${fullName}`,
      fork: false,
      default_branch: repo.defaultBranch,
      visibility: repo.private ? "private" : "public",
    };
  }

  #checkRunJson(run: FakeCheckRun): Record<string, unknown> {
    return {
      id: run.id,
      node_id: `CR_${run.id}`,
      name: run.name,
      head_sha: run.head_sha,
      external_id: run.external_id,
      url: `${this.#url}/repos/${run.repository}/check-runs/${run.id}`,
      html_url: `${this.#url}/${run.repository}/runs/${run.id}`,
      details_url: run.details_url,
      status: run.status,
      conclusion: run.conclusion,
      started_at: run.started_at,
      completed_at: run.completed_at,
      output: {
        ...run.output,
        annotations_count: run.annotations.length,
        annotations_url: `${this.#url}/repos/${run.repository}/check-runs/${run.id}/annotations`,
      },
      check_suite: { id: 1 },
      app: { id: this.appId, slug: "baton", name: "Baton" },
      pull_requests: [],
    };
  }

  /** Apply a create or update body to a check run, as GitHub does. */
  #applyCheckRun(run: FakeCheckRun, body: Record<string, unknown>): void {
    const str = (v: unknown) => (typeof v === "string" ? v : undefined);
    if (str(body.name) !== undefined) run.name = str(body.name)!;
    if (body.details_url !== undefined) run.details_url = str(body.details_url) ?? null;
    if (body.external_id !== undefined) run.external_id = str(body.external_id) ?? null;
    if (body.started_at !== undefined) run.started_at = str(body.started_at) ?? null;
    if (str(body.status) !== undefined) run.status = str(body.status)!;
    if (str(body.conclusion) !== undefined) {
      // Giving a conclusion completes the run.
      run.conclusion = str(body.conclusion)!;
      run.status = "completed";
      run.completed_at = str(body.completed_at) ?? new Date(this.#now()).toISOString();
    }
    if (run.status === "completed" && run.conclusion === null)
      throw unprocessable("Invalid request: conclusion is required when status is completed");
    const output = body.output as Record<string, unknown> | undefined;
    if (output) {
      if (output.title !== undefined) run.output.title = str(output.title) ?? null;
      if (output.summary !== undefined) run.output.summary = str(output.summary) ?? null;
      if (output.text !== undefined) run.output.text = str(output.text) ?? null;
      if (Array.isArray(output.annotations))
        run.annotations.push(...(output.annotations as Record<string, unknown>[]));
    }
    if (Array.isArray(body.actions))
      run.actions = (body.actions as FakeCheckRun["actions"]).map((a) => ({ ...a }));
  }

  readonly #handlers: Partial<Record<string, Handler>> = {
    "apps/create-installation-access-token": ({ params, body }) => {
      const installation = this.#installations.get(Number(params.installation_id));
      if (!installation) throw notFound();
      const repos = [...this.#repositories.values()].filter(
        (r) => r.installationId === installation.id,
      );
      let repositoryIds: number[] | undefined;
      if (Array.isArray(body.repositories) || Array.isArray(body.repository_ids)) {
        const names = ((body.repositories ?? []) as string[]).map((n) => n.toLowerCase());
        const ids = (body.repository_ids ?? []) as number[];
        const selected = repos.filter(
          (r) => names.includes(r.name.toLowerCase()) || ids.includes(r.id),
        );
        if (selected.length !== names.length + ids.length)
          throw unprocessable(
            "There is at least one repository that does not exist or is not accessible to the parent installation.",
          );
        repositoryIds = selected.map((r) => r.id);
      }
      const token = `ghs_${randomBytes(18).toString("base64url")}`;
      const expiresAt = this.#now() + 60 * 60 * 1000; // installation tokens live 1 hour
      const permissions = (body.permissions ?? {
        checks: "write",
        contents: "read",
        issues: "write",
        metadata: "read",
        pull_requests: "write",
      }) as Record<string, string>;
      this.#tokens.set(token, {
        installationId: installation.id,
        expiresAt,
        repositoryIds,
        permissions,
      });
      return {
        status: 201,
        body: {
          token,
          expires_at: new Date(expiresAt).toISOString().replace(/\.\d{3}Z$/, "Z"),
          permissions,
          repository_selection: repositoryIds ? "selected" : "all",
          ...(repositoryIds
            ? {
                repositories: repos
                  .filter((r) => repositoryIds.includes(r.id))
                  .map((r) => this.#repositoryJson(r)),
              }
            : {}),
        },
      };
    },

    "repos/get": ({ params }) => ({
      status: 200,
      body: this.#repositoryJson(this.#repoFor(params)),
    }),

    "git/get-tree": ({ params, query }) => {
      const repo = this.#repoFor(params);
      const ref = params.tree_sha ?? "";
      const object = this.git.get(ref);
      const treeSha = object?.type === "tree" ? object.sha : this.#resolveCommit(repo, ref)?.tree;
      if (treeSha === undefined) throw notFound();
      const entries = query.has("recursive")
        ? this.git.walk(treeSha)
        : ((this.git.get(treeSha) as { entries: { name: string }[] }).entries.map((e) => ({
            ...e,
            path: e.name,
          })) as ReturnType<GitObjects["walk"]>);
      const truncated = entries.length > this.#treeEntryLimit;
      return {
        status: 200,
        body: {
          sha: treeSha,
          url: `${this.#url}/repos/${repo.owner}/${repo.name}/git/trees/${treeSha}`,
          truncated,
          tree: entries.slice(0, this.#treeEntryLimit).map((e) => {
            const blob = e.type === "blob" ? this.git.get(e.sha) : undefined;
            return {
              path: e.path,
              mode: e.mode,
              type: e.type,
              sha: e.sha,
              ...(blob?.type === "blob" ? { size: blob.content.length } : {}),
              url: `${this.#url}/repos/${repo.owner}/${repo.name}/git/${e.type}s/${e.sha}`,
            };
          }),
        },
      };
    },

    "git/get-blob": ({ params }) => {
      const repo = this.#repoFor(params);
      const blob = this.git.get(params.file_sha ?? "");
      if (blob?.type !== "blob") throw notFound();
      return {
        status: 200,
        body: {
          sha: blob.sha,
          node_id: `B_${blob.sha}`,
          size: blob.content.length,
          url: `${this.#url}/repos/${repo.owner}/${repo.name}/git/blobs/${blob.sha}`,
          content: base64Lines(blob.content),
          encoding: "base64",
        },
      };
    },

    "repos/get-content": ({ params, query }) => {
      const repo = this.#repoFor(params);
      const commit = this.#resolveCommit(repo, query.get("ref") ?? repo.defaultBranch);
      if (!commit) throw notFound();
      const path = (params.path ?? "").replace(/\/$/, "");
      const entries = this.git.walk(commit.tree);
      const base = `${this.#url}/repos/${repo.owner}/${repo.name}`;
      const describe = (e: (typeof entries)[number]) => {
        const blob = this.git.get(e.sha);
        return {
          type: e.type === "tree" ? "dir" : "file",
          name: e.name,
          path: e.path,
          sha: e.sha,
          size: blob?.type === "blob" ? blob.content.length : 0,
          url: `${base}/contents/${e.path}?ref=${commit.sha}`,
          html_url: `${this.#url}/${repo.owner}/${repo.name}/blob/${commit.sha}/${e.path}`,
          git_url: `${base}/git/${e.type}s/${e.sha}`,
          download_url:
            e.type === "tree"
              ? null
              : `${this.#url}/raw/${repo.owner}/${repo.name}/${commit.sha}/${e.path}`,
          _links: {
            self: `${base}/contents/${e.path}`,
            git: `${base}/git/${e.type}s/${e.sha}`,
            html: `${this.#url}/${repo.owner}/${repo.name}`,
          },
        };
      };
      const isDir = path === "" || entries.some((e) => e.type === "tree" && e.path === path);
      if (isDir) {
        const prefix = path === "" ? "" : `${path}/`;
        const children = entries.filter(
          (e) => e.path.startsWith(prefix) && !e.path.slice(prefix.length).includes("/"),
        );
        return { status: 200, body: children.map(describe) };
      }
      const entry = entries.find((e) => e.type === "blob" && e.path === path);
      const blob = entry ? this.git.get(entry.sha) : undefined;
      if (!entry || blob?.type !== "blob") throw notFound();
      const inline = blob.content.length <= CONTENTS_INLINE_LIMIT;
      return {
        status: 200,
        body: {
          ...describe(entry),
          encoding: inline ? "base64" : "none",
          content: inline ? base64Lines(blob.content) : "",
        },
      };
    },

    "checks/create": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const headSha = String(body.head_sha);
      if (this.git.get(headSha)?.type !== "commit")
        throw unprocessable(`No commit found for SHA: ${headSha}`);
      const run: FakeCheckRun = {
        id: this.#id(),
        repository: `${repo.owner}/${repo.name}`,
        name: String(body.name),
        head_sha: headSha,
        status: "queued",
        conclusion: null,
        external_id: null,
        details_url: null,
        started_at: new Date(this.#now()).toISOString(),
        completed_at: null,
        output: { title: null, summary: null, text: null },
        annotations: [],
        actions: [],
      };
      this.#applyCheckRun(run, body);
      this.checkRuns.push(run);
      return { status: 201, body: this.#checkRunJson(run) };
    },

    "checks/update": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const run = this.checkRuns.find(
        (r) =>
          r.id === Number(params.check_run_id) && r.repository === `${repo.owner}/${repo.name}`,
      );
      if (!run) throw notFound();
      // Validate on a copy: a refused update changes nothing.
      const updated = structuredClone(run);
      this.#applyCheckRun(updated, body);
      Object.assign(run, updated);
      return { status: 200, body: this.#checkRunJson(run) };
    },

    "issues/create-comment": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const number = Number(params.issue_number);
      if (!repo.issues.has(number) && !repo.pulls.has(number)) throw notFound();
      const comment: FakeIssueComment = {
        id: this.#id(),
        repository: `${repo.owner}/${repo.name}`,
        issue_number: number,
        body: String(body.body),
        user: "baton[bot]",
        created_at: new Date(this.#now()).toISOString(),
      };
      this.comments.push(comment);
      return {
        status: 201,
        body: {
          id: comment.id,
          node_id: `IC_${comment.id}`,
          body: comment.body,
          user: { login: comment.user, type: "Bot" },
          html_url: `${this.#url}/${comment.repository}/issues/${number}#issuecomment-${comment.id}`,
          issue_url: `${this.#url}/repos/${comment.repository}/issues/${number}`,
          created_at: comment.created_at,
          updated_at: comment.created_at,
        },
      };
    },

    "pulls/get": ({ params }) => {
      const repo = this.#repoFor(params);
      const pull = repo.pulls.get(Number(params.pull_number));
      if (!pull) throw notFound();
      const fullName = `${repo.owner}/${repo.name}`;
      const base = this.#repositoryJson(repo);
      const fork = pull.head.repoFullName.toLowerCase() !== fullName.toLowerCase();
      return {
        status: 200,
        body: {
          id: pull.number + 500_000,
          number: pull.number,
          state: pull.state,
          title: pull.title,
          draft: false,
          merged: false,
          user: { login: pull.user, type: "User" },
          html_url: `${this.#url}/${fullName}/pull/${pull.number}`,
          url: `${this.#url}/repos/${fullName}/pulls/${pull.number}`,
          head: {
            label: `${pull.head.repoFullName.split("/")[0]}:${pull.head.ref}`,
            ref: pull.head.ref,
            sha: pull.head.sha,
            repo: fork
              ? {
                  ...base,
                  id: repo.id + 1, // a stand-in id for the fork
                  name: pull.head.repoFullName.split("/")[1],
                  full_name: pull.head.repoFullName,
                  owner: { login: pull.head.repoFullName.split("/")[0], type: "User" },
                  fork: true,
                }
              : { ...base },
          },
          base: {
            label: `${repo.owner}:${pull.base.ref}`,
            ref: pull.base.ref,
            sha: pull.base.sha,
            repo: base,
          },
        },
      };
    },

    "pulls/list-reviews": ({ params, query }) => {
      const repo = this.#repoFor(params);
      const number = Number(params.pull_number);
      if (!repo.pulls.has(number)) throw notFound();
      const perPage = Math.min(100, Number(query.get("per_page") ?? 30));
      const page = Math.max(1, Number(query.get("page") ?? 1));
      const reviews = repo.reviews.filter((r) => r.pull_number === number);
      return {
        status: 200,
        body: reviews.slice((page - 1) * perPage, page * perPage).map((r) => ({
          id: r.id,
          node_id: `PRR_${r.id}`,
          user: { login: r.user, type: "User" },
          body: "",
          state: r.state,
          commit_id: r.commit_id,
          submitted_at: new Date(this.#now()).toISOString(),
          html_url: `${this.#url}/${repo.owner}/${repo.name}/pull/${number}#pullrequestreview-${r.id}`,
          author_association: "COLLABORATOR",
        })),
      };
    },

    "repos/get-collaborator-permission-level": ({ params }) => {
      const repo = this.#repoFor(params);
      const user = params.username ?? "";
      const role = repo.roles.get(user.toLowerCase());
      // `permission` is the legacy level: maintain reads as write, triage as read.
      const permission =
        role === undefined
          ? "none"
          : role === "maintain"
            ? "write"
            : role === "triage"
              ? "read"
              : role;
      return {
        status: 200,
        body: {
          permission,
          role_name: role ?? "none",
          user: { login: user, type: "User" },
        },
      };
    },

    "apps/list-webhook-deliveries": ({ query }) => {
      const perPage = Math.min(100, Number(query.get("per_page") ?? 30));
      const cursor = Number(query.get("cursor") ?? Number.MAX_SAFE_INTEGER);
      // Newest first, paginated by a cursor (the id to continue below).
      const page = [...this.deliveries]
        .reverse()
        .filter((d) => d.id < cursor)
        .slice(0, perPage);
      return {
        status: 200,
        body: page.map(({ payload: _payload, ...listed }) => listed),
      };
    },

    "apps/redeliver-webhook-delivery": async ({ params }) => {
      const original = this.deliveries.find((d) => d.id === Number(params.delivery_id));
      if (!original) throw notFound();
      // Acknowledged first, as GitHub does; the redelivery follows.
      void this.#deliver(original.event, original.payload, original);
      await Promise.resolve();
      return { status: 202, body: {} };
    },
  };
}

/** Every `CHECK_RUN_LIMITS` breach of a check-run body, in GitHub's words, or undefined. */
export function checkRunLimitProblem(body: unknown): string | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as { output?: Record<string, unknown>; actions?: unknown };
  const length = (v: unknown) => (typeof v === "string" ? [...v].length : 0);
  const problems: string[] = [];
  if (length(b.output?.summary) > CHECK_RUN_LIMITS.summaryChars)
    problems.push(`output.summary is longer than ${CHECK_RUN_LIMITS.summaryChars} characters`);
  if (length(b.output?.text) > CHECK_RUN_LIMITS.textChars)
    problems.push(`output.text is longer than ${CHECK_RUN_LIMITS.textChars} characters`);
  const annotations = b.output?.annotations;
  if (Array.isArray(annotations) && annotations.length > CHECK_RUN_LIMITS.annotationsPerRequest)
    problems.push(
      `Only ${CHECK_RUN_LIMITS.annotationsPerRequest} annotations are allowed per request`,
    );
  if (Array.isArray(b.actions)) {
    if (b.actions.length > CHECK_RUN_LIMITS.actions)
      problems.push(`Only ${CHECK_RUN_LIMITS.actions} actions are allowed`);
    for (const action of b.actions as Record<string, unknown>[]) {
      if (length(action.label) > CHECK_RUN_LIMITS.actionLabelChars)
        problems.push(
          `action label "${String(action.label)}" is longer than ${CHECK_RUN_LIMITS.actionLabelChars} characters`,
        );
      if (length(action.identifier) > CHECK_RUN_LIMITS.actionIdentifierChars)
        problems.push(
          `action identifier "${String(action.identifier)}" is longer than ${CHECK_RUN_LIMITS.actionIdentifierChars} characters`,
        );
      if (length(action.description) > CHECK_RUN_LIMITS.actionDescriptionChars)
        problems.push(
          `action description is longer than ${CHECK_RUN_LIMITS.actionDescriptionChars} characters`,
        );
    }
  }
  return problems.length > 0 ? `Invalid request: ${problems.join("; ")}` : undefined;
}

/** Base64 in lines of 60 characters, as GitHub sends file contents. */
function base64Lines(content: Buffer): string {
  return (content.toString("base64").match(/.{1,60}/g) ?? []).join("\n") + "\n";
}

function readAll(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks)));
    request.on("error", reject);
  });
}

function json(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-github-media-type": "github.v3; format=json",
  });
  response.end(text);
}
