/** The tasks that change runs without executing anything: timers, cancellations, sub-runs, run ends. */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { flowNameFromFile, parseFlow } from "../../flows-schema/parse-flow.js";
import { resolveInputs } from "../engine/index.js";
import type {
  CancelStep,
  CancelSubRun,
  FlowDefinition,
  Json,
  RequestApproval,
  RunEnded,
  StartSubRun,
} from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import { CHANNELS } from "../store/database.js";
import { saveFlowVersion } from "../store/flow-versions.js";
import type { Task } from "../store/model.js";
import { findChildRun, getRunById } from "../store/runs.js";
import { getStep } from "../store/steps.js";
import { advanceRun } from "./advance-run.js";
import { sha256 } from "./content-hash.js";
import { admitNextInGroup, createRun } from "./create-run.js";
import { ConcurrencyGroupError, ConcurrencyRejectedError } from "./errors.js";
import { AttemptCancelledError } from "./running-attempts.js";
import type { TaskContext } from "./task-context.js";
import { finishTask } from "./task-context.js";

/** A timer fired: decide again. */
export async function advanceTask(ctx: TaskContext, task: Task): Promise<void> {
  await finishTask(
    ctx,
    task,
    async (tx, handoff) => {
      await advanceRun(tx, ctx.flows, task.runId ?? "", [], ctx.now(), handoff);
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
 * Start the child run of a `flow` step. Local flows only: the sub-flow is the file
 * `<name>.yml` (or `.yaml`) beside the parent flow's file, read and stored as a version
 * now. Anything that prevents the start fails the step, without retries.
 */
export async function startSubRunTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as StartSubRun;
  const runId = task.runId ?? "";
  const parentKey = { runId, step: effect.step, attempt: effect.attempt };
  const parent = await getRunById(ctx.db, runId);
  const step = await getStep(ctx.db, runId, effect.step);
  const stillCurrent = parent && step?.status === "running" && step.attempt === effect.attempt;
  if (!parent || !stillCurrent || (await findChildRun(ctx.db, parentKey))) {
    await finishTask(ctx, task, () => Promise.resolve());
    return;
  }
  const version = await ctx.flows.get(ctx.db, parent.flowVersionId);
  const loaded =
    version.sourceKind === "local"
      ? await loadLocalSubFlow(version.path, effect.flow, effect.inputs)
      : {
          error:
            "`flow` steps of repository flows are started by the GitHub App; run `baton` against an app (BATON_URL).",
        };
  await finishTask(ctx, task, async (tx) => {
    const now = ctx.now();
    const fail = (error: string) =>
      advanceRun(
        tx,
        ctx.flows,
        runId,
        [
          {
            type: "attempt.finished",
            at: now,
            step: effect.step,
            attempt: effect.attempt,
            outcome: "failure",
            outputs: {},
            error,
            retryable: false,
          },
        ],
        now,
      );
    if ("error" in loaded) {
      await fail(loaded.error);
      return;
    }
    const childVersion = await saveFlowVersion(tx, {
      sourceKind: "local",
      repository: version.repository,
      path: loaded.path,
      sha: loaded.sha,
      name: flowNameFromFile(loaded.path),
      definition: loaded.flow,
      source: loaded.source,
    });
    // A refusal (the child's concurrency group) must not leave half a run behind.
    await tx.query("SAVEPOINT start_sub_run");
    try {
      await createRun(
        tx,
        ctx.flows,
        {
          version: childVersion,
          inputs: loaded.inputs,
          actor: parent.actor,
          trigger: {
            event: "flow",
            payload: { runId, step: effect.step, attempt: effect.attempt, flow: parent.flow },
          },
          parent: parentKey,
        },
        now,
      );
      await tx.query("RELEASE SAVEPOINT start_sub_run");
    } catch (error: unknown) {
      if (!(error instanceof ConcurrencyRejectedError || error instanceof ConcurrencyGroupError))
        throw error;
      await tx.query("ROLLBACK TO SAVEPOINT start_sub_run");
      await fail(error.message);
    }
  });
}

type LoadedSubFlow =
  | {
      path: string;
      source: string;
      sha: string;
      flow: FlowDefinition;
      inputs: Record<string, Json>;
    }
  | { error: string };

async function loadLocalSubFlow(
  parentPath: string,
  name: string,
  given: Record<string, Json>,
): Promise<LoadedSubFlow> {
  if (!/^[A-Za-z0-9_.-]+$/.test(name) || name.startsWith(".")) {
    return {
      error: `sub-flow name "${name}" must be a flow file name (letters, digits, _ - .), not a path`,
    };
  }
  const dir = dirname(parentPath);
  const candidates = [join(dir, `${name}.yml`), join(dir, `${name}.yaml`)];
  let path: string | undefined;
  let source = "";
  for (const candidate of candidates) {
    try {
      source = await readFile(candidate, "utf8");
      path = candidate;
      break;
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") {
        return { error: `cannot read sub-flow ${candidate}: ${(error as Error).message}` };
      }
    }
  }
  if (path === undefined) {
    return {
      error: `sub-flow "${name}" not found: expected ${candidates[0]} beside the parent flow`,
    };
  }
  const parsed = parseFlow(source, path);
  if (!parsed.flow) {
    const errors = parsed.diagnostics.filter((d) => d.severity === "error");
    return {
      error: `sub-flow ${path} is invalid:\n${errors.map((d) => `${d.file}:${d.line}:${d.column}: ${d.message}`).join("\n")}`,
    };
  }
  const inputs = resolveInputs(parsed.flow, given);
  if (!inputs.ok) return { error: `inputs of sub-flow ${name}: ${inputs.errors.join("; ")}` };
  return { path, source, sha: sha256(source), flow: parsed.flow, inputs: inputs.inputs };
}

/** Ask the child run of a cancelled `flow` step to cancel. */
export async function cancelSubRunTask(ctx: TaskContext, task: Task): Promise<void> {
  const effect = task.payload as unknown as CancelSubRun;
  const runId = task.runId ?? "";
  await finishTask(ctx, task, async (tx) => {
    const child = await findChildRun(tx, { runId, step: effect.step, attempt: effect.attempt });
    if (!child || TERMINAL_RUN_STATUSES.includes(child.status)) return;
    const now = ctx.now();
    await advanceRun(
      tx,
      ctx.flows,
      child.id,
      [
        {
          type: "run.cancel-requested",
          at: now,
          by: "baton",
          reason: `the parent run cancelled step ${effect.step}`,
        },
      ],
      now,
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
      await advanceRun(
        tx,
        ctx.flows,
        effect.parent.runId,
        [
          {
            type: "attempt.finished",
            at: now,
            step: effect.parent.step,
            attempt: effect.parent.attempt,
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
        ],
        now,
        handoff,
      );
    }
  });
}
