/**
 * The `flows-check-run` task: show a rendered `baton / flows` check (render-flows-check.ts)
 * on its commit. Enqueued in the delivery's transaction, so it happens once the load
 * commits, and retried by the runtime when GitHub fails.
 *
 * Idempotent: it looks for the check run of that name on the commit first. GitHub appends
 * annotations on every update, so an existing check run is updated only while it has
 * none; one that already shows exactly this output is left alone; otherwise a new check
 * run is created, which GitHub shows in place of the older one of the same name.
 * Annotations go 50 per request: the first batch with the create (or update), then one
 * PATCH per further batch.
 */
import type { Json } from "../../engine/types.js";
import { finishTask, type TaskHandler } from "../../runtime/index.js";
import type { NewTask } from "../../store/model.js";
import type { GitHubApp } from "../github-app.js";
import { isFinalRefusal } from "../outbox.js";
import type { FlowsCheck } from "./render-flows-check.js";
import { FLOWS_CHECK_NAME, FLOWS_EXTERNAL_ID } from "./render-flows-check.js";

export const FLOWS_CHECK_RUN = "flows-check-run";
export const ANNOTATIONS_PER_REQUEST = 50;

export interface FlowsCheckRunPayload {
  installationId: number;
  repository: string;
  check: FlowsCheck;
}

/** The task for one commit's check (one pending per repository and commit). */
export function flowsCheckRunTask(payload: FlowsCheckRunPayload): NewTask {
  return {
    kind: FLOWS_CHECK_RUN,
    key: `${FLOWS_CHECK_RUN}/${payload.repository}@${payload.check.headSha}`,
    payload: payload as unknown as Json,
  };
}

export function flowsCheckRunHandler(app: GitHubApp): TaskHandler {
  return async (ctx, task) => {
    const payload = task.payload as unknown as FlowsCheckRunPayload;
    try {
      await sendFlowsCheck(app, payload);
    } catch (error: unknown) {
      if (!isFinalRefusal(error)) throw error;
      app.log.warn("GitHub refused the flows check run; not retrying it", {
        repository: payload.repository,
        sha: payload.check.headSha,
        status: (error as { status: number }).status,
        error,
      });
    }
    await finishTask(ctx, task, async () => {});
  };
}

export async function sendFlowsCheck(app: GitHubApp, payload: FlowsCheckRunPayload): Promise<void> {
  const { check } = payload;
  const [owner = "", repo = ""] = payload.repository.split("/");
  const octokit = app.github.installation(payload.installationId);
  const { data } = await octokit.rest.checks.listForRef({
    owner,
    repo,
    ref: check.headSha,
    check_name: FLOWS_CHECK_NAME,
    filter: "all",
    per_page: 100,
  });
  // Ours only: a run of a flow named `flows` has a check run of the same name.
  const existing = [...data.check_runs]
    .filter(
      (run) =>
        run.head_sha === check.headSha && run.external_id?.startsWith(FLOWS_EXTERNAL_ID) === true,
    )
    .sort((a, b) => b.id - a.id)[0];
  if (
    existing &&
    existing.status === "completed" &&
    existing.conclusion === check.conclusion &&
    existing.output.summary === check.summary &&
    existing.output.annotations_count === check.annotations.length
  )
    return; // already shown (a retry after the last request succeeded)

  const batches: (typeof check.annotations)[] = [];
  for (let at = 0; at < check.annotations.length; at += ANNOTATIONS_PER_REQUEST)
    batches.push(check.annotations.slice(at, at + ANNOTATIONS_PER_REQUEST));
  const output = (annotations: typeof check.annotations) => ({
    title: check.title,
    summary: check.summary,
    ...(annotations.length > 0 ? { annotations } : {}),
  });
  const body = {
    status: "completed" as const,
    conclusion: check.conclusion,
    completed_at: new Date(app.now()).toISOString(),
    external_id: check.externalId,
    ...(app.publicUrl ? { details_url: app.publicUrl } : {}),
    actions: check.actions,
    output: output(batches[0] ?? []),
  };
  let checkRunId: number;
  if (existing && existing.output.annotations_count === 0) {
    await octokit.rest.checks.update({ owner, repo, check_run_id: existing.id, ...body });
    checkRunId = existing.id;
  } else {
    const created = await octokit.rest.checks.create({
      owner,
      repo,
      name: FLOWS_CHECK_NAME,
      head_sha: check.headSha,
      ...body,
    });
    checkRunId = created.data.id;
  }
  for (const batch of batches.slice(1))
    await octokit.rest.checks.update({
      owner,
      repo,
      check_run_id: checkRunId,
      output: output(batch),
    });
}
