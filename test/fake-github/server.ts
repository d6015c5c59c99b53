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
 * see the repository, not expired, and carrying the permission the route needs (403
 * otherwise; permissions.ts: installations grant app.yml's permissions, a token has what it
 * was minted with, asking for more than the installation has is 422). Paths may carry GitHub Enterprise Server's `/api/v3`
 * prefix, so an app configured with GHE_HOST/GHE_PROTOCOL can be pointed here. A user token
 * (`userToken(login)`) is good for `GET /user` only. Writes are paced by GitHub's secondary
 * rate limit (403 with `retry-after`, GitHub's behaviour, so not unexpected).
 *
 * Scenario drivers (`install`, `push`, `openPullRequest`, `pushToPullRequest`, `comment`,
 * `requestAction`, `submitReview`) change state and deliver the matching webhook. GitHub
 * Actions (workflow dispatch, runs, cancel, and their drivers) live in actions.ts.
 */
import {
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  verify,
  type KeyObject,
  randomUUID,
} from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import {
  FakeActions,
  type ActionsHost,
  type FakeActionsOptions,
  type FakeWorkflowRun,
  type WorkflowRunConclusion,
} from "./actions.js";
import { GIT_HTTP_PATH, serveGitHttp } from "./git-http.js";
import { FakeActionsOidc, OIDC_PATH } from "./actions-oidc.js";
import { GitObjects, type Commit } from "./git-objects.js";
import { checkRequest, findOperation, type MatchedOperation } from "./openapi.js";
import {
  allows,
  BATON_APP_PERMISSIONS,
  describeNeeds,
  GIT_FETCH_NEEDS,
  grant,
  OPERATION_PERMISSIONS,
  PERMISSIONS_NOT_GRANTED,
  type AppPermissions,
} from "./permissions.js";
import {
  patchPayload,
  patchUser,
  replaceInStrings,
  sendWebhook,
  webhookExample,
  type SentWebhook,
} from "./webhooks.js";

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

/** "List pull requests files" lists at most 3000 files (GitHub's documented cap). */
const PULL_REQUEST_FILES_LIMIT = 3000;

/** GitHub's answer to a request over a secondary rate limit (403, with `retry-after`). */
export const SECONDARY_RATE_LIMIT_MESSAGE =
  "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. Please retry your request again later.";

/** Content-creating methods: the ones GitHub's secondary rate limit counts. */
const WRITE_METHODS = new Set(["POST", "PATCH", "PUT", "DELETE"]);

/** Operations outside `/app` that GitHub serves to the app's JWT, not to a token. */
const APP_JWT_OPERATIONS = new Set(["apps/get-repo-installation"]);

/** Operations only a user token can call (an installation token is refused). */
const USER_TOKEN_OPERATIONS = new Set(["users/get-authenticated"]);

const NULL_SHA = "0".repeat(40);

/**
 * Fields GitHub added after @octokit/webhooks-examples was recorded, which the published
 * webhook schemas require: filled in where an example lacks them.
 */
const REPOSITORY_PAYLOAD_DEFAULTS = {
  has_discussions: false,
  topics: [],
  visibility: "public",
  pushed_at: "2026-01-01T00:00:00Z",
};
const REACTIONS = {
  url: "",
  total_count: 0,
  "+1": 0,
  "-1": 0,
  laugh: 0,
  hooray: 0,
  confused: 0,
  heart: 0,
  rocket: 0,
  eyes: 0,
};

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
  /** Set by `PUT …/pulls/{n}/merge`. */
  merged?: boolean;
}

export interface FakeReview {
  id: number;
  pull_number: number;
  user: string;
  state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED" | "DISMISSED";
  commit_id: string;
  body?: string;
}

/** An answer to a deployment protection rule (`actions/review-custom-gates-for-run`). */
export interface FakeDeploymentGateReview {
  repository: string;
  workflowRunId: number;
  environment: string;
  /** Absent when the app only commented (a status update). */
  state?: "approved" | "rejected";
  comment?: string;
}

/** A content-creating request an installation made (see `secondaryRateLimit`). */
export interface RecordedWrite {
  installationId: number;
  /** Milliseconds since the epoch, by the fake's clock. */
  at: number;
  method: string;
  path: string;
}

/** What `FakeGitHub.repository()` tells about a repository. */
export interface FakeRepositoryInfo {
  id: number;
  fullName: string;
  defaultBranch: string;
  installationId: number;
}

interface Repository {
  id: number;
  owner: string;
  name: string;
  private: boolean;
  defaultBranch: string;
  installationId: number;
  /** Branch names → commit SHAs. */
  refs: Map<string, string>;
  /** Tag names → commit SHAs (lightweight tags). */
  tags: Map<string, string>;
  roles: Map<string, RepositoryRole>;
  pulls: Map<number, FakePullRequest>;
  issues: Set<number>;
  /** Labels added through the REST API, by issue or pull request number. */
  labels: Map<number, string[]>;
  reviews: FakeReview[];
}

interface Installation {
  id: number;
  account: string;
  createdAt: string;
  /** What the owner granted the app (Default: app.yml's default_permissions). */
  permissions: AppPermissions;
}

/** A route refused for the token's permissions (403), GitHub's answer, so not unexpected. */
export interface PermissionRefusal {
  method: string;
  path: string;
  operationId: string;
  /** What the route needs: one of these. */
  needs: string;
  /** What the token had. */
  permissions: Record<string, string>;
  repositoryIds: number[] | undefined;
}

/** A token GitHub would not mint (422): more permissions than the installation has. */
export interface TokenRefusal {
  installationId: number;
  requested: Record<string, unknown>;
  installation: AppPermissions;
}

/** An issue created through the REST API (`POST /repos/{o}/{r}/issues`). */
export interface FakeIssue {
  repository: string;
  number: number;
  title: string;
  body: string | null;
  labels: string[];
}

interface UserGrant {
  login: string;
  id: number;
}

export interface IssuedToken {
  installationId: number;
  expiresAt: number;
  /** Repository ids the token is restricted to; undefined for all of the installation's. */
  repositoryIds: number[] | undefined;
  permissions: Record<string, "read" | "write">;
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
    readonly headers: Record<string, string> = {},
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
  /**
   * GitHub's secondary rate limit on content creation: more than `perMinute` POST, PATCH,
   * PUT or DELETE requests by one installation within 60 seconds are answered 403 with
   * `retry-after`. (Default: 80 per minute, GitHub's documented limit)
   */
  secondaryRateLimit?: { perMinute?: number };
  /**
   * GitHub Actions' behaviour (actions.ts): `returnRunDetails: false` answers every dispatch
   * 204 as GitHub Enterprise Server ≤ 3.20 does; `onCancel` "complete" | "ignore".
   * (Default: github.com's, and cancels complete)
   */
  actions?: FakeActionsOptions;
}

interface HandlerResult {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
}

type Handler = (request: {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  /** The installation token's grant, for routes called with one. */
  token: IssuedToken | undefined;
  /** The user, for routes called with a user token. */
  user: UserGrant | undefined;
  /** The request's URL on the fake (with any `/api/v3` prefix), for `Link` headers. */
  url: URL;
}) => HandlerResult | Promise<HandlerResult>;

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
  /** Requests refused 403 because the token lacked the route's permission. */
  readonly permissionRefusals: PermissionRefusal[] = [];
  /** Tokens refused 422 because they asked for permissions the installation lacks. */
  readonly tokenRefusals: TokenRefusal[] = [];
  /** Issues created through the REST API, oldest first. */
  readonly createdIssues: FakeIssue[] = [];
  /** Every token minted, oldest first: its installation, repositories and permissions. */
  readonly issuedTokens: Readonly<IssuedToken>[] = [];
  /** Every content-creating request an installation token made and GitHub accepted. */
  readonly writes: RecordedWrite[] = [];
  /**
   * Writes refused for the secondary rate limit (403 with `retry-after`): GitHub's real
   * behaviour, so not unexpected, but a test can assert that Baton paced itself.
   */
  readonly rateLimited: RecordedWrite[] = [];
  webhook: { url: string; secret: string } | undefined;

  // --- Approvals (issue 5): teams and deployment protection rule answers -----------------
  /** Active members of each team, by `org/team-slug` (lower case), as `addTeamMember` set them. */
  readonly #teamMembers = new Map<string, Set<string>>();
  /** Answers given through `POST …/actions/runs/{run_id}/deployment_protection_rule`, in order. */
  readonly deploymentGateReviews: FakeDeploymentGateReview[] = [];
  // --- end of approvals ----------------------------------------------------------------

  readonly #publicKey: KeyObject;
  readonly #server: Server;
  readonly #now: () => number;
  readonly #treeEntryLimit: number;
  readonly #installations = new Map<number, Installation>();
  readonly #repositories = new Map<string, Repository>();
  readonly #tokens = new Map<string, IssuedToken>();
  readonly #userTokens = new Map<string, UserGrant>();
  /** Stable ids for user logins, shared by user tokens and webhook payloads. */
  readonly #userIds = new Map<string, number>();
  readonly #writesPerMinute: number;
  #nextId = 1000;
  /** Workflow dispatch and runs (actions.ts). */
  readonly #actions: FakeActions;
  /** Actions' OIDC issuer: keys, and tokens for jobs of workflow runs (actions-oidc.ts). */
  readonly oidc: FakeActionsOidc;
  /** Bare repositories served over git's HTTP protocol, made on first use (git-http.ts). */
  #gitRoot: string | undefined;
  #url = "";

  private constructor(options: FakeGitHubOptions) {
    this.appId = options.appId ?? 1;
    this.#now = options.now ?? Date.now;
    this.#treeEntryLimit = options.treeEntryLimit ?? 100_000;
    this.#writesPerMinute = options.secondaryRateLimit?.perMinute ?? 80;
    this.webhook = options.webhook;
    this.#actions = new FakeActions(this.#actionsHost(), options.actions);
    this.oidc = new FakeActionsOidc(
      () => this.#url,
      () => this.#now(),
    );
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

  async stop(): Promise<void> {
    await this.#actions.settled();
    await new Promise<void>((resolve, reject) => {
      this.#server.close((error) => (error ? reject(error) : resolve()));
      this.#server.closeAllConnections();
    });
    if (this.#gitRoot) await rm(this.#gitRoot, { recursive: true, force: true });
  }

  /**
   * `git fetch` of a repository, with an installation token that can read it as basic auth
   * (`x-access-token:<token>`), as GitHub answers it; anything else is refused (401, 404)
   * and recorded as unexpected.
   */
  async #serveGit(
    request: IncomingMessage,
    response: ServerResponse,
    body: Buffer,
    url: URL,
    match: RegExpExecArray,
  ): Promise<void> {
    const method = request.method ?? "GET";
    const refuse = (status: number, reason: string) => {
      this.#unexpected(method, url.pathname + url.search, status, reason);
      response
        .writeHead(status, status === 401 ? { "www-authenticate": 'Basic realm="GitHub"' } : {})
        .end(reason);
    };
    const repo = this.#repositories.get(`${match[1]}/${match[2]}`.toLowerCase());
    if (!repo) return refuse(404, "Repository not found.");
    const basic = /^basic\s+(\S+)$/i.exec(request.headers.authorization ?? "")?.[1];
    const [user, token = ""] = Buffer.from(basic ?? "", "base64")
      .toString("utf8")
      .split(":");
    const grant = this.#tokens.get(token);
    if (
      basic === undefined ||
      user !== "x-access-token" ||
      !grant ||
      grant.expiresAt <= this.#now()
    )
      return refuse(401, "Invalid username or token.");
    if (
      grant.installationId !== repo.installationId ||
      (grant.repositoryIds !== undefined && !grant.repositoryIds.includes(repo.id))
    )
      return refuse(404, "Repository not found.");
    if (!allows(grant.permissions, GIT_FETCH_NEEDS))
      return refuse(403, `Write access to repository not granted (the token cannot read contents)`);
    this.requests.push({
      method,
      path: url.pathname,
      operationId: undefined,
      status: 200,
      body: undefined,
    });
    this.#gitRoot ??= await mkdtemp(join(tmpdir(), "fake-github-git-"));
    await serveGitHttp({
      request,
      response,
      body,
      url,
      servicePath: match[3] ?? "",
      repository: {
        fullName: `${repo.owner}/${repo.name}`,
        refs: repo.refs,
        defaultBranch: repo.defaultBranch,
      },
      objects: this.git,
      root: this.#gitRoot,
    });
  }

  /** Throws `UnexpectedGitHubRequestsError` listing every unexpected request so far. */
  assertNoUnexpectedRequests(): void {
    if (this.unexpected.length > 0) throw new UnexpectedGitHubRequestsError(this.unexpected);
  }

  // --- Seeding state -------------------------------------------------------------------

  /** An installation; `permissions` are what its owner granted (Default: app.yml's). */
  addInstallation(installation: {
    id: number;
    account: string;
    permissions?: Record<string, "read" | "write">;
  }): void {
    this.#installations.set(installation.id, {
      id: installation.id,
      account: installation.account,
      createdAt: new Date(this.#now()).toISOString(),
      permissions: { ...(installation.permissions ?? BATON_APP_PERMISSIONS) },
    });
  }

  /** The labels of an issue or pull request (added through the REST API). */
  labels(fullName: string, number: number): string[] {
    return [...(this.#repo(fullName).labels.get(number) ?? [])];
  }

  /** A user's token (`gho_…`, as a GitHub App's user access token): `GET /user` answers them. */
  userToken(login: string): string {
    const token = `gho_${randomBytes(27).toString("base64url")}`;
    this.#userTokens.set(token, { login, id: this.#userId(login) });
    return token;
  }

  /** What the fake knows of a repository (its id, for payload assertions). */
  repository(fullName: string): FakeRepositoryInfo {
    const repo = this.#repo(fullName);
    return {
      id: repo.id,
      fullName: `${repo.owner}/${repo.name}`,
      defaultBranch: repo.defaultBranch,
      installationId: repo.installationId,
    };
  }

  /** A pull request as stored (its head SHA moves with `pushToPullRequest`). */
  pullRequest(fullName: string, number: number): FakePullRequest {
    const pull = this.#repo(fullName).pulls.get(number);
    if (!pull) throw new Error(`${fullName} has no pull request #${number}`);
    return pull;
  }

  /** The comments on an issue or pull request, oldest first (the app's and users'). */
  issueComments(fullName: string, number: number): FakeIssueComment[] {
    const repository = this.repository(fullName).fullName;
    return this.comments.filter((c) => c.repository === repository && c.issue_number === number);
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
      tags: new Map(),
      roles: new Map(),
      pulls: new Map(),
      issues: new Set(),
      labels: new Map(),
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

  /** A lightweight tag on `sha` (Default: the default branch's head). */
  tag(fullName: string, name: string, sha?: string): string {
    const target = sha ?? this.head(fullName);
    if (this.git.get(target)?.type !== "commit") throw new Error(`${target} is not a commit`);
    this.#repo(fullName).tags.set(name, target);
    return target;
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

  /** Add a review without a webhook (see `submitReview` for the one with). */
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

  // --- Scenario drivers: change state and deliver the matching webhook -------------------

  /**
   * Install the app on `account` with new `repositories` (each with one commit of `files`,
   * default a README) and deliver `installation.created` listing them.
   */
  async install(options: {
    installationId: number;
    account: string;
    repositories: {
      name: string;
      files?: Record<string, string | Buffer>;
      private?: boolean;
      defaultBranch?: string;
    }[];
    sender?: string;
    /** What the owner grants (Default: app.yml's default_permissions). */
    permissions?: Record<string, "read" | "write">;
  }): Promise<SentWebhook> {
    this.#requireWebhook();
    this.addInstallation({
      id: options.installationId,
      account: options.account,
      ...(options.permissions ? { permissions: options.permissions } : {}),
    });
    const repos = options.repositories.map((r) => {
      this.addRepository({
        owner: options.account,
        name: r.name,
        installationId: options.installationId,
        files: r.files ?? { "README.md": `# ${r.name}\n` },
        ...(r.private !== undefined ? { private: r.private } : {}),
        ...(r.defaultBranch !== undefined ? { defaultBranch: r.defaultBranch } : {}),
      });
      return this.#repo(`${options.account}/${r.name}`);
    });
    const payload = webhookExample("installation", "created");
    payload.installation = this.#installationJson(
      this.#installations.get(options.installationId)!,
      (payload.installation ?? {}) as Record<string, unknown>,
    );
    payload.repositories = repos.map((r) => ({
      id: r.id,
      node_id: `R_${r.id}`,
      name: r.name,
      full_name: `${r.owner}/${r.name}`,
      private: r.private,
    }));
    payload.sender = this.#userJson(options.sender ?? options.account, payload.sender);
    return this.#deliver("installation", payload, undefined);
  }

  /**
   * Commit `files` (path → content, null deletes) on `branch` (Default: the default
   * branch) and deliver `push` as GitHub does for one pushed commit.
   */
  async push(
    fullName: string,
    options: {
      files: Record<string, string | Buffer | null>;
      branch?: string;
      message?: string;
      pusher?: string;
    },
  ): Promise<{ sha: string; delivery: SentWebhook }> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const branch = options.branch ?? repo.defaultBranch;
    const before = repo.refs.get(branch);
    const message = options.message ?? "Commit";
    const sha = this.commit(fullName, { files: options.files, branch, message });
    const pusher = options.pusher ?? repo.owner;
    const template = webhookExample(
      "push",
      undefined,
      (e) => Array.isArray(e.commits) && e.commits.length > 0,
    );
    const payload = this.#repositoryPayload(template, repo);
    const commit = this.#pushCommitJson(
      repo,
      sha,
      message,
      pusher,
      (template.commits as unknown[])[0],
    );
    Object.assign(payload, {
      ref: `refs/heads/${branch}`,
      before: before ?? NULL_SHA,
      after: sha,
      created: before === undefined,
      deleted: false,
      forced: false,
      base_ref: null,
      compare: `${this.#url}/${repo.owner}/${repo.name}/compare/${(before ?? NULL_SHA).slice(0, 12)}...${sha.slice(0, 12)}`,
      commits: [commit],
      head_commit: commit,
      pusher: { name: pusher, email: `${pusher}@users.noreply.example.com` },
      sender: this.#userJson(pusher, template.sender),
    });
    return { sha, delivery: await this.#deliver("push", payload, undefined) };
  }

  /**
   * Open pull request `number` from `headBranch` into the default branch (committing
   * `files` on the head branch first, when given) and deliver `pull_request.opened`.
   * `fromFork` names the head repository, as in `addPullRequest`.
   */
  async openPullRequest(
    fullName: string,
    options: {
      number: number;
      headBranch: string;
      user: string;
      files?: Record<string, string | Buffer | null>;
      fromFork?: string;
      title?: string;
    },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    if (repo.pulls.has(options.number) || repo.issues.has(options.number))
      throw new Error(`${fullName} already has an issue or pull request #${options.number}`);
    if (options.files)
      this.commit(fullName, {
        files: options.files,
        branch: options.headBranch,
        message: options.title ?? `Changes for #${options.number}`,
      });
    const pull = this.addPullRequest(fullName, {
      number: options.number,
      headBranch: options.headBranch,
      user: options.user,
      ...(options.title !== undefined ? { title: options.title } : {}),
      ...(options.fromFork !== undefined ? { fromFork: options.fromFork } : {}),
    });
    const template = webhookExample("pull_request", "opened");
    const payload = this.#repositoryPayload(template, repo);
    payload.number = pull.number;
    payload.pull_request = this.#pullRequestPayload(repo, pull, payload.pull_request);
    payload.sender = this.#userJson(options.user, template.sender);
    return this.#deliver("pull_request", payload, undefined);
  }

  /** Commit `files` on a pull request's head branch and deliver `pull_request.synchronize`. */
  async pushToPullRequest(
    fullName: string,
    number: number,
    options: { files: Record<string, string | Buffer | null>; message?: string },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const pull = this.pullRequest(fullName, number);
    const before = pull.head.sha;
    pull.head.sha = this.commit(fullName, {
      files: options.files,
      branch: pull.head.ref,
      message: options.message ?? `More changes for #${number}`,
    });
    const template = webhookExample("pull_request", "synchronize");
    const payload = this.#repositoryPayload(template, repo);
    Object.assign(payload, {
      number,
      before,
      after: pull.head.sha,
      pull_request: this.#pullRequestPayload(repo, pull, payload.pull_request),
      sender: this.#userJson(pull.user, template.sender),
    });
    return this.#deliver("pull_request", payload, undefined);
  }

  /**
   * `user` comments `body` on an issue or pull request: stored, and delivered as
   * `issue_comment.created` (with `issue.pull_request` when the number is a pull request).
   */
  async comment(
    fullName: string,
    issueNumber: number,
    options: { user: string; body: string },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const pull = repo.pulls.get(issueNumber);
    if (!pull && !repo.issues.has(issueNumber))
      throw new Error(`${fullName} has no issue or pull request #${issueNumber}`);
    const repository = `${repo.owner}/${repo.name}`;
    const stored: FakeIssueComment = {
      id: this.#id(),
      repository,
      issue_number: issueNumber,
      body: options.body,
      user: options.user,
      created_at: new Date(this.#now()).toISOString(),
    };
    this.comments.push(stored);
    const template = webhookExample("issue_comment", "created");
    const payload = this.#repositoryPayload(template, repo);
    const issueTemplate = template.issue as Record<string, unknown>;
    const { pull_request: _none, ...issueFields } = issueTemplate;
    const issueUrl = `${this.#url}/repos/${repository}/issues/${issueNumber}`;
    payload.issue = {
      active_lock_reason: null,
      reactions: REACTIONS,
      ...issueFields,
      labels: [],
      id: issueNumber + 400_000,
      node_id: `I_${issueNumber}`,
      number: issueNumber,
      title: pull?.title ?? `Issue ${issueNumber}`,
      state: pull?.state ?? "open",
      user: this.#userJson(pull?.user ?? repo.owner, issueTemplate.user),
      url: issueUrl,
      html_url: `${this.#url}/${repository}/${pull ? "pull" : "issues"}/${issueNumber}`,
      ...(pull
        ? {
            pull_request: {
              url: `${this.#url}/repos/${repository}/pulls/${issueNumber}`,
              html_url: `${this.#url}/${repository}/pull/${issueNumber}`,
              diff_url: `${this.#url}/${repository}/pull/${issueNumber}.diff`,
              patch_url: `${this.#url}/${repository}/pull/${issueNumber}.patch`,
              merged_at: null,
            },
          }
        : {}),
    };
    payload.comment = {
      performed_via_github_app: null,
      reactions: REACTIONS,
      ...(template.comment as Record<string, unknown>),
      ...this.#issueCommentJson(stored),
      user: this.#userJson(options.user, (template.comment as Record<string, unknown>).user),
      author_association: repo.roles.has(options.user.toLowerCase()) ? "COLLABORATOR" : "NONE",
    };
    payload.sender = this.#userJson(options.user, template.sender);
    return this.#deliver("issue_comment", payload, undefined);
  }

  /** `user` clicks the action `identifier` of a stored check run: `check_run.requested_action`. */
  async requestAction(
    fullName: string,
    checkRunId: number,
    options: { identifier: string; user: string },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const run = this.checkRuns.find(
      (r) => r.id === checkRunId && r.repository === `${repo.owner}/${repo.name}`,
    );
    if (!run) throw new Error(`${fullName} has no check run ${checkRunId}`);
    const template = webhookExample("check_run", "requested_action");
    const payload = this.#repositoryPayload(template, repo);
    const exampleRun = payload.check_run as Record<string, unknown>;
    const ownRun = this.#checkRunJson(run);
    payload.check_run = {
      ...exampleRun,
      ...ownRun,
      app: { ...(exampleRun.app as Record<string, unknown>), ...(ownRun.app as object) },
    };
    payload.requested_action = { identifier: options.identifier };
    payload.organization = {
      ...(template.organization as Record<string, unknown>),
      login: repo.owner,
      id: repo.installationId,
    };
    payload.sender = this.#userJson(options.user, template.sender);
    return this.#deliver("check_run", payload, undefined);
  }

  /**
   * `user` submits a review of a pull request (on its head, or `commitId`): stored, and
   * delivered as `pull_request_review.submitted`.
   */
  async submitReview(
    fullName: string,
    number: number,
    options: {
      user: string;
      state: "APPROVED" | "CHANGES_REQUESTED" | "COMMENTED";
      body?: string;
      commitId?: string;
    },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const pull = this.pullRequest(fullName, number);
    const review = this.addReview(fullName, {
      pull_number: number,
      user: options.user,
      state: options.state,
      commit_id: options.commitId ?? pull.head.sha,
      ...(options.body !== undefined ? { body: options.body } : {}),
    });
    const template = webhookExample("pull_request_review", "submitted");
    const payload = this.#repositoryPayload(template, repo);
    const reviewTemplate = template.review as Record<string, unknown>;
    payload.review = {
      ...reviewTemplate,
      ...this.#reviewJson(repo, review),
      // Webhooks spell the state in lower case; the REST API in upper case.
      state: review.state.toLowerCase(),
      user: this.#userJson(options.user, reviewTemplate.user),
      pull_request_url: `${this.#url}/repos/${repo.owner}/${repo.name}/pulls/${number}`,
    };
    payload.pull_request = this.#pullRequestPayload(repo, pull, payload.pull_request);
    payload.sender = this.#userJson(options.user, template.sender);
    return this.#deliver("pull_request_review", payload, undefined);
  }

  // --- Approvals (issue 5): teams, dismissed reviews, deployment protection rules --------

  /** `user` becomes an active member of `team` (`org/team-slug`). */
  addTeamMember(team: string, user: string): void {
    const key = team.toLowerCase();
    const members = this.#teamMembers.get(key) ?? new Set<string>();
    members.add(user.toLowerCase());
    this.#teamMembers.set(key, members);
  }

  /**
   * `by` dismisses a stored review: its state becomes DISMISSED, and
   * `pull_request_review.dismissed` is delivered.
   */
  async dismissReview(
    fullName: string,
    number: number,
    reviewId: number,
    options: { by: string },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const pull = this.pullRequest(fullName, number);
    const review = repo.reviews.find((r) => r.id === reviewId && r.pull_number === number);
    if (!review) throw new Error(`${fullName}#${number} has no review ${reviewId}`);
    review.state = "DISMISSED";
    const template = webhookExample("pull_request_review", "dismissed");
    const payload = this.#repositoryPayload(template, repo);
    const reviewTemplate = template.review as Record<string, unknown>;
    payload.review = {
      ...reviewTemplate,
      ...this.#reviewJson(repo, review),
      state: "dismissed",
      user: this.#userJson(review.user, reviewTemplate.user),
      pull_request_url: `${this.#url}/repos/${repo.owner}/${repo.name}/pulls/${number}`,
    };
    payload.pull_request = this.#pullRequestPayload(repo, pull, payload.pull_request);
    payload.sender = this.#userJson(options.by, template.sender);
    return this.#deliver("pull_request_review", payload, undefined);
  }

  /**
   * An Actions job of workflow run `workflowRunId` targets `environment`, whose custom
   * deployment protection rule is this app: `deployment_protection_rule.requested`.
   * (@octokit/webhooks-examples has no example of it: the payload is built from GitHub's
   * published schema.) The app answers at `deployment_callback_url`; see
   * `deploymentGateReviews`.
   */
  async requestDeploymentGate(
    fullName: string,
    options: {
      environment: string;
      workflowRunId: number;
      sha?: string;
      ref?: string;
      user: string;
    },
  ): Promise<SentWebhook> {
    this.#requireWebhook();
    const repo = this.#repo(fullName);
    const template = webhookExample("push");
    const base = this.#repositoryPayload(template, repo);
    const sha = options.sha ?? this.head(fullName);
    const repository = `${repo.owner}/${repo.name}`;
    const payload: Record<string, unknown> = {
      action: "requested",
      environment: options.environment,
      event: "push",
      sha,
      ref: options.ref ?? `refs/heads/${repo.defaultBranch}`,
      deployment_callback_url: `${this.#url}/repos/${repository}/actions/runs/${options.workflowRunId}/deployment_protection_rule`,
      pull_requests: [],
      repository: base.repository,
      installation: base.installation,
      sender: this.#userJson(options.user, template.sender),
    };
    return this.#deliver("deployment_protection_rule", payload, undefined);
  }

  // --- end of approvals ----------------------------------------------------------------

  // --- Actions (issue 6): workflow runs; the logic is in actions.ts ----------------------

  /** Every dispatched workflow run, oldest first. */
  get workflowRuns(): readonly FakeWorkflowRun[] {
    return this.#actions.runs;
  }

  /** The numeric id of the workflow at `path` (`build.yml` or `.github/workflows/build.yml`). */
  workflowId(fullName: string, path: string): number {
    return this.#actions.workflowId(fullName, path);
  }

  /** The first dispatched run (matching `predicate`), once there is one. (Default timeout: 10 s) */
  waitForWorkflowRun(
    predicate?: (run: FakeWorkflowRun) => boolean,
    timeoutMs?: number,
  ): Promise<FakeWorkflowRun> {
    return this.#actions.waitForRun(predicate, timeoutMs);
  }

  /** `workflow_run.requested`. */
  async workflowRunRequested(id: number): Promise<SentWebhook> {
    this.#requireWebhook();
    return this.#actions.requested(id);
  }

  /** In progress: `workflow_job.queued`, `workflow_job.in_progress`, `workflow_run.in_progress`. */
  async startWorkflowRun(id: number): Promise<SentWebhook[]> {
    this.#requireWebhook();
    return this.#actions.start(id);
  }

  /** The run's job waits for `environment`'s protection rules: `workflow_job.waiting`. */
  async waitOnEnvironment(id: number, environment: string): Promise<SentWebhook> {
    this.#requireWebhook();
    return this.#actions.waitOnEnvironment(id, environment);
  }

  /** Completed with `conclusion`: `workflow_job.completed`, then `workflow_run.completed`. */
  async completeWorkflowRun(id: number, conclusion: WorkflowRunConclusion): Promise<SentWebhook[]> {
    this.#requireWebhook();
    return this.#actions.complete(id, conclusion);
  }

  /** What actions.ts needs of the fake's repositories, payloads and delivery. */
  #actionsHost(): ActionsHost {
    return {
      url: () => this.#url,
      now: () => this.#now(),
      nextId: () => this.#id(),
      repository: (fullName) => {
        const repo = this.#repositories.get(fullName.toLowerCase());
        return (
          repo && {
            fullName: `${repo.owner}/${repo.name}`,
            defaultBranch: repo.defaultBranch,
            branches: repo.refs,
            tags: repo.tags,
          }
        );
      },
      commit: (sha) => {
        const commit = this.git.get(sha);
        return commit?.type === "commit" ? commit : undefined;
      },
      file: (sha, path) => {
        const commit = this.git.get(sha);
        if (commit?.type !== "commit") return undefined;
        const blob = this.git.files(commit.tree).get(path);
        return blob === undefined ? undefined : this.#blobContent(blob)?.toString("utf8");
      },
      paths: (sha) => {
        const commit = this.git.get(sha);
        return commit?.type === "commit" ? [...this.git.files(commit.tree).keys()] : [];
      },
      repositoryPayload: (template, fullName) =>
        this.#repositoryPayload(template, this.#repo(fullName)),
      userJson: (login, template) => this.#userJson(login, template),
      hasWebhook: () => this.webhook !== undefined,
      deliver: (event, payload) => this.#deliver(event, payload, undefined),
      paginate,
      httpError: (status, message, unexpected) => new FakeHttpError(status, message, unexpected),
      recordUnexpected: (method, path, reason) => this.#unexpected(method, path, 500, reason),
    };
  }

  // --- end of actions ------------------------------------------------------------------

  #requireWebhook(): void {
    if (!this.webhook)
      throw new Error(
        "The fake GitHub has no webhook URL configured: start it with { webhook: { url, secret } } or set fake.webhook before driving a scenario",
      );
  }

  #userId(login: string): number {
    const key = login.toLowerCase();
    let id = this.#userIds.get(key);
    if (id === undefined) {
      id = this.#id();
      this.#userIds.set(key, id);
    }
    return id;
  }

  #userJson(login: string, template?: unknown): Record<string, unknown> {
    const type = login.endsWith("[bot]") ? "Bot" : "User";
    return patchUser(template, { login, id: this.#userId(login), type }, this.#url);
  }

  /**
   * A payload pointed at `repo`: the example's URLs re-pointed at the fake, then the
   * repository object, the installation and the organization patched.
   */
  #repositoryPayload(template: Record<string, unknown>, repo: Repository): Record<string, unknown> {
    const exampleName = (template.repository as { full_name?: string } | undefined)?.full_name;
    let payload = template;
    if (exampleName) {
      const fullName = `${repo.owner}/${repo.name}`;
      payload = replaceInStrings(
        payload,
        `https://api.github.com/repos/${exampleName}`,
        `${this.#url}/repos/${fullName}`,
      );
      payload = replaceInStrings(
        payload,
        `https://github.com/${exampleName}`,
        `${this.#url}/${fullName}`,
      );
    }
    patchPayload(payload, {
      installationId: repo.installationId,
      repository: {
        id: repo.id,
        owner: repo.owner,
        name: repo.name,
        defaultBranch: repo.defaultBranch,
      },
    });
    const repository = payload.repository as Record<string, unknown>;
    payload.repository = {
      ...REPOSITORY_PAYLOAD_DEFAULTS,
      ...repository,
      ...this.#repositoryJson(repo),
      owner: patchUser(
        repository.owner,
        { login: repo.owner, id: repo.installationId, type: "Organization" },
        this.#url,
      ),
    };
    // Events other than installation's carry only the installation's id and node id.
    payload.installation = { id: repo.installationId, node_id: `IN_${repo.installationId}` };
    if (payload.organization !== undefined)
      payload.organization = {
        ...(payload.organization as Record<string, unknown>),
        login: repo.owner,
        id: repo.installationId,
      };
    return payload;
  }

  #pullRequestPayload(
    repo: Repository,
    pull: FakePullRequest,
    template: unknown,
  ): Record<string, unknown> {
    const base = (template ?? {}) as Record<string, unknown>;
    const json = this.#pullRequestJson(repo, pull);
    const head = json.head as Record<string, unknown>;
    const headOwner = pull.head.repoFullName.split("/")[0] ?? repo.owner;
    const fullName = `${repo.owner}/${repo.name}`;
    const side = (name: "head" | "base") =>
      ((base[name] ?? {}) as Record<string, unknown>).repo as Record<string, unknown> | undefined;
    // The example's repository (every field GitHub sends), under the fake's own.
    const withDefaults = (repository: unknown, example: Record<string, unknown> | undefined) => {
      const own = repository as Record<string, unknown>;
      const target = String(own.full_name);
      const examples =
        target === fullName ? example : replaceInStrings(example, `/${fullName}`, `/${target}`);
      const owner = own.owner as { login: string; id: number; type?: "User" | "Organization" };
      return {
        ...REPOSITORY_PAYLOAD_DEFAULTS,
        ...examples,
        ...own,
        owner: patchUser(examples?.owner, owner, this.#url),
      };
    };
    return {
      draft: false,
      auto_merge: null,
      active_lock_reason: null,
      ...base,
      ...json,
      user: this.#userJson(pull.user, base.user),
      head: {
        ...head,
        repo: withDefaults(head.repo, side("head")),
        user: this.#userJson(headOwner),
      },
      base: {
        ...(json.base as Record<string, unknown>),
        repo: withDefaults((json.base as Record<string, unknown>).repo, side("base")),
        user: this.#userJson(repo.owner),
      },
      merged_at: null,
      closed_at: null,
      merge_commit_sha: null,
      author_association: repo.roles.has(pull.user.toLowerCase()) ? "COLLABORATOR" : "CONTRIBUTOR",
    };
  }

  /** A commit of a push payload: what it added, modified and removed against its parent. */
  #pushCommitJson(
    repo: Repository,
    sha: string,
    message: string,
    pusher: string,
    template: unknown,
  ): Record<string, unknown> {
    const commit = this.git.get(sha) as Commit;
    const parent = commit.parents[0] ? (this.git.get(commit.parents[0]) as Commit) : undefined;
    const changes = diffFiles(this.git, parent?.tree, commit.tree);
    const person = {
      name: pusher,
      email: `${pusher}@users.noreply.example.com`,
      username: pusher,
    };
    return {
      ...((template ?? {}) as Record<string, unknown>),
      id: sha,
      tree_id: commit.tree,
      distinct: true,
      message,
      timestamp: new Date(this.#now()).toISOString().replace(/\.\d{3}Z$/, "Z"),
      url: `${this.#url}/${repo.owner}/${repo.name}/commit/${sha}`,
      author: person,
      committer: person,
      added: changes.filter((c) => c.status === "added").map((c) => c.path),
      removed: changes.filter((c) => c.status === "removed").map((c) => c.path),
      modified: changes.filter((c) => c.status === "modified").map((c) => c.path),
    };
  }

  async #deliver(
    event: string,
    payload: Record<string, unknown>,
    redeliveryOf: HookDelivery | undefined,
  ): Promise<SentWebhook> {
    if (!this.webhook) throw new Error("The fake GitHub has no webhook URL configured");
    // GitHub picks the GUID before it tries: a delivery that could not be made keeps it.
    const guid = redeliveryOf?.guid ?? randomUUID();
    let sent: SentWebhook;
    let statusCode: number;
    try {
      sent = await sendWebhook({
        url: this.webhook.url,
        secret: this.webhook.secret,
        event,
        payload,
        deliveryId: guid,
      });
      statusCode = sent.status;
    } catch (error: unknown) {
      // Unreachable: GitHub records the failed delivery, status code 0.
      sent = { deliveryId: guid, status: 0, body: String(error), elapsedMs: 0 };
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
    const gitPath = GIT_HTTP_PATH.exec(pathname);
    if (gitPath) return this.#serveGit(request, response, raw, url, gitPath);
    const oidcPath = OIDC_PATH.exec(pathname);
    if (oidcPath) return this.oidc.serve(request, response, url, oidcPath[1] ?? "");
    const fail = (
      status: number,
      reason: string,
      unexpected: boolean,
      headers: Record<string, string> = {},
    ) => {
      if (unexpected) this.#unexpected(method, url.pathname + url.search, status, reason);
      this.requests.push({
        method,
        path: pathname,
        operationId: undefined,
        status,
        body: undefined,
      });
      json(
        response,
        status,
        { message: reason, documentation_url: "https://docs.github.com/rest" },
        headers,
      );
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

    const handler =
      this.#handlers[operation.operationId] ?? this.#actions.handlers[operation.operationId];
    if (!handler)
      return fail(
        501,
        `${operation.operationId} is documented but the fake does not implement it`,
        true,
      );
    try {
      const { token, user } = this.#authenticate(request, operation);
      if (token && WRITE_METHODS.has(method))
        this.#paceWrite(token.installationId, method, pathname);
      const result = await handler({
        params: operation.params,
        query: url.searchParams,
        body: (body ?? {}) as Record<string, unknown>,
        token,
        user,
        url: new URL(url.pathname + url.search, this.#url),
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
        json(response, result.status, result.body, result.headers);
      }
    } catch (error: unknown) {
      if (!(error instanceof FakeHttpError)) throw error;
      fail(error.status, error.message, error.unexpected, error.headers);
    }
  }

  /**
   * GitHub's secondary rate limit: an installation's writes in the last minute, over the
   * limit, are refused with 403 and `retry-after` (seconds until the oldest leaves the
   * window). Refused writes do not count toward the limit.
   */
  #paceWrite(installationId: number, method: string, path: string): void {
    const at = this.#now();
    const write: RecordedWrite = { installationId, at, method, path };
    const recent = this.writes.filter(
      (w) => w.installationId === installationId && w.at > at - 60_000,
    );
    if (recent.length >= this.#writesPerMinute) {
      this.rateLimited.push(write);
      const oldest = Math.min(...recent.map((w) => w.at));
      const retryAfter = Math.max(1, Math.ceil((oldest + 60_000 - at) / 1000));
      throw new FakeHttpError(403, SECONDARY_RATE_LIMIT_MESSAGE, false, {
        "retry-after": String(retryAfter),
      });
    }
    this.writes.push(write);
  }

  /**
   * Who is calling: the app (its JWT, for /app routes and `APP_JWT_OPERATIONS`), a user
   * (a user token, for `USER_TOKEN_OPERATIONS` only) or an installation (its token, for
   * every other route, and only for its repositories).
   */
  #authenticate(
    request: IncomingMessage,
    operation: MatchedOperation,
  ): { token?: IssuedToken; user?: UserGrant } {
    const header = request.headers.authorization ?? "";
    const credential = header.replace(/^(bearer|token)\s+/i, "");
    if (
      operation.template.startsWith("/app/") ||
      operation.template === "/app" ||
      APP_JWT_OPERATIONS.has(operation.operationId)
    ) {
      this.#verifyAppJwt(credential);
      return {};
    }
    const user = this.#userTokens.get(credential);
    const token = this.#tokens.get(credential);
    const userOnly = USER_TOKEN_OPERATIONS.has(operation.operationId);
    if (user) {
      if (userOnly) return { user };
      // A user access token could call many repository routes on GitHub, but Baton acts
      // as its installation there: a user token reaching one is a bug in the test's app.
      throw new FakeHttpError(
        403,
        `Resource not accessible by user token: ${operation.operationId} takes an installation token here`,
        true,
      );
    }
    if (!token || token.expiresAt <= this.#now())
      throw new FakeHttpError(401, "Bad credentials", true);
    if (userOnly) throw new FakeHttpError(403, "Resource not accessible by integration", true);
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
    const needs = OPERATION_PERMISSIONS[operation.operationId];
    if (needs === undefined)
      throw new FakeHttpError(
        501,
        `the fake does not know which permission ${operation.operationId} needs: add it to permissions.ts`,
        true,
      );
    if (!allows(token.permissions, needs)) {
      this.permissionRefusals.push({
        method: request.method ?? "",
        path: request.url ?? "",
        operationId: operation.operationId,
        needs: describeNeeds(needs),
        permissions: { ...token.permissions },
        repositoryIds: token.repositoryIds,
      });
      throw new FakeHttpError(403, "Resource not accessible by integration", false);
    }
    return { token };
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
    const tag = /^(?:refs\/)?tags\/(.+)$/.exec(ref)?.[1];
    const name = ref.replace(/^(?:refs\/)?heads\//, "");
    const sha =
      (tag !== undefined ? repo.tags.get(tag) : undefined) ??
      repo.refs.get(name) ??
      repo.tags.get(name) ??
      ref;
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

  #pullRequestJson(repo: Repository, pull: FakePullRequest): Record<string, unknown> {
    const fullName = `${repo.owner}/${repo.name}`;
    const base = this.#repositoryJson(repo);
    const fork = pull.head.repoFullName.toLowerCase() !== fullName.toLowerCase();
    return {
      id: pull.number + 500_000,
      node_id: `PR_${pull.number + 500_000}`,
      number: pull.number,
      state: pull.state,
      title: pull.title,
      draft: false,
      merged: pull.merged ?? false,
      user: this.#userJson(pull.user),
      body: null,
      html_url: `${this.#url}/${fullName}/pull/${pull.number}`,
      issue_url: `${this.#url}/repos/${fullName}/issues/${pull.number}`,
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
              owner: this.#userJson(pull.head.repoFullName.split("/")[0] ?? repo.owner),
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
    };
  }

  #installationJson(
    installation: Installation,
    template: Record<string, unknown> = {},
  ): Record<string, unknown> {
    return {
      ...template,
      id: installation.id,
      node_id: `IN_${installation.id}`,
      account: patchUser(
        template.account,
        { login: installation.account, id: installation.id, type: "Organization" },
        this.#url,
      ),
      repository_selection: "selected",
      access_tokens_url: `${this.#url}/app/installations/${installation.id}/access_tokens`,
      repositories_url: `${this.#url}/installation/repositories`,
      html_url: `${this.#url}/organizations/${installation.account}/settings/installations/${installation.id}`,
      app_id: this.appId,
      app_slug: "baton",
      target_id: installation.id,
      target_type: "Organization",
      permissions: { ...installation.permissions },
      events: ["check_run", "issue_comment", "pull_request", "pull_request_review", "push"],
      created_at: installation.createdAt,
      updated_at: installation.createdAt,
      single_file_name: null,
      suspended_at: null,
      suspended_by: null,
    };
  }

  #issueCommentJson(comment: FakeIssueComment): Record<string, unknown> {
    const number = comment.issue_number;
    return {
      id: comment.id,
      node_id: `IC_${comment.id}`,
      body: comment.body,
      user: this.#userJson(comment.user),
      html_url: `${this.#url}/${comment.repository}/issues/${number}#issuecomment-${comment.id}`,
      url: `${this.#url}/repos/${comment.repository}/issues/comments/${comment.id}`,
      issue_url: `${this.#url}/repos/${comment.repository}/issues/${number}`,
      created_at: comment.created_at,
      updated_at: comment.created_at,
      author_association: comment.user === "baton[bot]" ? "NONE" : "COLLABORATOR",
    };
  }

  #reviewJson(repo: Repository, review: FakeReview): Record<string, unknown> {
    const number = review.pull_number;
    return {
      id: review.id,
      node_id: `PRR_${review.id}`,
      user: this.#userJson(review.user),
      body: review.body ?? "",
      state: review.state,
      commit_id: review.commit_id,
      submitted_at: new Date(this.#now()).toISOString(),
      html_url: `${this.#url}/${repo.owner}/${repo.name}/pull/${number}#pullrequestreview-${review.id}`,
      pull_request_url: `${this.#url}/repos/${repo.owner}/${repo.name}/pulls/${number}`,
      author_association: "COLLABORATOR",
    };
  }

  #blobContent(sha: string): Buffer | undefined {
    const blob = this.git.get(sha);
    return blob?.type === "blob" ? blob.content : undefined;
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
      // Without one, GitHub points the details link at the app's homepage.
      details_url: run.details_url ?? `${this.#url}/apps/baton`,
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
      const requested = body.permissions as Record<string, unknown> | undefined;
      const permissions = grant(installation.permissions, requested);
      if (!permissions) {
        // GitHub's answer, which Baton must handle (a flow declaring more than the owner granted).
        this.tokenRefusals.push({
          installationId: installation.id,
          requested: { ...requested },
          installation: installation.permissions,
        });
        throw new FakeHttpError(422, PERMISSIONS_NOT_GRANTED, false);
      }
      const issued: IssuedToken = {
        installationId: installation.id,
        expiresAt,
        repositoryIds,
        permissions,
      };
      this.#tokens.set(token, issued);
      this.issuedTokens.push(issued);
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
      return { status: 201, body: this.#issueCommentJson(comment) };
    },

    "issues/list-comments": ({ params, query, url }) => {
      const repo = this.#repoFor(params);
      const number = Number(params.issue_number);
      if (!repo.issues.has(number) && !repo.pulls.has(number)) throw notFound();
      const since = query.get("since");
      const comments = this.issueComments(`${repo.owner}/${repo.name}`, number).filter(
        (c) => since === null || c.created_at >= since,
      );
      const { items, headers } = paginate(comments, query, url);
      return { status: 200, body: items.map((c) => this.#issueCommentJson(c)), headers };
    },

    "pulls/get": ({ params }) => {
      const repo = this.#repoFor(params);
      const pull = repo.pulls.get(Number(params.pull_number));
      if (!pull) throw notFound();
      return { status: 200, body: this.#pullRequestJson(repo, pull) };
    },

    "pulls/list-files": ({ params, query, url }) => {
      const repo = this.#repoFor(params);
      const pull = repo.pulls.get(Number(params.pull_number));
      if (!pull) throw notFound();
      const fullName = `${repo.owner}/${repo.name}`;
      // GitHub diffs the head against the merge base with the base branch.
      const baseSha =
        mergeBase(this.git, repo.refs.get(pull.base.ref) ?? pull.base.sha, pull.head.sha) ??
        pull.base.sha;
      const baseCommit = this.git.get(baseSha) as Commit;
      const headCommit = this.git.get(pull.head.sha) as Commit;
      const files = diffFiles(this.git, baseCommit.tree, headCommit.tree)
        .slice(0, PULL_REQUEST_FILES_LIMIT)
        .map((change) => {
          const { additions, deletions } = lineCounts(
            change.before ? this.#blobContent(change.before) : undefined,
            change.after ? this.#blobContent(change.after) : undefined,
          );
          const sha = change.after ?? change.before ?? NULL_SHA;
          const at = change.after ? pull.head.sha : baseSha;
          return {
            sha,
            filename: change.path,
            status: change.status,
            additions,
            deletions,
            changes: additions + deletions,
            blob_url: `${this.#url}/${fullName}/blob/${at}/${change.path}`,
            raw_url: `${this.#url}/${fullName}/raw/${at}/${change.path}`,
            contents_url: `${this.#url}/repos/${fullName}/contents/${change.path}?ref=${at}`,
          };
        });
      const { items, headers } = paginate(files, query, url);
      return { status: 200, body: items, headers };
    },

    "pulls/list-reviews": ({ params, query, url }) => {
      const repo = this.#repoFor(params);
      const number = Number(params.pull_number);
      if (!repo.pulls.has(number)) throw notFound();
      const reviews = repo.reviews.filter((r) => r.pull_number === number);
      const { items, headers } = paginate(reviews, query, url);
      return { status: 200, body: items.map((r) => this.#reviewJson(repo, r)), headers };
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

    "apps/list-webhook-deliveries": ({ query, url }) => {
      const perPage = perPageOf(query);
      // GitHub's cursor is opaque; here it is `v1_<id>`, the last id of the previous page.
      const cursorParam = query.get("cursor");
      let below = Number.POSITIVE_INFINITY;
      if (cursorParam !== null) {
        const match = /^v1_(\d+)$/.exec(cursorParam);
        if (!match) throw new FakeHttpError(422, `Invalid cursor: ${cursorParam}`, true);
        below = Number(match[1]);
      }
      const status = query.get("status");
      const matching = [...this.deliveries]
        .sort((a, b) => b.id - a.id) // newest first
        .filter((d) => d.id < below)
        .filter(
          (d) =>
            status === null ||
            (status === "success") === (d.status_code >= 200 && d.status_code < 300),
        );
      const page = matching.slice(0, perPage);
      const headers: Record<string, string> = {};
      const last = page.at(-1);
      if (matching.length > perPage && last) {
        const next = new URL(url);
        next.searchParams.set("per_page", String(perPage));
        next.searchParams.set("cursor", `v1_${last.id}`);
        headers.link = `<${next.href}>; rel="next"`;
      }
      return {
        status: 200,
        body: page.map(({ payload: _payload, ...listed }) => listed),
        headers,
      };
    },

    // The app itself: Baton reads its slug at start (its bot's login is `<slug>[bot]`).
    "apps/get-authenticated": () => ({
      status: 200,
      body: {
        id: this.appId,
        slug: "baton",
        node_id: `A_${this.appId}`,
        name: "Baton",
        owner: null,
        description: "Workflows as YAML",
        external_url: "https://example.com",
        html_url: "https://github.com/apps/baton",
        created_at: "2026-01-01T00:00:00Z",
        updated_at: "2026-01-01T00:00:00Z",
        permissions: { checks: "write", contents: "read", metadata: "read" },
        events: ["push"],
      },
    }),

    "apps/list-installations": ({ query, url }) => {
      const installations = [...this.#installations.values()].sort((a, b) => a.id - b.id);
      const { items, headers } = paginate(installations, query, url);
      return { status: 200, body: items.map((i) => this.#installationJson(i)), headers };
    },

    "apps/get-installation": ({ params }) => {
      const installation = this.#installations.get(Number(params.installation_id));
      if (!installation) throw notFound();
      return { status: 200, body: this.#installationJson(installation) };
    },

    "issues/create": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const number = Math.max(0, ...repo.issues, ...repo.pulls.keys()) + 1;
      repo.issues.add(number);
      const labels = ((body.labels ?? []) as unknown[]).map((label) =>
        typeof label === "string" ? label : String((label as { name?: unknown }).name),
      );
      repo.labels.set(number, labels);
      const fullName = `${repo.owner}/${repo.name}`;
      const issue: FakeIssue = {
        repository: fullName,
        number,
        title: String(body.title),
        body: typeof body.body === "string" ? body.body : null,
        labels,
      };
      this.createdIssues.push(issue);
      return {
        status: 201,
        body: {
          id: this.#id(),
          number,
          title: issue.title,
          body: issue.body,
          state: "open",
          labels: labels.map((name) => ({ name })),
          url: `${this.#url}/repos/${fullName}/issues/${number}`,
          html_url: `${this.#url}/${fullName}/issues/${number}`,
        },
      };
    },

    "issues/add-labels": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const number = Number(params.issue_number);
      if (!repo.issues.has(number) && !repo.pulls.has(number)) throw notFound();
      const given = Array.isArray(body.labels) ? (body.labels as unknown[]) : [];
      const names = given.map((label) =>
        typeof label === "string" ? label : String((label as { name?: unknown }).name),
      );
      const labels = [...new Set([...(repo.labels.get(number) ?? []), ...names])];
      repo.labels.set(number, labels);
      return { status: 200, body: labels.map((name) => ({ name })) };
    },

    "pulls/merge": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const pull = repo.pulls.get(Number(params.pull_number));
      if (!pull) throw notFound();
      if (pull.state !== "open" || pull.merged)
        throw new FakeHttpError(405, "Pull Request is not mergeable", false);
      if (typeof body.sha === "string" && body.sha !== pull.head.sha)
        throw new FakeHttpError(
          409,
          "Head branch was modified. Review and try the merge again.",
          false,
        );
      // Every method lands the head's tree on the base branch in one new commit (a squash);
      // the fake keeps no merge commits with two parents or rebased copies.
      const head = this.git.get(pull.head.sha) as Commit;
      const baseHead = repo.refs.get(repo.defaultBranch);
      const commit = this.git.commit(
        head.tree,
        baseHead ? [baseHead] : [],
        typeof body.commit_title === "string"
          ? body.commit_title
          : `${pull.title} (#${pull.number})`,
      );
      repo.refs.set(repo.defaultBranch, commit.sha);
      pull.state = "closed";
      pull.merged = true;
      return {
        status: 200,
        body: { sha: commit.sha, merged: true, message: "Pull Request successfully merged" },
      };
    },

    "apps/get-repo-installation": ({ params }) => {
      const repo = this.#repoFor(params);
      const installation = this.#installations.get(repo.installationId);
      if (!installation) throw notFound();
      return { status: 200, body: this.#installationJson(installation) };
    },

    "apps/list-repos-accessible-to-installation": ({ query, url, token }) => {
      if (!token) throw new FakeHttpError(401, "Bad credentials", true);
      const repos = [...this.#repositories.values()]
        .filter(
          (r) =>
            r.installationId === token.installationId &&
            (token.repositoryIds === undefined || token.repositoryIds.includes(r.id)),
        )
        .sort((a, b) => a.id - b.id);
      const { items, headers } = paginate(repos, query, url);
      return {
        status: 200,
        body: {
          total_count: repos.length,
          repository_selection: token.repositoryIds ? "selected" : "all",
          repositories: items.map((r) => this.#repositoryJson(r)),
        },
        headers,
      };
    },

    "users/get-authenticated": ({ user }) => {
      if (!user) throw new FakeHttpError(401, "Bad credentials", true);
      return {
        status: 200,
        body: { ...this.#userJson(user.login), name: null, email: null },
      };
    },

    "git/get-ref": ({ params }) => {
      const repo = this.#repoFor(params);
      const ref = params.ref ?? "";
      const match = /^(heads|tags)\/(.+)$/.exec(ref);
      const sha = match?.[2] && (match[1] === "heads" ? repo.refs : repo.tags).get(match[2]);
      if (!sha) throw notFound();
      const base = `${this.#url}/repos/${repo.owner}/${repo.name}`;
      return {
        status: 200,
        body: {
          ref: `refs/${ref}`,
          node_id: `REF_${sha.slice(0, 12)}`,
          url: `${base}/git/refs/${ref}`,
          object: { type: "commit", sha, url: `${base}/git/commits/${sha}` },
        },
      };
    },

    "checks/get": ({ params }) => {
      const repo = this.#repoFor(params);
      const run = this.checkRuns.find(
        (r) =>
          r.id === Number(params.check_run_id) && r.repository === `${repo.owner}/${repo.name}`,
      );
      if (!run) throw notFound();
      return { status: 200, body: this.#checkRunJson(run) };
    },

    "checks/list-for-ref": ({ params, query, url }) => {
      const repo = this.#repoFor(params);
      const commit = this.#resolveCommit(repo, params.ref ?? "");
      if (!commit) throw unprocessable(`No commit found for SHA: ${params.ref}`);
      const name = query.get("check_name");
      const status = query.get("status");
      const appId = query.get("app_id");
      const onCommit = this.checkRuns.filter(
        (r) => r.repository === `${repo.owner}/${repo.name}` && r.head_sha === commit.sha,
      );
      // `filter=latest` (the default): the most recent run of each name, before the
      // other filters (a superseded run does not come back by asking for its status).
      const latest =
        (query.get("filter") ?? "latest") === "latest"
          ? onCommit.filter((r) => !onCommit.some((o) => o.name === r.name && o.id > r.id))
          : onCommit;
      const runs = latest
        .filter(
          (r) =>
            (name === null || r.name === name) &&
            (status === null || r.status === status) &&
            (appId === null || Number(appId) === this.appId),
        )
        .sort((a, b) => b.id - a.id);
      const { items, headers } = paginate(runs, query, url);
      return {
        status: 200,
        body: { total_count: runs.length, check_runs: items.map((r) => this.#checkRunJson(r)) },
        headers,
      };
    },

    // --- Approvals (issue 5) -------------------------------------------------------------
    "teams/get-membership-for-user-in-org": ({ params }) => {
      const team = `${params.org ?? ""}/${params.team_slug ?? ""}`;
      const user = params.username ?? "";
      if (!this.#teamMembers.get(team.toLowerCase())?.has(user.toLowerCase())) throw notFound();
      return {
        status: 200,
        body: {
          url: `${this.#url}/teams/${team}/memberships/${user}`,
          role: "member",
          state: "active",
        },
      };
    },

    "actions/review-custom-gates-for-run": ({ params, body }) => {
      const repo = this.#repoFor(params);
      const review: FakeDeploymentGateReview = {
        repository: `${repo.owner}/${repo.name}`,
        workflowRunId: Number(params.run_id),
        environment: typeof body.environment_name === "string" ? body.environment_name : "",
      };
      if (body.state === "approved" || body.state === "rejected") review.state = body.state;
      if (typeof body.comment === "string") review.comment = body.comment;
      this.deploymentGateReviews.push(review);
      return { status: 204, body: undefined };
    },
    // --- end of approvals ---------------------------------------------------------------

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

/** `per_page` as GitHub reads it: default 30, at most 100. */
function perPageOf(query: URLSearchParams): number {
  const asked = Number(query.get("per_page") ?? 30);
  return Math.min(100, Math.max(1, Number.isFinite(asked) ? Math.floor(asked) : 30));
}

/**
 * One page of `items` by `page` and `per_page`, with the `Link` header GitHub sends
 * (prev, next, last, first; none when everything fits on one page).
 */
function paginate<T>(
  items: readonly T[],
  query: URLSearchParams,
  url: URL,
): { items: T[]; headers: Record<string, string> } {
  const perPage = perPageOf(query);
  const page = Math.max(1, Math.floor(Number(query.get("page") ?? 1)) || 1);
  const lastPage = Math.max(1, Math.ceil(items.length / perPage));
  const link = (n: number, rel: string) => {
    const target = new URL(url);
    target.searchParams.set("per_page", String(perPage));
    target.searchParams.set("page", String(n));
    return `<${target.href}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(Math.min(page - 1, lastPage), "prev"));
  if (page < lastPage) links.push(link(page + 1, "next"), link(lastPage, "last"));
  if (page > 1) links.push(link(1, "first"));
  return {
    items: items.slice((page - 1) * perPage, page * perPage),
    headers: links.length > 0 ? { link: links.join(", ") } : {},
  };
}

interface FileChange {
  path: string;
  status: "added" | "modified" | "removed";
  /** Blob SHAs before and after. */
  before: string | undefined;
  after: string | undefined;
}

/** The files that differ between two trees (`from` undefined: everything is added), by path. */
function diffFiles(git: GitObjects, from: string | undefined, to: string): FileChange[] {
  const before = from ? git.files(from) : new Map<string, string>();
  const after = git.files(to);
  const paths = [...new Set([...before.keys(), ...after.keys()])].sort();
  return paths.flatMap((path): FileChange[] => {
    const a = before.get(path);
    const b = after.get(path);
    if (a === b) return [];
    const status = a === undefined ? "added" : b === undefined ? "removed" : "modified";
    return [{ path, status, before: a, after: b }];
  });
}

/** The nearest commit reachable from both, or undefined. */
function mergeBase(git: GitObjects, a: string, b: string): string | undefined {
  const ancestors = (start: string) => {
    const seen: string[] = [];
    const queue = [start];
    while (queue.length > 0) {
      const sha = queue.shift()!;
      if (seen.includes(sha)) continue;
      seen.push(sha);
      const commit = git.get(sha);
      if (commit?.type === "commit") queue.push(...commit.parents);
    }
    return seen;
  };
  const ofB = new Set(ancestors(b));
  return ancestors(a).find((sha) => ofB.has(sha));
}

/**
 * Added and deleted lines, counted as a multiset difference of lines: exact for the
 * additions and removals tests make, an approximation of git's diff for moved lines.
 * Binary content (a NUL byte) counts 0, as GitHub reports for binary files.
 */
function lineCounts(
  before: Buffer | undefined,
  after: Buffer | undefined,
): { additions: number; deletions: number } {
  const lines = (content: Buffer | undefined) => {
    if (!content || content.length === 0 || content.includes(0)) return [];
    return content.toString("utf8").replace(/\n$/, "").split("\n");
  };
  const remaining = new Map<string, number>();
  for (const line of lines(before)) remaining.set(line, (remaining.get(line) ?? 0) + 1);
  let additions = 0;
  for (const line of lines(after)) {
    const count = remaining.get(line) ?? 0;
    if (count > 0) remaining.set(line, count - 1);
    else additions++;
  }
  const deletions = [...remaining.values()].reduce((sum, n) => sum + n, 0);
  return { additions, deletions };
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

function json(
  response: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "x-github-media-type": "github.v3; format=json",
    ...headers,
  });
  response.end(text);
}
