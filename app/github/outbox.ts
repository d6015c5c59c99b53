/**
 * GitHub writes that must follow a database change, and happen once it commits: a reply
 * to the comment that asked for a run, a check run saying a flow is broken. They are
 * tasks (the transactional outbox, DESIGN.md rule 2), enqueued in the change's
 * transaction and performed by the runtime's workers (`github-request`), retried with
 * backoff when GitHub fails. They run in the runtime's `github` lane (GITHUB_WRITE_KINDS),
 * beside check-run syncs, so that they never wait behind steps nor hold a step's slot. A 4xx answer other than a rate limit is final: retrying
 * the same request cannot succeed, so it is logged and dropped.
 */
import type { Json } from "../engine/types.js";
import { finishTask, SYNC_CHECK_RUN, type TaskHandler } from "../runtime/index.js";
import type { Transaction } from "../store/database.js";
import { enqueueTasks } from "../store/tasks.js";
import type { GitHubApp } from "./github-app.js";

export const GITHUB_REQUEST = "github-request";

/**
 * The task kinds that write to GitHub, for the runtime's `github` lane: the outbox's
 * requests, check-run syncs, the flows check run, workflow-run cancels. Named here by
 * value, not imported from their parts (which import this module).
 */
export const GITHUB_WRITE_KINDS: readonly string[] = [
  GITHUB_REQUEST,
  SYNC_CHECK_RUN,
  "flows-check-run",
  "cancel-workflow-run",
];

export interface GitHubRequest {
  installationId: number;
  /** An Octokit route, e.g. `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`. */
  route: string;
  params: Record<string, Json>;
  /** Idempotency key: one request per key while it is pending (e.g. the delivery id). */
  key: string;
}

export async function enqueueGitHubRequest(tx: Transaction, request: GitHubRequest): Promise<void> {
  await enqueueTasks(tx, [
    {
      kind: GITHUB_REQUEST,
      key: `${GITHUB_REQUEST}/${request.key}`,
      payload: request as unknown as Json,
    },
  ]);
}

export function githubRequestTask(app: GitHubApp): TaskHandler {
  return async (ctx, task) => {
    const request = task.payload as unknown as GitHubRequest;
    try {
      await app.github.installation(request.installationId).request(request.route, request.params);
    } catch (error: unknown) {
      if (!isFinalRefusal(error)) throw error;
      app.log.warn("GitHub refused a request; not retrying it", {
        route: request.route,
        status: (error as { status: number }).status,
        error,
      });
    }
    await finishTask(ctx, task, async () => {});
  };
}

/** A 4xx that is not a rate limit: the same request would be refused again. */
export function isFinalRefusal(error: unknown): boolean {
  const status = (error as { status?: unknown }).status;
  if (typeof status !== "number" || status < 400 || status >= 500) return false;
  if (status === 429) return false;
  const headers = (error as { response?: { headers?: Record<string, string> } }).response?.headers;
  if (status === 403 && (headers?.["retry-after"] || headers?.["x-ratelimit-remaining"] === "0"))
    return false;
  return true;
}
