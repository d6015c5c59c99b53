/**
 * The `execute` task of a `workflow` step (and the `compensate` task of a `workflow`
 * compensation): dispatch the Actions workflow and end the task. The attempt then waits,
 * holding no runtime slot, until the workflow run's events finish it (workflow-events.ts),
 * its timeout cancels it, or its run is cancelled.
 *
 * Dispatching (DESIGN.md rule 7): on the workflow repository's default branch or the
 * step's `ref:` (a branch or tag of the live flow), never on a pull request's branch; the
 * SHA under test travels as data (`with: { sha: "${{ run.sha }}" }`).
 *
 * A crash between GitHub's answer and the commit of the dispatch dispatches again when the
 * task is retried; the second run reports with the same attempt's token, and only one
 * report of outputs is accepted.
 */
import type { Compensate, ExecuteStep, Json } from "../../engine/types.js";
import {
  compensatedAttempt,
  compensationRunning,
  executeTaskCurrent,
  finishTask,
  scheduleTasks,
  type TaskContext,
  type TaskHandler,
} from "../../runtime/index.js";
import type { Task } from "../../store/model.js";
import { appendLogs } from "../../store/step-logs.js";
import { getRunById } from "../../store/runs.js";
import type { GitHubApp } from "../github-app.js";
import { WORKFLOW_TOKEN_PERMISSIONS } from "../permissions.js";
import type { Octokit } from "../github-client.js";
import { getRepository } from "../../store/repositories.js";
import { signStepToken, stepTokenKey } from "./step-token.js";
import type { WorkflowTarget } from "./workflow-file.js";
import {
  BATON_INPUT,
  readWorkflowFile,
  WorkflowStepError,
  workflowTarget,
} from "./workflow-file.js";
import type { DispatchPurpose } from "../../store/workflow-dispatches.js";
import { insertDispatch, markCancelRequested } from "../../store/workflow-dispatches.js";
import { cancelWorkflowRunTask } from "./cancel-workflow.js";

/** GitHub's limit on a dispatch's inputs. */
const MAX_DISPATCH_INPUTS = 25;
/** How long a step token outlives its attempt's deadline (a report racing the timeout). */
const TOKEN_GRACE_SECONDS = 10 * 60;
/** Step tokens of dispatches without a deadline (compensations). */
const TOKEN_DEFAULT_SECONDS = 24 * 60 * 60;

export interface DispatchOptions {
  /** The key step tokens derive from. (Default: BATON_SECRET_KEY, else the stored key) */
  secretKey?: string;
}

/** What is dispatched: a step's attempt, or the compensation of its successful attempt. */
interface DispatchJob {
  purpose: DispatchPurpose;
  runId: string;
  step: string;
  attempt: number;
  /** The effect's idempotency key (the dispatch's key). */
  key: string;
  /** `workflow`, `with` and `ref`, expanded. */
  spec: Json;
  deadline?: number;
}

/** `execute` and `compensate` tasks of workflows; other kinds go on to `next`. */
export function workflowDispatchHandlers(
  app: GitHubApp,
  options: DispatchOptions = {},
): { execute: TaskHandler; compensate: TaskHandler } {
  return {
    execute: async (ctx, task, next) => {
      const effect = task.payload as unknown as ExecuteStep;
      if (effect.kind !== "workflow") return next();
      await dispatchJob(app, options, ctx, task, await executeTaskCurrent(ctx, task), {
        purpose: "attempt",
        runId: task.runId ?? "",
        step: effect.step,
        attempt: effect.attempt,
        key: effect.key,
        spec: effect.spec,
        ...(effect.deadline !== undefined ? { deadline: effect.deadline } : {}),
      });
    },
    compensate: async (ctx, task, next) => {
      const effect = task.payload as unknown as Compensate;
      if (effect.kind !== "workflow") return next();
      await dispatchJob(app, options, ctx, task, await compensationRunning(ctx, task), {
        purpose: "compensation",
        runId: task.runId ?? "",
        step: effect.step,
        attempt: compensatedAttempt(effect),
        key: effect.key,
        spec: effect.spec,
      });
    },
  };
}

async function dispatchJob(
  app: GitHubApp,
  options: DispatchOptions,
  ctx: TaskContext,
  task: Task,
  current: boolean,
  job: DispatchJob,
): Promise<void> {
  const run = current ? await getRunById(ctx.db, job.runId) : undefined;
  if (!run) {
    // Cancelled, timed out or already reported: nothing to dispatch.
    await finishTask(ctx, task, () => Promise.resolve());
    return;
  }
  let outcome: { dispatched: Dispatched } | { failed: string };
  try {
    if (!run.github)
      throw new WorkflowStepError(
        "`workflow` steps run in GitHub Actions: they need a run of a repository's flow " +
          "(the GitHub app), not a local run",
      );
    outcome = {
      dispatched: await dispatch(app, options, job, {
        repository: run.repository,
        installationId: run.github.installationId,
      }),
    };
  } catch (error: unknown) {
    // Transient failures (GitHub down, rate limits past retries) leave the task to be
    // retried; a problem of the step itself fails the attempt (or the compensation).
    const failure = stepFailure(error);
    if (failure === undefined) throw error;
    outcome = { failed: failure };
  }
  await finishTask(ctx, task, async (tx) => {
    const now = ctx.now();
    const door = app.service.door;
    if ("failed" in outcome) {
      await door.reportOutcome(
        tx,
        job.key,
        { outcome: "failure", outputs: {}, error: outcome.failed, retryable: false },
        { now },
      );
      return;
    }
    const { dispatched } = outcome;
    await insertDispatch(tx, {
      key: job.key,
      runId: job.runId,
      step: job.step,
      attempt: job.attempt,
      purpose: job.purpose,
      installationId: dispatched.installationId,
      repository: dispatched.target.repository,
      workflow: dispatched.target.path,
      ref: dispatched.ref,
      ...(dispatched.workflowRunId !== undefined
        ? { workflowRunId: dispatched.workflowRunId }
        : {}),
      ...(dispatched.htmlUrl !== undefined ? { htmlUrl: dispatched.htmlUrl } : {}),
    });
    // The attempt may have timed out or been cancelled while GitHub answered: its `cancel`
    // found no dispatch to stop, so the run just started is stopped from here. (The door
    // records no progress for a compensation; it only says whether it still runs.)
    const reported = await door.reportProgress(
      tx,
      job.key,
      {
        detail: `dispatched ${dispatched.target.path.split("/").at(-1) ?? ""} on ${dispatched.ref}`,
        ...(dispatched.htmlUrl !== undefined ? { url: dispatched.htmlUrl } : {}),
      },
      { now },
    );
    if (!reported.current) {
      const marked = await markCancelRequested(tx, job.key);
      if (marked?.workflowRunId !== undefined)
        await scheduleTasks(tx, [cancelWorkflowRunTask(job.key, "cancel", new Date(now))]);
      return;
    }
    await appendLogs(tx, [
      {
        runId: job.runId,
        step: job.step,
        attempt: job.attempt,
        stream: "system",
        chunk:
          `${job.purpose === "compensation" ? "compensating: " : ""}dispatched ` +
          `${dispatched.target.repository}/${dispatched.target.path} on ${dispatched.ref}` +
          (dispatched.htmlUrl ? `: ${dispatched.htmlUrl}\n` : " (its run is found by its title)\n"),
        at: now,
      },
    ]);
  });
}

interface Dispatched {
  target: WorkflowTarget;
  installationId: number;
  ref: string;
  workflowRunId?: number;
  htmlUrl?: string;
}

async function dispatch(
  app: GitHubApp,
  options: DispatchOptions,
  job: DispatchJob,
  attempt: { repository: string; installationId: number },
): Promise<Dispatched> {
  const spec = asMap(job.spec);
  const target = workflowTarget(
    typeof spec.workflow === "string" ? spec.workflow : "",
    attempt.repository,
  );
  if (target.repository.toLowerCase() !== attempt.repository.toLowerCase())
    await checkCaller(app, attempt.repository, target.repository);
  // A token for the workflow's repository only, with what dispatching needs (DESIGN.md rule 12).
  const github = await app.github.forRepository(
    attempt.installationId,
    target.repository,
    WORKFLOW_TOKEN_PERMISSIONS,
  );
  const [owner = "", repo = ""] = target.repository.split("/");
  const where = `${target.repository}/${target.path}`;
  const ref =
    typeof spec.ref === "string" && spec.ref !== ""
      ? spec.ref
      : await defaultBranch(github, owner, repo, target.repository);
  const file = readWorkflowFile(
    await readFile(github, owner, repo, target.path, ref, where),
    where,
  );
  if (!file.dispatchable)
    throw new WorkflowStepError(
      `${where} cannot be dispatched: add \`on: workflow_dispatch\` (with the inputs the step passes)`,
    );

  const given = asMap(spec.with);
  const inputs: Record<string, string> = {};
  for (const [name, value] of Object.entries(given))
    inputs[name] = typeof value === "string" ? value : JSON.stringify(value);
  const undeclared = Object.keys(inputs).filter((name) => !file.inputs.has(name));
  if (undeclared.length > 0)
    throw new WorkflowStepError(
      `${where} does not declare the input${undeclared.length > 1 ? "s" : ""} ` +
        `${undeclared.map((name) => `\`${name}\``).join(", ")} under on.workflow_dispatch.inputs`,
    );
  const missing = [...file.inputs]
    .filter(([name, input]) => input.required && !input.hasDefault && name !== BATON_INPUT)
    .map(([name]) => name)
    .filter((name) => inputs[name] === undefined);
  if (missing.length > 0)
    throw new WorkflowStepError(
      `${where} requires the input${missing.length > 1 ? "s" : ""} ` +
        `${missing.map((name) => `\`${name}\``).join(", ")}: give ${missing.length > 1 ? "them" : "it"} in the step's \`with\``,
    );
  const carriesToken = file.inputs.has(BATON_INPUT);
  if (carriesToken) {
    const key = await stepTokenKey(app.store, options.secretKey);
    const exp =
      job.deadline !== undefined
        ? Math.ceil(job.deadline / 1000) + TOKEN_GRACE_SECONDS
        : Math.ceil(app.now() / 1000) + TOKEN_DEFAULT_SECONDS;
    inputs[BATON_INPUT] = signStepToken(key, {
      ...(app.publicUrl !== undefined ? { url: app.publicUrl } : {}),
      run: job.runId,
      step: job.step,
      attempt: job.attempt,
      exp,
      ...(job.purpose === "compensation" ? { compensation: true as const } : {}),
    });
  }
  if (Object.keys(inputs).length > MAX_DISPATCH_INPUTS)
    throw new WorkflowStepError(
      `${where} would get ${Object.keys(inputs).length} inputs; GitHub takes at most ` +
        `${MAX_DISPATCH_INPUTS}, Baton's \`${BATON_INPUT}\` included: pass fewer in the step's \`with\``,
    );

  const post = (details: boolean) =>
    github.request("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", {
      owner,
      repo,
      workflow_id: target.path.split("/").at(-1) ?? target.path,
      ref,
      inputs,
      ...(details ? { return_run_details: true } : {}),
    });
  let response: { status: number; data: unknown };
  try {
    response = await post(true).catch((error: unknown) => {
      // GitHub Enterprise Server up to 3.20 refuses the key it does not know: ask again
      // without it (and find the run by its title).
      if (
        (error as { status?: number }).status === 422 &&
        /return_run_details/.test(messageOf(error))
      )
        return post(false);
      throw error;
    });
  } catch (error: unknown) {
    const status = (error as { status?: number }).status;
    if (status === 404)
      throw new WorkflowStepError(
        `GitHub cannot find ${where} on ${ref}, or the app may not dispatch it ` +
          "(is the app installed there, with Actions: write?)",
      );
    if (status === 422)
      throw new WorkflowStepError(
        `GitHub refused to dispatch ${where} on ${ref}: ${messageOf(error)}`,
      );
    throw error;
  }
  const details = asMap(response.data as Json);
  if (response.status === 200 && typeof details.workflow_run_id === "number") {
    return {
      target,
      installationId: attempt.installationId,
      ref,
      workflowRunId: details.workflow_run_id,
      ...(typeof details.html_url === "string" ? { htmlUrl: details.html_url } : {}),
    };
  }
  // 204: GitHub Enterprise Server gives no run details. The run is found by its title,
  // which must carry the step token; without it Baton could only guess between runs.
  if (!carriesToken || !file.runNameCarriesToken)
    throw new WorkflowStepError(
      `GitHub dispatched ${where} without saying which run it started (GitHub Enterprise ` +
        `Server), and its runs cannot be told apart: declare the \`${BATON_INPUT}\` input and ` +
        "set `run-name: ${{ inputs.baton }}` (with any text around it) in the workflow",
    );
  return { target, installationId: attempt.installationId, ref };
}

/** A flow may dispatch another repository's workflows only if that repository says so. */
async function checkCaller(app: GitHubApp, caller: string, target: string): Promise<void> {
  const settings = (await getRepository(app.store, target))?.settings;
  const [owner = ""] = caller.split("/");
  const allowed = (settings?.workflows.callers ?? []).some(
    (pattern) =>
      pattern.toLowerCase() === caller.toLowerCase() ||
      pattern.toLowerCase() === `${owner.toLowerCase()}/*`,
  );
  if (!allowed)
    throw new WorkflowStepError(
      `${target} does not let ${caller}'s flows dispatch its workflows: add ` +
        `\`workflows: { callers: [${caller}] }\` to ${target}'s .github/baton.yml on its default branch`,
    );
}

async function defaultBranch(
  github: Octokit,
  owner: string,
  repo: string,
  repository: string,
): Promise<string> {
  try {
    const { data } = await github.request("GET /repos/{owner}/{repo}", { owner, repo });
    return data.default_branch;
  } catch (error: unknown) {
    if ((error as { status?: number }).status === 404)
      throw new WorkflowStepError(`the app cannot see ${repository}: is it installed there?`);
    throw error;
  }
}

async function readFile(
  github: Octokit,
  owner: string,
  repo: string,
  path: string,
  ref: string,
  where: string,
): Promise<string> {
  try {
    const { data } = await github.request("GET /repos/{owner}/{repo}/contents/{path}", {
      owner,
      repo,
      path,
      ref,
    });
    if (Array.isArray(data) || data.type !== "file" || !("content" in data))
      throw new WorkflowStepError(`${where} is not a file`);
    return Buffer.from(data.content, "base64").toString("utf8");
  } catch (error: unknown) {
    if ((error as { status?: number }).status === 404)
      throw new WorkflowStepError(`there is no workflow ${where} on ${ref}`);
    throw error;
  }
}

/** The attempt's failure message for errors of the step itself; undefined for transient ones. */
function stepFailure(error: unknown): string | undefined {
  if (error instanceof WorkflowStepError) return error.message;
  const status = (error as { status?: number }).status;
  // Rate limits pass; other 4xx answers (a 403 for a missing permission) will not change.
  const rateLimited = status === 429 || (status === 403 && /rate limit/i.test(messageOf(error)));
  if (status !== undefined && status >= 400 && status < 500 && !rateLimited)
    return `GitHub refused the dispatch (${status}): ${messageOf(error)}`;
  return undefined;
}

function messageOf(error: unknown): string {
  const response = (error as { response?: { data?: { message?: unknown } } }).response;
  const message = response?.data?.message;
  return typeof message === "string"
    ? message
    : error instanceof Error
      ? error.message
      : String(error);
}

function asMap(value: Json | undefined): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}
