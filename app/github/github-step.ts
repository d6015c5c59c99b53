/**
 * `github` steps (and compensations): one REST call with the run's installation token,
 * restricted to the run's repository. `{owner}` and `{repo}` are always the run's — a
 * `with` value cannot change them — and the path must start with /repos/{owner}/{repo}
 * (the validator says so too; checked again here, after expressions were expanded).
 * Other path parameters are URL-encoded by Octokit, so a value cannot escape its segment.
 *
 * Outputs: `status` (the HTTP status) and `data` (the response body as JSON, at most
 * 64 KiB). A 4xx answer fails the step for good (retrying the same call cannot help),
 * except rate limits; 5xx and network errors fail it retryably.
 */
import type { Executor, StepOutcome } from "../runner/executor.js";
import { getRunById } from "../store/runs.js";
import type { GitHubApp } from "./github-app.js";
import { isFinalRefusal } from "./outbox.js";

const ROUTE = /^(GET|POST|PUT|PATCH|DELETE) (\/repos\/\{owner\}\/\{repo\}(?:\/\S*)?)$/;
const MAX_DATA_CHARS = 64 * 1024;

export function githubStepExecutor(app: GitHubApp): Executor {
  return async (execution): Promise<StepOutcome> => {
    const spec = (execution.spec as { github?: { request?: unknown; with?: unknown } }).github;
    const request = typeof spec?.request === "string" ? spec.request : "";
    const match = ROUTE.exec(request);
    if (!match) {
      return refuse(
        `\`github.request\` must be "METHOD /repos/{owner}/{repo}/…", got "${request}"`,
      );
    }
    const run = await getRunById(app.store, execution.runId);
    if (!run?.github) {
      return refuse(
        "`github` steps run only for flows of a repository where the Baton app is installed",
      );
    }
    const [owner = "", repo = ""] = run.repository.split("/");
    const params = {
      ...((spec?.with ?? {}) as Record<string, unknown>),
      owner,
      repo,
    };
    execution.log("system", `${request} (${run.repository})\n`);
    try {
      const response = await app.github
        .installation(run.github.installationId)
        .request(`${match[1]} ${match[2]}`, { ...params, request: { signal: execution.signal } });
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
      return {
        outcome: "failure",
        outputs: typeof status === "number" ? { status: String(status), data: "null" } : {},
        error: `GitHub answered ${typeof status === "number" ? status : "nothing"}: ${message}`,
        retryable: !isFinalRefusal(error),
      };
    }
  };
}

function refuse(error: string): StepOutcome {
  return { outcome: "failure", outputs: {}, error, retryable: false };
}
