/**
 * `github` steps (and compensations): one REST call to the run's repository, with a token
 * minted for that repository and the flow's `permissions:` only (docs/architecture.md rules 11, 12).
 *
 * The request is a route GitHub publishes under /repos/{owner}/{repo} (checked at
 * validation and again here, after expressions were expanded: a version stored before the
 * check existed gets the same answer). The URL is built here, never by Octokit from `with`:
 * `{owner}` and `{repo}` are the run's, every other `{param}` is its value URL-encoded into
 * its one segment (`.`, `..` and "" refused), and the rest of `with` is the query (GET) or
 * the JSON body, as data. No `with` entry reaches an HTTP client option (url, baseUrl,
 * headers, method, request): the only options passed are the method, the path built here,
 * the body and the abort signal.
 *
 * Outputs: `status` (the HTTP status) and `data` (the response body as JSON, at most
 * 64 KiB). A 4xx answer fails the step for good (retrying the same call cannot help),
 * except rate limits; 5xx and network errors fail it retryably. A token GitHub will not
 * mint (the installation lacks a permission the flow declares) fails it for good, saying so.
 */
import { buildGithubRequest, parseGithubRoute } from "../../flows-schema/github-request.js";
import type { Executor, StepOutcome } from "../runner/executor.js";
import { getFlowVersion } from "../store/flow-versions.js";
import { getRunById } from "../store/runs.js";
import type { GitHubApp } from "./github-app.js";
import { isFinalRefusal } from "./outbox.js";
import { describeTokenPermissions, stepTokenPermissions } from "./permissions.js";
import type { StepTokenPermissions } from "./permissions.js";

const MAX_DATA_CHARS = 64 * 1024;

export function githubStepExecutor(app: GitHubApp): Executor {
  return async (execution): Promise<StepOutcome> => {
    const spec = (execution.spec as { github?: { request?: unknown; with?: unknown } }).github;
    const request = typeof spec?.request === "string" ? spec.request : "";
    const parsed = parseGithubRoute(request);
    if ("error" in parsed) return refuse(`\`github.request\`: ${parsed.error}`);
    const run = await getRunById(app.store, execution.runId);
    if (!run?.github) {
      return refuse(
        "`github` steps run only for flows of a repository where the Baton app is installed",
      );
    }
    const values = spec?.with;
    const built = buildGithubRequest(
      parsed.route,
      values !== null && typeof values === "object" && !Array.isArray(values)
        ? (values as Record<string, unknown>)
        : {},
      run.repository,
    );
    if ("error" in built) return refuse(built.error);
    const version = await getFlowVersion(app.store, run.flowVersionId);
    let permissions: StepTokenPermissions;
    try {
      permissions = stepTokenPermissions(version?.definition.permissions);
    } catch (error: unknown) {
      return refuse(error instanceof Error ? error.message : String(error));
    }
    const { method, path, body } = built.request;
    execution.log(
      "system",
      `${method} ${path} (${run.repository}; token: ${describeTokenPermissions(permissions)})\n`,
    );
    let octokit;
    try {
      octokit = await app.github.forRepository(
        run.github.installationId,
        run.repository,
        permissions,
      );
    } catch (error: unknown) {
      return tokenRefused(error, run.repository, permissions);
    }
    try {
      const response = await octokit.request({
        method,
        url: path,
        ...(body !== undefined ? { data: body } : {}),
        request: { signal: execution.signal },
      });
      const data = JSON.stringify(response.data ?? null);
      return {
        outcome: "success",
        outputs: {
          status: String(response.status),
          data: data.length > MAX_DATA_CHARS ? data.slice(0, MAX_DATA_CHARS) : data,
        },
      };
    } catch (error: unknown) {
      const status = (error as { status?: unknown }).status;
      const message = error instanceof Error ? error.message : String(error);
      const hint =
        status === 403 && /not accessible by integration/i.test(message)
          ? ` (the step's token has ${describeTokenPermissions(permissions)}; declare what this route needs in the flow's \`permissions\`)`
          : "";
      return {
        outcome: "failure",
        outputs: typeof status === "number" ? { status: String(status), data: "null" } : {},
        error: `GitHub answered ${typeof status === "number" ? status : "nothing"}: ${message}${hint}`,
        retryable: !isFinalRefusal(error),
      };
    }
  };
}

/** GitHub would not mint the step's token: for good when it said why (4xx), else retry. */
function tokenRefused(
  error: unknown,
  repository: string,
  permissions: StepTokenPermissions,
): StepOutcome {
  const status = (error as { status?: unknown }).status;
  const message = error instanceof Error ? error.message : String(error);
  if (status === 422 || status === 404 || status === 403)
    return refuse(
      `GitHub would not mint a token for ${repository} with ${describeTokenPermissions(permissions)} ` +
        `(${String(status)}: ${message}): the Baton app's installation must have every permission the ` +
        "flow's `permissions` declares (an owner accepts new permissions in the installation's " +
        "settings), or lower `permissions`",
    );
  return {
    outcome: "failure",
    outputs: {},
    error: `could not mint the step's token for ${repository}: ${message}`,
    retryable: true,
  };
}

function refuse(error: string): StepOutcome {
  return { outcome: "failure", outputs: {}, error, retryable: false };
}
