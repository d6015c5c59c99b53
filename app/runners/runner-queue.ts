/**
 * The runtime's side of self-hosted runners: `execute` (and `compensate`) tasks of `run`
 * and `agent` steps become rows of the runner job queue, and the task ends at once,
 * so a step that runs for hours on a runner holds no runtime slot. A runner's report
 * records the outcome with the run's next decision, in one transaction; a lease that runs
 * out (the runner died or lost the network) fails the attempt as retryable, so that the
 * step's retry policy decides, and the job's late result is kept but ignored.
 *
 * The lease is watched by a `runner-lease` task per claimed job, due when the lease would
 * end: heartbeats only move `lease_until`, and the task, when it fires early, puts itself
 * back at the new end. Everything is in the database, so any app process may do it.
 *
 * A job no runner claims within a second makes its step say so ("waiting for a runner with
 * labels [self-hosted, linux]; register one with …"), through a `runner-wait` task, which
 * later says which runner took it; the step's timeout, as for any attempt, ends the wait.
 */
import type { Compensate, ExecuteStep, Json } from "../engine/types.js";
import type { StepOutcome } from "../runner/executor.js";
import {
  compensatedAttempt,
  compensationRunning,
  doorOf,
  executeTaskCurrent,
  finishTask,
  type RunDoor,
  scheduleTasks,
  type TaskContext,
  type TaskHandler,
} from "../runtime/index.js";
import type { Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import type { NewTask, Task } from "../store/model.js";
import { getRunById } from "../store/runs.js";
import { appendLogs } from "../store/step-logs.js";
import type { RunnerJob } from "../store/runner-jobs.js";
import {
  dropStaleQueuedJobs,
  enqueueRunnerJob,
  getRunner,
  getRunnerJob,
  loseExpiredLease,
  markJobFinished,
} from "../store/runner-jobs.js";

/** The task that watches a claimed job's lease. */
export const RUNNER_LEASE = "runner-lease";

/** The task that tells, on the step, that its job waits for a runner, and then where it runs. */
export const RUNNER_WAIT = "runner-wait";

/** Every runner has this label, and steps without `runs-on` ask for it. */
export const SELF_HOSTED = "self-hosted";

/**
 * How long a queued job may wait before the step says it is waiting for a runner: a
 * runner that is there claims in milliseconds, and saying "waiting" for those would only
 * make every step's history longer (and cost a check-run update). At most half the time
 * the step has left, so that a short timeout is still explained before it fires.
 */
const WAIT_NOTICE_MS = 1000;
/** After the notice, how often to look whether a runner claimed the job: 1 s more each time, up to this. */
const WAIT_POLL_MAX_MS = 15_000;

/**
 * The labels a runner must have to take this step, or undefined when the step is not a
 * runner's. Every `run` and `agent` step (and `run` compensation) is a runner's: where
 * these handlers are installed (the GitHub app), the host runs no flow code (DESIGN.md
 * rule 10); a step without `runs-on` asks for `[self-hosted]`, which every runner has.
 */
export function runnerLabelsFor(kind: string, spec: Json): string[] | undefined {
  if (kind !== "run" && kind !== "agent") return undefined;
  const object = spec !== null && typeof spec === "object" && !Array.isArray(spec) ? spec : {};
  const runsOn = object["runs-on"];
  if (runsOn === undefined || runsOn === null) return [SELF_HOSTED];
  if (typeof runsOn === "string") return [runsOn];
  if (Array.isArray(runsOn)) return runsOn.length > 0 ? runsOn.map(String) : [SELF_HOSTED];
  if (typeof runsOn === "object") {
    const labels = Array.isArray(runsOn.labels) ? runsOn.labels.map(String) : [];
    // A runner with an SSH host in its configuration advertises `ssh:<name>`.
    if (typeof runsOn.ssh === "string") labels.push(`ssh:${runsOn.ssh}`);
    return labels.length > 0 ? labels : [SELF_HOSTED];
  }
  return [SELF_HOSTED];
}

/**
 * What a step waiting for a runner says (on its check run, in `baton show` and the API):
 * which labels, and how to register a runner that has them.
 */
export function waitingForRunner(
  labels: readonly string[],
  repository: string | undefined,
): string {
  const all = [...new Set([SELF_HOSTED, ...labels])];
  const flags = all
    .filter((label) => label !== SELF_HOSTED && !label.startsWith("ssh:"))
    .map((label) => ` --label ${label}`)
    .join("");
  const hosts = all.filter((label) => label.startsWith("ssh:")).map((label) => label.slice(4));
  const config = hosts.length > 0 ? ` --config <a file with ssh: ${hosts.join(", ")}>` : "";
  const create =
    repository !== undefined
      ? `baton runner-token create --repo ${repository}`
      : "baton runner-token create";
  return (
    `waiting for a runner with labels [${all.join(", ")}]; register one with ` +
    `\`${create}\` then \`baton runner --token …${flags}${config}\``
  );
}

/**
 * Task handlers to give the runtime (`RuntimeOptions.handlers`, or a part's `tasks`):
 * `execute` and `compensate` that queue `run` and `agent` steps for runners (and pass the
 * other kinds on), the wait notice and the lease watcher.
 */
export function runnerTaskHandlers(): Record<string, TaskHandler> {
  return {
    execute: async (ctx, task, next) => {
      const effect = task.payload as unknown as ExecuteStep;
      const labels = runnerLabelsFor(effect.kind, effect.spec);
      if (!labels) return next();
      await queueJob(
        ctx,
        task,
        await executeTaskCurrent(ctx, task),
        {
          kind: "execute",
          step: effect.step,
          attempt: effect.attempt,
          key: effect.key,
          labels,
          payload: effect as unknown as Json,
        },
        effect.deadline,
      );
    },
    compensate: async (ctx, task, next) => {
      const effect = task.payload as unknown as Compensate;
      const labels = runnerLabelsFor(effect.kind, effect.spec);
      if (!labels) return next();
      await queueJob(
        ctx,
        task,
        await compensationRunning(ctx, task),
        {
          kind: "compensate",
          step: effect.step,
          attempt: compensatedAttempt(effect),
          key: effect.key,
          labels,
          payload: effect as unknown as Json,
        },
        undefined,
      );
    },
    [RUNNER_WAIT]: runnerWaitTask,
    [RUNNER_LEASE]: runnerLeaseTask,
  };
}

async function queueJob(
  ctx: TaskContext,
  task: Task,
  current: boolean,
  job: Pick<RunnerJob, "kind" | "step" | "attempt" | "key" | "labels"> & { payload: Json },
  deadline: number | undefined,
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
    if (!queued) return;
    await tx.notify(CHANNELS.runnerJobs, job.key);
    const left = deadline === undefined ? Infinity : deadline - ctx.now();
    const delay = Math.max(0, Math.min(WAIT_NOTICE_MS, Math.floor(left / 2)));
    await scheduleTasks(tx, [runnerWaitTaskFor({ key: job.key, runId }, delay, false, ctx.now())]);
  });
}

function runnerWaitTaskFor(
  job: { key: string; runId: string },
  delayMs: number,
  told: boolean,
  now: number,
): NewTask {
  return {
    kind: RUNNER_WAIT,
    runId: job.runId,
    key: `${job.key}/runner-wait`,
    runAt: new Date(now + delayMs),
    payload: { key: job.key, told, delayMs },
  };
}

/**
 * A queued job's notice. Still queued (no runner has claimed it): the step says it waits
 * for a runner with its labels and how to register one, then the task looks again, less
 * and less often. Claimed after the step said so: the step says which runner runs it.
 * The step no longer current (it timed out, or the run was cancelled): the step's log
 * says that no runner took it, and the stale job is dropped.
 *
 * The engine ends a waiting `execute` job at the step's `timeout` (and the run's), like
 * any attempt. A compensation has no attempt to show progress on: its log says it waits.
 */
const runnerWaitTask: TaskHandler = async (ctx, task) => {
  const payload = task.payload as { key?: unknown; told?: unknown; delayMs?: unknown };
  const key = typeof payload.key === "string" ? payload.key : "";
  const told = payload.told === true;
  const delayMs = typeof payload.delayMs === "number" ? payload.delayMs : WAIT_NOTICE_MS;
  const job = await getRunnerJob(ctx.db, key);
  await finishTask(ctx, task, async (tx) => {
    if (!job || (job.status !== "queued" && !(job.status === "running" && told))) return;
    const door = doorOf(ctx);
    const call = { now: ctx.now() };
    const execute = job.kind === "execute";
    /** The step's shown reason (check run, `baton show`, the API); for a compensation, only whether it runs. */
    const progress = async (detail: string) =>
      (await door.reportProgress(tx, job.key, { detail }, call)).current;
    const log = (text: string) =>
      appendLogs(tx, [
        {
          runId: job.runId,
          step: job.step,
          attempt: job.attempt,
          stream: "system",
          chunk: text,
          at: call.now,
        },
      ]);
    if (job.status === "running") {
      if (!execute) return;
      const runner = job.runnerId !== undefined ? await getRunner(tx, job.runnerId) : undefined;
      await progress(`running on runner ${runner?.name ?? job.runnerId ?? "?"}`);
      return;
    }
    const waiting = waitingForRunner(
      job.labels,
      job.installationId !== undefined ? job.repository : undefined,
    );
    const locked = told || !execute ? await door.lockCurrent(tx, job.key) : undefined;
    const current = locked ? locked.current : await progress(waiting);
    if (!current) {
      if (told)
        await log(
          `No runner with labels [${[...new Set([SELF_HOSTED, ...job.labels])].join(", ")}] took this ` +
            `${execute ? "step" : "compensation"} before it ended` +
            `${locked?.step?.reason ? ` (${locked.step.reason})` : ""}\n`,
        );
      await dropStaleQueuedJobs(tx);
      return;
    }
    if (!told) await log(`The ${execute ? "step" : "compensation"} is ${waiting}\n`);
    const next = told ? Math.min(WAIT_POLL_MAX_MS, Math.max(1000, delayMs + 1000)) : 1000;
    await scheduleTasks(tx, [runnerWaitTaskFor(job, next, true, call.now)]);
  });
};

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
      await scheduleTasks(tx, [runnerLeaseTaskFor({ key, runId: task.runId ?? "" }, leaseUntil)]);
      return;
    }
    if (!job) return;
    ctx.log.warn("a runner stopped renewing its lease; the attempt fails and may be retried", {
      key,
      runnerId: job.runnerId,
    });
    await recordOutcome(
      tx,
      doorOf(ctx),
      ctx.now(),
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

/**
 * Record a job's outcome through the run's door (ignored there when its attempt is no
 * longer current), and mark the job finished.
 */
export async function recordOutcome(
  tx: Transaction,
  door: RunDoor,
  now: number,
  job: RunnerJob,
  outcome: StepOutcome,
): Promise<void> {
  await door.reportOutcome(tx, job.key, outcome, { now });
  if (job.status === "running") await markJobFinished(tx, job.key, outcome as unknown as Json);
}
