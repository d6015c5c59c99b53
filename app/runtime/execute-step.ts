/**
 * `execute` and `compensate` tasks: run an attempt (or a compensation) through its
 * executor, renewing the task's lease while it runs, then record the outcome together
 * with the run's next decision in one transaction (that also deletes the task).
 *
 * Commits per step: the decision that started the attempt enqueued this task; claiming
 * it is one commit, and the outcome plus the next decision is another.
 *
 * After a crash the lease expires, another worker claims the task and runs the attempt
 * again with the same BATON_IDEMPOTENCY_KEY: the step (or the system it talks to) must
 * recognise the key. A second outcome for the same attempt is not recorded.
 */
import type { Compensate, ExecuteStep } from "../engine/types.js";
import type { Executor, StepExecution, StepOutcome } from "../runner/executor.js";
import { unavailableLocally } from "../runner/executor.js";
import type { Task } from "../store/model.js";
import { renewLease } from "../store/tasks.js";
import { attemptIsCurrent, doorOf, parseAttemptKey } from "./run-door.js";
import type { TaskContext } from "./task-context.js";
import { finishTask } from "./task-context.js";
import { AttemptCancelledError, LeaseTakenOverError, ShutdownError } from "./running-attempts.js";
import { StepLogWriter } from "./step-log-writer.js";

/**
 * Whether an `execute` task's attempt is still the step's running one. Claimed on enqueue
 * or by `claimDueTasks`, the task already says (saves a query). For every handler of
 * `execute` (here, runners, workflows).
 */
export async function executeTaskCurrent(ctx: TaskContext, task: Task): Promise<boolean> {
  if (task.stepCurrent !== undefined) return task.stepCurrent;
  const effect = task.payload as unknown as ExecuteStep;
  return attemptIsCurrent(ctx.db, effect.key);
}

/** Whether a `compensate` task's compensation still runs (the run was not cancelled meanwhile). */
export async function compensationRunning(ctx: TaskContext, task: Task): Promise<boolean> {
  const effect = task.payload as unknown as Compensate;
  return attemptIsCurrent(ctx.db, effect.key);
}

/** The step attempt a compensation undoes: its key is `<run>/<step>/<attempt>/compensate`. */
export function compensatedAttempt(effect: Compensate): number {
  return parseAttemptKey(effect.key).attempt;
}

export async function executeTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as ExecuteStep;
  const runId = task.runId ?? "";
  const current = () => attemptIsCurrent(ctx.db, effect.key);
  if (!(await executeTaskCurrent(ctx, task))) {
    // Cancelled, timed out or already reported: nothing to run.
    await finishTask(ctx, task, () => Promise.resolve());
    return;
  }
  const outcome = await runWithLease(ctx, task, {
    runId,
    step: effect.step,
    attempt: effect.attempt,
    key: effect.key,
    kind: effect.kind,
    spec: effect.spec,
    env: effect.env,
    ...(effect.deadline !== undefined ? { deadline: effect.deadline } : {}),
    stillCurrent: current,
  });
  await finishTask(
    ctx,
    task,
    async (tx, handoff) => {
      await doorOf(ctx).reportOutcome(tx, effect.key, outcome, {
        now: ctx.now(),
        ...(handoff ? { handoff } : {}),
      });
    },
    { foldCompletion: true },
  );
}

export async function compensateTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as Compensate;
  const runId = task.runId ?? "";
  const attempt = compensatedAttempt(effect);
  const current = () => compensationRunning(ctx, task);
  if (!(await current())) {
    await finishTask(ctx, task, () => Promise.resolve());
    return;
  }
  const outcome = await runWithLease(ctx, task, {
    runId,
    step: effect.step,
    attempt,
    key: effect.key,
    kind: effect.kind,
    spec: effect.spec,
    env: effect.env,
    stillCurrent: current,
  });
  await finishTask(
    ctx,
    task,
    async (tx, handoff) => {
      await doorOf(ctx).reportOutcome(tx, effect.key, outcome, {
        now: ctx.now(),
        ...(handoff ? { handoff } : {}),
      });
    },
    { foldCompletion: true },
  );
}

type Execution = Omit<StepExecution, "signal" | "log"> & { stillCurrent: () => Promise<boolean> };

/**
 * Run the executor while renewing the lease every third of it. Each renewal also checks
 * that the attempt is still current (the database's word on cancellation, for when the
 * notification was missed). Throws `ShutdownError` or `LeaseTakenOverError` when the
 * outcome must not be recorded by this worker.
 */
async function runWithLease(
  ctx: TaskContext,
  task: Task,
  execution: Execution,
): Promise<StepOutcome> {
  const { stillCurrent, ...rest } = execution;
  const executor: Executor = ctx.executors[rest.kind] ?? unavailableLocally(rest.kind);
  const controller = ctx.running.start(rest.key);
  const writer = new StepLogWriter(
    ctx.db,
    { runId: rest.runId, step: rest.step, attempt: rest.attempt },
    ctx.log,
  );
  let beating = false;
  const beat = async () => {
    if (beating) return;
    beating = true;
    try {
      if (!(await renewLease(ctx.db, task.id, ctx.workerId, ctx.leaseMs))) {
        controller.abort(new LeaseTakenOverError());
      } else if (!(await stillCurrent())) {
        controller.abort(new AttemptCancelledError("cancelled: the attempt is no longer current"));
      }
    } catch (error: unknown) {
      ctx.log.warn("could not renew a lease", { taskId: task.id, key: rest.key, error });
    } finally {
      beating = false;
    }
  };
  const heartbeat = setInterval(() => void beat(), Math.max(50, Math.floor(ctx.leaseMs / 3)));
  let outcome: StepOutcome;
  try {
    outcome = await executor({
      ...rest,
      signal: controller.signal,
      log: (stream, text) => writer.write(stream, text),
    });
  } catch (error: unknown) {
    outcome = {
      outcome: "failure",
      outputs: {},
      error: `the executor failed: ${error instanceof Error ? error.message : String(error)}`,
    };
  } finally {
    clearInterval(heartbeat);
    ctx.running.finish(rest.key, controller);
    await writer.close();
  }
  const reason: unknown = controller.signal.reason;
  if (reason instanceof ShutdownError || reason instanceof LeaseTakenOverError) throw reason;
  return outcome;
}
