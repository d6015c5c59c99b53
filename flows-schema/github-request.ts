/**
 * A `github` step's request: which routes it may name (GitHub's published routes under
 * /repos/{owner}/{repo}, flows-schema/github-routes.ts), and how its `with` becomes a
 * request (DESIGN.md rule 11: a value never becomes syntax). Pure; the validator and the
 * app's executor share it, so a route refused at validation is refused at execution too.
 *
 * Building a request: every `{param}` of the template is replaced by the
 * encodeURIComponent of its value, so a value stays inside its one segment (`a/b` is
 * `a%2Fb`, which GitHub reads as one value, as it does from Octokit). `.` and `..` are
 * refused, not encoded: URL parsers treat `%2E%2E` as `..` too. An empty value is refused
 * (it would remove a segment). `{owner}` and `{repo}` are always the run's repository. The
 * other `with` entries are data: the query string of a GET, the JSON body otherwise (as
 * Octokit does). Nothing in `with` can set the URL's host, a header, the method or any other
 * option of the HTTP client.
 */
import { REPOSITORY_ROUTES, REPOSITORY_ROUTES_NOT_FOR_APPS } from "./github-routes.js";
import { didYouMean } from "./suggest.js";

export const GITHUB_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;
export type GithubMethod = (typeof GITHUB_METHODS)[number];

const ROUTES = new Set(REPOSITORY_ROUTES);
const NOT_FOR_APPS = new Set(REPOSITORY_ROUTES_NOT_FOR_APPS);
const REQUEST_PATTERN = /^(GET|POST|PUT|PATCH|DELETE) (\/\S*)$/;
const REPOSITORY_PREFIX = "/repos/{owner}/{repo}";

export interface GithubRoute {
  method: GithubMethod;
  /** The template as GitHub publishes it, e.g. `/repos/{owner}/{repo}/issues/{issue_number}`. */
  template: string;
  /** Its parameters other than `owner` and `repo`, in order. */
  params: string[];
}

/** The route of a `request:`, or why it is not one a `github` step may call. */
export function parseGithubRoute(
  request: string,
): { route: GithubRoute } | { error: string; offset?: number; length?: number } {
  if (request.includes("${{"))
    return {
      error:
        "`request` cannot contain expressions: it is a route of GitHub's REST API, checked when the flow is validated; pass values through `with` (e.g. `issue_number: ${{ inputs.issue }}`)",
    };
  const match = REQUEST_PATTERN.exec(request);
  if (!match)
    return {
      error:
        '`request` must be "METHOD /path" with METHOD one of GET, POST, PUT, PATCH, DELETE, e.g. "POST /repos/{owner}/{repo}/issues/{issue_number}/comments"',
    };
  const method = match[1] as GithubMethod;
  const template = match[2] ?? "";
  if (template !== REPOSITORY_PREFIX && !template.startsWith(`${REPOSITORY_PREFIX}/`))
    return {
      error:
        "a github step may only call this repository's endpoints: the path must start with /repos/{owner}/{repo}",
    };
  if (template.split("/").some((segment) => segment === "." || segment === ".."))
    return {
      error: `a route has no \`.\` or \`..\` segments: \`${template}\` would leave the path GitHub publishes; name the route itself, e.g. "GET /repos/{owner}/{repo}/contents/{path}"`,
    };
  const route = `${method} ${template}`;
  if (NOT_FOR_APPS.has(route))
    return {
      error: `GitHub serves \`${route}\` to users only, never to an app's token, so a github step cannot call it`,
    };
  if (!ROUTES.has(route)) return { error: unknownRoute(method, template) };
  const params = [...template.matchAll(/\{([^}]+)\}/g)]
    .map((parameter) => parameter[1] ?? "")
    .filter((name) => name !== "owner" && name !== "repo");
  return { route: { method, template, params } };
}

/** Why a route is unknown, with the nearest published one. */
function unknownRoute(method: GithubMethod, template: string): string {
  const base = `\`${method} ${template}\` is not a route of GitHub's REST API (as published in @octokit/openapi)`;
  const shape = (path: string) => path.replace(/\{[^}]+\}/g, "{}");
  const sameShape = REPOSITORY_ROUTES.filter(
    (route) => shape(route.slice(route.indexOf(" ") + 1)) === shape(template),
  );
  const sameMethod = sameShape.find((route) => route.startsWith(`${method} `));
  if (sameMethod) return `${base}; GitHub names its parameters \`${sameMethod}\``;
  if (sameShape.length > 0)
    return `${base}; that path takes ${sameShape.map((route) => route.split(" ")[0]).join(", ")}`;
  return (
    base +
    (didYouMean(
      `${method} ${template}`,
      REPOSITORY_ROUTES.filter((route) => route.startsWith(`${method} `)),
    ) || "; see https://docs.github.com/rest for the routes")
  );
}

export interface BuiltGithubRequest {
  method: GithubMethod;
  /** The path and query, relative to the API's base URL: always under /repos/{owner}/{repo}. */
  path: string;
  /** The JSON body (not for GET), when `with` has entries besides the path parameters. */
  body?: Record<string, unknown>;
}

/** A request for `repository` ("owner/repo"), or why `with` cannot fill the route. */
export function buildGithubRequest(
  route: GithubRoute,
  values: Readonly<Record<string, unknown>>,
  repository: string,
): { request: BuiltGithubRequest } | { error: string } {
  const [owner = "", repo = ""] = repository.split("/");
  const fixed: Record<string, string> = { owner, repo };
  for (const name of ["owner", "repo"])
    if (values[name] !== undefined)
      return {
        error: `\`${name}\` cannot be given in \`with\`: a github step calls its run's repository (${repository}) only`,
      };
  let failure: string | undefined;
  const path = route.template.replace(/\{([^}]+)\}/g, (_whole, name: string) => {
    const value = fixed[name] ?? segmentValue(values[name]);
    if (value === undefined) {
      failure ??= `the path parameter \`{${name}}\` has no value: give \`${name}\` in \`with\` (a string or a number)`;
      return "";
    }
    if (value === "" || value === "." || value === "..") {
      failure ??= `the path parameter \`{${name}}\` is ${JSON.stringify(value)}, which is not a value of one path segment`;
      return "";
    }
    try {
      return encodeURIComponent(value);
    } catch {
      // A lone surrogate: no URL can carry it.
      failure ??= `the path parameter \`{${name}}\` is not valid Unicode text`;
      return "";
    }
  });
  if (failure !== undefined) return { error: failure };
  const rest = Object.entries(values).filter(([name]) => !route.params.includes(name));
  if (route.method === "GET") {
    const query = new URLSearchParams();
    for (const [name, value] of rest) {
      if (value === undefined) continue;
      query.append(name, queryValue(value));
    }
    const search = query.toString();
    return { request: { method: route.method, path: search ? `${path}?${search}` : path } };
  }
  const body = Object.fromEntries(rest.filter(([, value]) => value !== undefined));
  return {
    request: {
      method: route.method,
      path,
      ...(Object.keys(body).length > 0 ? { body } : {}),
    },
  };
}

function segmentValue(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value === "number" || typeof value === "boolean") return String(value);
  return undefined;
}

/** Query values as Octokit sends them: lists comma-separated, other structures as JSON. */
function queryValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value)) return value.map((item) => queryValue(item)).join(",");
  if (value !== null && typeof value === "object") return JSON.stringify(value);
  return String(value);
}
