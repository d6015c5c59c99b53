/**
 * Stopping a `workflow` step's Actions run: when its attempt is cancelled (the Baton run is
 * cancelled) or times out, the engine's `cancel` task comes here first. The workflow run
 * is asked to cancel; if it has not completed after a grace period (a job that ignores
 * cancellation, a runner that is gone), it is force-cancelled. A run not yet found (the
 * 204 fallback) is cancelled when its first event ties it to the dispatch.
 */
import type { CancelStep } from "../../engine/types.js";
import { finishTask, scheduleTasks, type TaskHandler } from "../../runtime/index.js";
import type { NewTask } from "../../store/model.js";
import type { GitHubApp } from "../github-app.js";
import { WORKFLOW_TOKEN_PERMISSIONS } from "../permissions.js";
import { getDispatch, markCancelRequested } from "../../store/workflow-dispatches.js";

export const CANCEL_WORKFLOW_RUN = "cancel-workflow-run";

type Stage = "cancel" | "force-cancel";

export function cancelWorkflowRunTask(key: string, stage: Stage, runAt: Date): NewTask {
  return {
    kind: CANCEL_WORKFLOW_RUN,
    runId: key.split("/")[0] ?? "",
    key: `${key}/${stage}-workflow-run`,
    runAt,
    payload: { key, stage },
  };
}

/** In front of the runtime's `cancel`: a dispatched attempt's workflow run is cancelled too. */
export function cancelStepHandler(app: GitHubApp): TaskHandler {
  return async (ctx, task, next) => {
    const effect = task.payload as unknown as CancelStep;
    const dispatch = await getDispatch(ctx.db, effect.key);
    if (dispatch && dispatch.status !== "completed") {
      await ctx.db.transaction(async (tx) => {
        const marked = await markCancelRequested(tx, effect.key);
        if (marked?.workflowRunId !== undefined)
          await scheduleTasks(tx, [
            cancelWorkflowRunTask(effect.key, "cancel", new Date(app.now())),
          ]);
      });
    }
    return next();
  };
}

export interface CancelOptions {
  /** How long a cancelled workflow run may take to stop before it is force-cancelled. (Default: 60 000 ms) */
  forceCancelAfterMs?: number;
}

/** The `cancel-workflow-run` task: ask GitHub to cancel, then to force-cancel. */
export function cancelWorkflowRunHandler(app: GitHubApp, options: CancelOptions = {}): TaskHandler {
  const grace = options.forceCancelAfterMs ?? 60_000;
  return async (ctx, task) => {
    const { key, stage } = task.payload as { key: string; stage: Stage };
    const dispatch = await getDispatch(ctx.db, key);
    const runId = dispatch?.workflowRunId;
    if (!dispatch || runId === undefined || dispatch.status === "completed") {
      await finishTask(ctx, task, () => Promise.resolve());
      return;
    }
    const [owner = "", repo = ""] = dispatch.repository.split("/");
    const github = await app.github.forRepository(
      dispatch.installationId,
      dispatch.repository,
      WORKFLOW_TOKEN_PERMISSIONS,
    );
    let stillRunning = true;
    try {
      if (stage === "cancel") {
        await github.request("POST /repos/{owner}/{repo}/actions/runs/{run_id}/cancel", {
          owner,
          repo,
          run_id: runId,
        });
      } else {
        const { data } = await github.request("GET /repos/{owner}/{repo}/actions/runs/{run_id}", {
          owner,
          repo,
          run_id: runId,
        });
        if (data.status === "completed") stillRunning = false;
        else
          await github.request("POST /repos/{owner}/{repo}/actions/runs/{run_id}/force-cancel", {
            owner,
            repo,
            run_id: runId,
          });
      }
    } catch (error: unknown) {
      const status = (error as { status?: number }).status;
      // 409: the run completed meanwhile; 404: it is gone. Nothing left to stop.
      if (status !== 409 && status !== 404) throw error;
      stillRunning = false;
    }
    ctx.log.info(`asked GitHub to ${stage} a workflow run`, { key, workflowRunId: runId });
    await finishTask(ctx, task, async (tx) => {
      if (stage === "cancel" && stillRunning)
        await scheduleTasks(tx, [
          cancelWorkflowRunTask(key, "force-cancel", new Date(app.now() + grace)),
        ]);
    });
  };
}
