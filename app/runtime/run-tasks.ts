/** The tasks that change runs without executing anything: timers, cancellations, sub-runs, run ends. */
import { isCurrent } from "../engine/run-inputs.js";
import type {
  CancelStep,
  CancelSubRun,
  RequestApproval,
  RunEnded,
  StartSubRun,
} from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import { CHANNELS } from "../store/database.js";
import type { Task } from "../store/model.js";
import { findChildRun, getRunById } from "../store/runs.js";
import { admitNextInGroup } from "./create-run.js";
import { attemptKey, doorOf } from "./run-door.js";
import type { TaskHandler } from "./runtime.js";
import { AttemptCancelledError } from "./running-attempts.js";
import type { SubFlowSource } from "./sub-flow-source.js";
import { localSubFlows } from "./sub-flow-source.js";
import type { TaskContext } from "./task-context.js";
import { finishTask } from "./task-context.js";

/** A timer fired: decide again. */
export async function advanceTask(ctx: TaskContext, task: Task): Promise<void> {
  await finishTask(
    ctx,
    task,
    async (tx, handoff) => {
      await doorOf(ctx).advance(tx, task.runId ?? "", {
        now: ctx.now(),
        ...(handoff ? { handoff } : {}),
      });
    },
    { foldCompletion: true },
  );
}

/** Stop a running attempt here if it runs here, and tell every other process. */
export async function cancelTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as CancelStep;
  ctx.running.abort(effect.key, new AttemptCancelledError());
  await finishTask(ctx, task, (tx) => tx.notify(CHANNELS.cancel, effect.key));
}

export async function requestApprovalTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as RequestApproval;
  // Local mode has no one to notify: approvers use `baton approve`. The GitHub app
  // replaces this handler to render buttons and request reviews.
  ctx.log.info(effect.reminder ? "approval reminder" : "approval requested", {
    runId: task.runId,
    step: effect.step,
    attempt: effect.attempt,
  });
  await finishTask(ctx, task, () => Promise.resolve());
}

/**
 * The `start-sub-run` handler: start the child run of a `flow` step from the file
 * `source` finds. Anything that prevents the start fails the step, without retries.
 */
export function subRunTask(source: SubFlowSource): TaskHandler {
  return async (ctx, task) => {
    const effect = task.payload as unknown as StartSubRun;
    const runId = task.runId ?? "";
    const target = { runId, step: effect.step, attempt: effect.attempt, compensation: false };
    const parent = await getRunById(ctx.db, runId);
    // A look without the lock first, so that no file is fetched for an attempt that ended;
    // the door looks again, locked.
    if (!parent || !isCurrent(parent.state?.steps[effect.step], target)) {
      await finishTask(ctx, task, () => Promise.resolve());
      return;
    }
    const door = doorOf(ctx);
    const version = await door.version(ctx.db, parent.flowVersionId);
    const loaded = await source.load({ run: parent, version }, effect.flow);
    await finishTask(ctx, task, async (tx) => {
      await door.startSubRun(
        tx,
        attemptKey(target),
        {
          loaded,
          inputs: effect.inputs,
          ...(parent.github ? { github: parent.github } : {}),
        },
        { now: ctx.now() },
      );
    });
  };
}

/** Local mode's `start-sub-run`: sub-flows are files beside the parent's. */
export const startSubRunTask: TaskHandler = subRunTask(localSubFlows);

/** Ask the child run of a cancelled `flow` step to cancel. */
export async function cancelSubRunTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as CancelSubRun;
  const runId = task.runId ?? "";
  await finishTask(ctx, task, async (tx) => {
    const child = await findChildRun(tx, { runId, step: effect.step, attempt: effect.attempt });
    if (!child || TERMINAL_RUN_STATUSES.includes(child.status)) return;
    await doorOf(ctx).cancel(
      tx,
      child.id,
      { by: "baton", reason: `the parent run cancelled step ${effect.step}` },
      ctx.now(),
    );
  });
}

/** A run ended: admit the next queued run of its group, and report to its parent. */
export async function runEndedTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as RunEnded;
  const runId = task.runId ?? "";
  await finishTask(ctx, task, async (tx, handoff) => {
    const now = ctx.now();
    if (effect.concurrencyGroup !== undefined) {
      // The group is the repository's: the ended run says which repository.
      const ended = await getRunById(tx, runId);
      if (ended)
        await admitNextInGroup(
          tx,
          ctx.flows,
          { repository: ended.repository, group: effect.concurrencyGroup },
          now,
        );
    }
    if (effect.parent) {
      const child = await getRunById(tx, runId);
      const name = child ? `${child.flow}#${child.number}` : runId;
      await doorOf(ctx).reportOutcome(
        tx,
        attemptKey({ ...effect.parent, compensation: false }),
        {
          outcome: effect.status === "success" ? "success" : "failure",
          outputs: effect.outputs,
          ...(effect.status === "success"
            ? {}
            : {
                error: `sub-run ${name} ${effect.status === "cancelled" ? "was cancelled" : "failed"}${
                  child?.state?.reason ? `: ${child.state.reason}` : ""
                }`,
              }),
        },
        { now, ...(handoff ? { handoff } : {}) },
      );
    }
  });
}
