/**
 * `workflow_run` and `workflow_job` events move a `workflow` step: they tie a run to its
 * dispatch (by id, or by the step token in its title when GitHub gave no run details),
 * show where it is (queued, running, waiting for an environment's approval) as the
 * attempt's progress, and finish the attempt with the run's conclusion and the outputs
 * the Baton action reported; a compensating workflow's run ends its compensation.
 *
 * Every workflow run of every installed repository sends these events; most are not
 * Baton's. A run not dispatched (`event` other than workflow_dispatch) costs nothing, a
 * dispatched one a lookup by its id.
 */
import { scheduleTasks } from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import type { EventHandler, GitHubApp } from "../github-app.js";
import { attemptKeyOf, findStepTokens, stepTokenKey, verifyStepToken } from "./step-token.js";
import { cancelWorkflowRunTask } from "./cancel-workflow.js";
import type { DispatchStatus, WorkflowDispatch } from "../../store/workflow-dispatches.js";
import {
  correlateDispatch,
  getDispatch,
  getDispatchOfWorkflowRun,
  updateDispatchStatus,
} from "../../store/workflow-dispatches.js";

/** Conclusions that count as the step's success; any other fails the attempt (retryable). */
const SUCCEEDED = new Set(["success", "neutral", "skipped"]);

interface WorkflowRunPayload {
  id: number;
  event?: string;
  display_title?: string;
  status?: string;
  conclusion?: string | null;
  html_url?: string;
}

export function workflowRunHandler(options: { secretKey?: string } = {}): EventHandler {
  return async (event, app) => {
    const run = event.payload.workflow_run as WorkflowRunPayload | undefined;
    if (!run || run.event !== "workflow_dispatch") return undefined;
    const found = await findDispatch(app, run, options.secretKey);
    if (!found) return undefined;
    const htmlUrl = run.html_url ?? "";
    const status: DispatchStatus =
      event.action === "completed"
        ? "completed"
        : run.status === "in_progress"
          ? "in_progress"
          : "queued";
    return async (tx) => {
      let dispatch = found.dispatch;
      if (found.correlate) {
        const tied = await correlateDispatch(tx, dispatch.key, {
          workflowRunId: run.id,
          htmlUrl,
        });
        // Another run of the same attempt was tied first (a repeated dispatch): not ours.
        if (!tied) return;
        dispatch = tied;
        if (tied.cancelRequestedAt)
          await scheduleTasks(tx, [cancelWorkflowRunTask(tied.key, "cancel", new Date(app.now()))]);
      }
      const conclusion = run.conclusion ?? undefined;
      await moveStep(tx, app, dispatch, {
        status,
        detail:
          status === "completed"
            ? `the workflow run ${conclusion ?? "completed"}`
            : status === "in_progress"
              ? "running in GitHub Actions"
              : "queued in GitHub Actions",
        ...(conclusion !== undefined ? { conclusion } : {}),
        htmlUrl,
      });
    };
  };
}

interface WorkflowJobPayload {
  run_id: number;
  name?: string;
  status?: string;
  html_url?: string;
}

/** Jobs say more than runs: which job runs, and which waits for an environment's reviewers. */
export function workflowJobHandler(): EventHandler {
  return async (event, app) => {
    const job = event.payload.workflow_job as WorkflowJobPayload | undefined;
    if (!job || event.action === "completed") return undefined; // the run's completion decides
    const dispatch = await getDispatchOfWorkflowRun(app.store, job.run_id);
    if (!dispatch || dispatch.status === "completed") return undefined;
    const name = job.name ?? "a job";
    const deployment = event.payload.deployment as { environment?: string } | undefined;
    const change: { status: DispatchStatus; detail: string } =
      event.action === "waiting"
        ? {
            status: "waiting",
            detail: `job ${name} waits for approval of environment ${deployment?.environment ?? "(unnamed)"} in GitHub Actions`,
          }
        : event.action === "in_progress"
          ? { status: "in_progress", detail: `job ${name} running in GitHub Actions` }
          : { status: "queued", detail: `job ${name} queued in GitHub Actions` };
    return (tx) => moveStep(tx, app, dispatch, change);
  };
}

/** The dispatch of this workflow run, and whether the run must be tied to it first. */
async function findDispatch(
  app: GitHubApp,
  run: WorkflowRunPayload,
  secretKey: string | undefined,
): Promise<{ dispatch: WorkflowDispatch; correlate: boolean } | undefined> {
  const known = await getDispatchOfWorkflowRun(app.store, run.id);
  if (known) return { dispatch: known, correlate: false };
  const tokens = findStepTokens(run.display_title ?? "");
  if (tokens.length === 0) return undefined;
  const key = await stepTokenKey(app.store, secretKey);
  for (const token of tokens) {
    // Expired tokens still identify their attempt: a run may start late and must be found
    // (to be cancelled, or to end an attempt that waits). Forged ones never do.
    const check = verifyStepToken(key, token, 0);
    if (!check.ok) continue;
    const dispatch = await getDispatch(app.store, attemptKeyOf(check.claims));
    if (dispatch)
      return dispatch.workflowRunId === undefined ? { dispatch, correlate: true } : undefined;
    // The token is good but its dispatch is not committed yet (the event beat it): have
    // the delivery retried.
    throw new Error(
      `workflow run ${run.id} belongs to attempt ${attemptKeyOf(check.claims)}, whose dispatch is not recorded yet`,
    );
  }
  return undefined;
}

/** Record where the workflow run is, and tell the run: progress, or the attempt's end. */
async function moveStep(
  tx: Transaction,
  app: GitHubApp,
  dispatch: WorkflowDispatch,
  change: { status: DispatchStatus; detail: string; conclusion?: string; htmlUrl?: string },
): Promise<void> {
  const moved = await updateDispatchStatus(tx, dispatch.key, change);
  if (!moved) return; // completed already: a late event
  const door = app.service.door;
  const call = { now: app.now() };
  const url = moved.htmlUrl;
  // The dispatch's key is its attempt's (or compensation's) idempotency key: the door
  // ignores the report when that attempt is no longer current.
  if (change.status !== "completed") {
    // Only the end of a compensating run matters to the run (it has no progress to show).
    if (moved.purpose === "compensation") return;
    await door.reportProgress(
      tx,
      dispatch.key,
      { detail: change.detail, ...(url !== undefined ? { url } : {}) },
      call,
    );
    return;
  }
  const succeeded = SUCCEEDED.has(change.conclusion ?? "");
  const ended = `ended with conclusion ${change.conclusion ?? "unknown"}${url ? `: ${url}` : ""}`;
  await door.reportOutcome(
    tx,
    dispatch.key,
    {
      outcome: succeeded ? "success" : "failure",
      outputs: moved.outputs ?? {},
      ...(succeeded
        ? {}
        : {
            error:
              moved.purpose === "compensation"
                ? `the compensating workflow run ${ended}`
                : `the workflow run ${ended}`,
            retryable: true,
          }),
    },
    call,
  );
}
