/**
 * The runtime's side of self-hosted runners: `execute` (and `compensate`) tasks of steps
 * that name runner labels become rows of the runner job queue, and the task ends at once,
 * so a step that runs for hours on a runner holds no runtime slot. A runner's report
 * records the outcome with the run's next decision, in one transaction; a lease that runs
 * out (the runner died or lost the network) fails the attempt as retryable, so that the
 * step's retry policy decides, and the job's late result is kept but ignored.
 *
 * The lease is watched by a `runner-lease` task per claimed job, due when the lease would
 * end: heartbeats only move `lease_until`, and the task, when it fires early, puts itself
 * back at the new end. Everything is in the database, so any app process may do it.
 */
import {
  compensatedAttempt,
  compensationRunning,
  executeTaskCurrent,
} from "../runtime/execute-step.js";
import type { Compensate, ExecuteStep, Json, NewRunEvent } from "../engine/types.js";
import type { StepOutcome } from "../runner/executor.js";
import { advanceRun } from "../runtime/advance-run.js";
import type { FlowCache } from "../runtime/flow-cache.js";
import type { TaskHandler } from "../runtime/runtime.js";
import type { TaskContext } from "../runtime/task-context.js";
import { finishTask } from "../runtime/task-context.js";
import type { Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import type { NewTask, Task } from "../store/model.js";
import { getRunById } from "../store/runs.js";
import { enqueueTasks } from "../store/tasks.js";
import type { RunnerJob } from "./runners-sql.js";
import { enqueueRunnerJob, loseExpiredLease, markJobFinished } from "./runners-sql.js";

/** The task that watches a claimed job's lease. */
export const RUNNER_LEASE = "runner-lease";

/** Every runner has this label, and steps without `runs-on` that need a runner ask for it. */
export const SELF_HOSTED = "self-hosted";

export interface RunnerQueueOptions {
  /**
   * Send `run` steps without `runs-on` to runners too (labels `[self-hosted]`), instead of
   * the process's own executor. `agent` steps always go to runners. (Default: false)
   */
  routeUnlabelled?: boolean;
}

/**
 * The labels a runner must have to take this step, or undefined when the step is not a
 * runner's (it runs through the process's executors, as before).
 */
export function runnerLabelsFor(
  kind: string,
  spec: Json,
  options: RunnerQueueOptions = {},
): string[] | undefined {
  if (kind !== "run" && kind !== "agent") return undefined;
  const object = spec !== null && typeof spec === "object" && !Array.isArray(spec) ? spec : {};
  const runsOn = object["runs-on"];
  if (runsOn === undefined || runsOn === null) {
    return kind === "agent" || options.routeUnlabelled ? [SELF_HOSTED] : undefined;
  }
  if (typeof runsOn === "string") return [runsOn];
  if (Array.isArray(runsOn)) return runsOn.map(String);
  if (typeof runsOn === "object") {
    const labels = Array.isArray(runsOn.labels) ? runsOn.labels.map(String) : [];
    // A runner with an SSH host in its configuration advertises `ssh:<name>`.
    if (typeof runsOn.ssh === "string") labels.push(`ssh:${runsOn.ssh}`);
    return labels.length > 0 ? labels : [SELF_HOSTED];
  }
  return undefined;
}

/**
 * Task handlers to give the runtime (`RuntimeOptions.handlers`, or a part's `tasks`):
 * `execute` and `compensate` that queue runner steps (and run the rest as before), and
 * the lease watcher.
 */
export function runnerTaskHandlers(options: RunnerQueueOptions = {}): Record<string, TaskHandler> {
  return {
    execute: async (ctx, task, next) => {
      const effect = task.payload as unknown as ExecuteStep;
      const labels = runnerLabelsFor(effect.kind, effect.spec, options);
      if (!labels) return next();
      await queueJob(ctx, task, await executeTaskCurrent(ctx, task), {
        kind: "execute",
        step: effect.step,
        attempt: effect.attempt,
        key: effect.key,
        labels,
        payload: effect as unknown as Json,
      });
    },
    compensate: async (ctx, task, next) => {
      const effect = task.payload as unknown as Compensate;
      const labels = runnerLabelsFor(effect.kind, effect.spec, options);
      if (!labels) return next();
      await queueJob(ctx, task, await compensationRunning(ctx, task), {
        kind: "compensate",
        step: effect.step,
        attempt: compensatedAttempt(effect),
        key: effect.key,
        labels,
        payload: effect as unknown as Json,
      });
    },
    [RUNNER_LEASE]: runnerLeaseTask,
  };
}

async function queueJob(
  ctx: TaskContext,
  task: Task,
  current: boolean,
  job: Pick<RunnerJob, "kind" | "step" | "attempt" | "key" | "labels"> & { payload: Json },
): Promise<void> {
  const runId = task.runId ?? "";
  const run = current ? await getRunById(ctx.db, runId) : undefined;
  await finishTask(ctx, task, async (tx) => {
    // Cancelled, timed out or already reported: nothing to queue.
    if (!run) return;
    const queued = await enqueueRunnerJob(tx, {
      ...job,
      runId,
      repository: run.repository,
      ...(run.github ? { installationId: run.github.installationId } : {}),
    });
    if (queued) await tx.notify(CHANNELS.runnerJobs, job.key);
  });
}

/** The lease watcher's task, due at `leaseUntil`. One per job (its key), replaced on each reschedule. */
export function runnerLeaseTaskFor(job: { key: string; runId: string }, leaseUntil: Date): NewTask {
  return {
    kind: RUNNER_LEASE,
    runId: job.runId,
    key: `${job.key}/runner-lease`,
    runAt: leaseUntil,
    payload: { key: job.key },
  };
}

/**
 * A claimed job's lease may have run out: if it has, the attempt fails as retryable (the
 * step's retry policy decides) and the job is marked lost; if a heartbeat renewed it,
 * look again when the new lease would end.
 */
const runnerLeaseTask: TaskHandler = async (ctx, task) => {
  const given = (task.payload as { key?: unknown }).key;
  const key = typeof given === "string" ? given : "";
  await finishTask(ctx, task, async (tx) => {
    const { job, leaseUntil } = await loseExpiredLease(tx, key);
    if (leaseUntil) {
      await enqueueTasks(tx, [runnerLeaseTaskFor({ key, runId: task.runId ?? "" }, leaseUntil)]);
      return;
    }
    if (!job) return;
    ctx.log.warn("a runner stopped renewing its lease; the attempt fails and may be retried", {
      key,
      runnerId: job.runnerId,
    });
    await recordOutcome(
      tx,
      ctx.flows,
      { ...job, status: "lost" },
      {
        outcome: "failure",
        outputs: {},
        error:
          `the runner ${job.runnerId ?? "?"} stopped reporting (its lease ran out); ` +
          "the step is retried if its retry policy allows",
        retryable: true,
      },
    );
  });
};

/** Record a job's outcome as the run's input and take the run's next decision. */
export async function recordOutcome(
  tx: Transaction,
  flows: FlowCache,
  job: RunnerJob,
  outcome: StepOutcome,
): Promise<void> {
  const now = Date.now();
  const event: NewRunEvent =
    job.kind === "execute"
      ? {
          type: "attempt.finished",
          at: now,
          step: job.step,
          attempt: job.attempt,
          outcome: outcome.outcome,
          outputs: outcome.outputs,
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
          ...(outcome.retryable !== undefined ? { retryable: outcome.retryable } : {}),
        }
      : {
          type: "compensation.finished",
          at: now,
          step: job.step,
          outcome: outcome.outcome,
          ...(outcome.error !== undefined ? { error: outcome.error } : {}),
        };
  await advanceRun(tx, flows, job.runId, [event], now);
  if (job.status === "running") await markJobFinished(tx, job.key, outcome as unknown as Json);
}
