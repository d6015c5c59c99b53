/**
 * The run API over HTTP: every operation of `BatonApi`, as JSON routes, in two
 * authentication modes.
 *
 * Local (`baton serve`, `baton run --wait` on the embedded database): served on 127.0.0.1
 * so that other terminals can approve, signal or cancel its runs. The token is a random
 * secret written to the data directory with mode 0600: whoever can read it could open the
 * database anyway, so it proves nothing more and nothing less. The acting person is
 * declared in the `x-baton-actor` header.
 *
 * GitHub users (mounted in the GitHub app by `createApiRoute`): `Authorization: Bearer
 * <GitHub user token>` (or `token <…>`). GitHub says who the token belongs to, and, for
 * each action, what that user may do on the run's repository (see github-user-client.ts).
 * A workflow run may also come with its Actions OIDC token (actions-oidc.ts).
 *
 * Routes (JSON bodies; errors are `{ error: { code, message, details?, permission?,
 * required? } }` with the status of error-status.ts):
 *   POST /api/runs                                     { flowFile, inputs }  local only
 *   POST /api/repos/{owner}/{repo}/flows/{flow}/runs   { inputs }            a live flow
 *   GET  /api/runs?repository=&flow=&status=&limit=
 *   GET  /api/runs/{ref}                    GET /api/runs/{ref}/logs?step=&after=
 *   POST /api/runs/{ref}/steps/{step}/approve|reject   { comment }
 *   POST /api/runs/{ref}/signals/{name}     { payload }
 *   POST /api/runs/{ref}/cancel             { reason }
 *   POST /api/runs/{ref}/retry              { fromStep }
 *   POST /api/flows/{owner}/{repo}/{flow}/webhook-secret   { rotate }   repository admins
 * `{ref}` is a run id, a unique prefix, `flow#n` or `owner/repo/flow#n`, URL-encoded.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { Json, RunStatus } from "../engine/types.js";
import type { GitHubClient } from "../github/github-client.js";
import type { HttpRoute } from "../github/github-app.js";
import { type BatonService, type Logger, silentLogger } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import type { BatonApi } from "./api.js";
import { ApiError } from "./api.js";
import { errorExtra, errorStatus } from "./error-status.js";
import { AuthenticationError } from "./errors.js";
import type { ApproverFactsLookup } from "./github-user-client.js";
import { GitHubUserClient, WorkflowClient } from "./github-user-client.js";
import { ActionsOidc, actionsOidcIssuer, isJwt } from "./actions-oidc.js";
import type { GitHubUsers } from "./github-users.js";
import { ServiceClient } from "./service-client.js";
import { readJsonObject, sendJson } from "./json-io.js";

/** Request bodies larger than this are refused (413): runs are started with a flow file and inputs. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** Local identities are declared, not proven: the header names who acts (see README, "Local mode"). */
export const ACTOR_HEADER = "x-baton-actor";

export interface ApiServerOptions {
  /** Opens a client acting as the given person. */
  clientFor(actor: string): BatonApi;
  token: string;
  defaultActor: string;
  /** Where failures of the server itself (5xx) are told. (Default: silent) */
  log?: Logger;
}

/** Who may call the API, and how they are known. */
export type ApiAuth =
  | {
      /** One shared secret; the caller declares who acts (`x-baton-actor`), as admin. */
      kind: "local";
      token: string;
      defaultActor: string;
    }
  | {
      /** GitHub user tokens; permissions asked of GitHub through the app's installations. */
      kind: "github-users";
      github: GitHubClient;
      /** How long a token's login is remembered. (Default: 60 000 ms) */
      loginCacheMs?: number;
      /** Facts of approval decisions beyond the permission (see GitHubUserClientOptions). */
      approverFacts?: ApproverFactsLookup;
      /**
       * Accept GitHub Actions' OIDC tokens of workflow runs (actions-oidc.ts), with this
       * audience; the issuer follows from the GitHub API's URL. (Default: not accepted)
       */
      actionsOidc?: { audience: string; issuer?: string };
    };

export interface ApiRouteOptions {
  service: BatonService;
  store: Database;
  auth: ApiAuth;
  /** Where failures of the server itself (5xx) are told. (Default: silent) */
  log?: Logger;
}

type Handler = (request: {
  params: string[];
  query: URLSearchParams;
  body: Record<string, unknown>;
  client: BatonApi;
}) => Promise<{ status: number; body: unknown }>;

const ok = (body: unknown = { ok: true }) => ({ status: 200, body });
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);
const badRequest = (message: string) => new ApiError(message, 400, "bad_request");

function inputsOf(body: Record<string, unknown>): Record<string, Json> {
  const inputs = body.inputs ?? {};
  if (inputs === null || typeof inputs !== "object" || Array.isArray(inputs))
    throw badRequest('inputs must be an object of input names to values, e.g. {"version": "1.2"}');
  return inputs as Record<string, Json>;
}

function limitOf(query: URLSearchParams): number | undefined {
  const limit = query.get("limit");
  if (limit === null) return undefined;
  const parsed = Number(limit);
  if (!Number.isInteger(parsed) || parsed < 1 || parsed > 1000)
    throw badRequest("limit must be an integer from 1 to 1000");
  return parsed;
}

/** `owner` and `repo` path segments as one `owner/repo`. */
const repositoryOf = (owner: string | undefined, repo: string | undefined) => `${owner}/${repo}`;

const routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [
  {
    method: "POST",
    pattern: /^\/api\/runs$/,
    handler: async ({ body, client }) => {
      const flowFile = body.flowFile as { path?: unknown; source?: unknown } | undefined;
      if (typeof flowFile?.path !== "string" || typeof flowFile.source !== "string") {
        throw badRequest("flowFile.path and flowFile.source are required");
      }
      const started = await client.startRun({
        flowFile: { path: flowFile.path, source: flowFile.source },
        inputs: inputsOf(body),
      });
      return { status: 201, body: started };
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/repos\/([^/]+)\/([^/]+)\/flows\/([^/]+)\/runs$/,
    handler: async ({ params: [owner, repo, flow = ""], body, client }) => {
      const started = await client.startLiveRun({
        repository: repositoryOf(owner, repo),
        flow,
        inputs: inputsOf(body),
      });
      return { status: 201, body: started };
    },
  },
  {
    method: "GET",
    pattern: /^\/api\/runs$/,
    handler: async ({ query, client }) =>
      ok(
        await client.listRuns({
          repository: query.get("repository") ?? undefined,
          flow: query.get("flow") ?? undefined,
          status: (query.get("status") as RunStatus | null) ?? undefined,
          limit: limitOf(query),
        }),
      ),
  },
  {
    method: "GET",
    pattern: /^\/api\/runs\/([^/]+)$/,
    handler: async ({ params, client }) => ok(await client.getRun(params[0] ?? "")),
  },
  {
    method: "GET",
    pattern: /^\/api\/runs\/([^/]+)\/logs$/,
    handler: async ({ params, query, client }) => {
      const after = query.get("after");
      const afterSeq = after === null ? undefined : Number(after);
      if (afterSeq !== undefined && !Number.isInteger(afterSeq))
        throw badRequest("after must be the integer seq of the last line read");
      return ok(await client.getLogs(params[0] ?? "", query.get("step") ?? undefined, afterSeq));
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/steps\/([^/]+)\/(approve|reject)$/,
    handler: async ({ params, body, client }) => {
      const [run = "", step = "", decision] = params;
      const verdict = await client.decide(
        run,
        step,
        decision === "approve" ? "approve" : "reject",
        str(body.comment),
      );
      return ok(verdict);
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/signals\/([^/]+)$/,
    handler: async ({ params, body, client }) => {
      await client.signal(params[0] ?? "", params[1] ?? "", (body.payload ?? null) as Json);
      return ok();
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/cancel$/,
    handler: async ({ params, body, client }) => {
      await client.cancel(params[0] ?? "", str(body.reason));
      return ok();
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/retry$/,
    handler: async ({ params, body, client }) => {
      await client.retry(params[0] ?? "", str(body.fromStep));
      return ok();
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/flows\/([^/]+)\/([^/]+)\/([^/]+)\/webhook-secret$/,
    handler: async ({ params: [owner, repo, flow = ""], body, client }) =>
      ok(
        await client.webhookSecret(repositoryOf(owner, repo), flow, {
          rotate: body.rotate === true,
        }),
      ),
  },
];

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readJsonObject(request, MAX_BODY_BYTES);
  if (body.ok) return body.value;
  if (body.problem === "too-large")
    throw new ApiError(`request body over ${MAX_BODY_BYTES} bytes`, 413, "too_large");
  throw badRequest("the request body must be a JSON object");
}

function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw badRequest(`malformed URL encoding in '${segment}'`);
  }
}

/** Who the request acts for: a client of the API, or an AuthenticationError. */
type Authenticate = (request: IncomingMessage) => Promise<BatonApi>;

/**
 * The API's routes as one `HttpRoute`: a request to a route of the API is answered
 * (authenticated first); anything else is passed (false), so the route can be mounted
 * beside others (the GitHub app's webhook inbox and webhook triggers share `/api/`).
 */
function apiRoute(
  authenticate: Authenticate,
  log: Logger,
  /** Whether a 500 tells its error's message (locally) or only that it is logged (to the world). */
  exposeInternalErrors: boolean,
): HttpRoute {
  return async (request, response, url) => {
    const route = routes.find((r) => r.method === request.method && r.pattern.test(url.pathname));
    if (!route) return false;
    try {
      const client = await authenticate(request);
      const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(decodePathSegment);
      const body = request.method === "POST" ? await readBody(request) : {};
      const result = await route.handler({ params, query: url.searchParams, body, client });
      sendJson(response, result.status, result.body);
    } catch (error: unknown) {
      const { status, code } = errorStatus(error);
      let message = error instanceof Error ? error.message : String(error);
      if (status >= 500)
        log.error("API request failed", { method: request.method, path: url.pathname, error });
      if (code === "internal" && !exposeInternalErrors)
        message = "Baton failed to answer (an internal error); the app's log has the details.";
      sendJson(response, status, { error: { code, message, ...errorExtra(error) } });
    }
    return true;
  };
}

/**
 * The token of an `Authorization: Bearer <token>` or `Authorization: token <token>`
 * header, as GitHub's own API accepts both.
 */
export function tokenOf(request: IncomingMessage): string | undefined {
  const match = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "");
  return match?.[1];
}

function declaredActor(request: IncomingMessage, defaultActor: string): string {
  const header = request.headers[ACTOR_HEADER];
  return typeof header === "string" && header !== "" ? header : defaultActor;
}

function localAuthenticate(
  token: string,
  defaultActor: string,
  clientFor: (actor: string) => BatonApi,
): Authenticate {
  return (request) => {
    if (!tokenMatches(tokenOf(request), token))
      return Promise.reject(new ApiError("missing or wrong token", 401, "unauthorized"));
    return Promise.resolve(clientFor(declaredActor(request, defaultActor)));
  };
}

/**
 * The API as a route of a larger server (the GitHub app mounts it next to its webhook
 * inbox): answers the API's routes, passes anything else.
 */
export function createApiRoute(options: ApiRouteOptions): HttpRoute {
  const { service, store, auth } = options;
  const log = options.log ?? silentLogger;
  if (auth.kind === "local") {
    return apiRoute(
      localAuthenticate(auth.token, auth.defaultActor, (actor) => {
        return new ServiceClient({
          store,
          service,
          actor,
          approverFacts: { permission: "admin", teams: [], codeowner: false },
        });
      }),
      log,
      true,
    );
  }
  // Loaded on first use: it brings Octokit, which the local CLI never needs.
  let users: Promise<GitHubUsers> | undefined;
  const github = auth.github;
  const cacheMs = auth.loginCacheMs;
  const oidc = auth.actionsOidc
    ? new ActionsOidc({
        issuer: auth.actionsOidc.issuer ?? actionsOidcIssuer(github.baseUrl),
        audience: auth.actionsOidc.audience,
      })
    : undefined;
  return apiRoute(
    async (request) => {
      const token = tokenOf(request);
      if (token === undefined)
        throw new AuthenticationError(
          "Authenticate with a GitHub token: `Authorization: Bearer <token>` " +
            "(the CLI takes BATON_TOKEN, GITHUB_TOKEN or `gh auth token`).",
        );
      if (oidc && isJwt(token))
        return new WorkflowClient({ store, service, identity: await oidc.verify(token) });
      users ??= import("./github-users.js").then(
        ({ GitHubUsers }) =>
          new GitHubUsers({ github, ...(cacheMs !== undefined ? { cacheMs } : {}) }),
      );
      const known = await users;
      const login = await known.login(token);
      return new GitHubUserClient({
        store,
        service,
        users: known,
        login,
        ...(auth.approverFacts ? { approverFacts: auth.approverFacts } : {}),
      });
    },
    log,
    false,
  );
}

/** A server of its own for an API route; anything the route passes is 404. */
export function serveApiRoute(route: HttpRoute, log: Logger = silentLogger): Server {
  return createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://localhost");
    route(request, response, url)
      .then((answered) => {
        if (!answered)
          sendJson(response, 404, {
            error: { code: "not_found", message: `no route ${request.method} ${url.pathname}` },
          });
      })
      .catch((error: unknown) => {
        log.error("API request failed", { method: request.method, path: url.pathname, error });
        if (!response.headersSent)
          sendJson(response, 500, { error: { code: "internal", message: "internal error" } });
      });
  });
}

/** The local API server (`baton serve`): a shared token, the declared actor. */
export function createApiServer(options: ApiServerOptions): Server {
  const log = options.log ?? silentLogger;
  return serveApiRoute(
    apiRoute(
      localAuthenticate(options.token, options.defaultActor, (actor) => options.clientFor(actor)),
      log,
      true,
    ),
    log,
  );
}
