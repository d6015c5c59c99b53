/**
 * The `sync-check-run` task: show a GitHub run's latest state on its check run.
 *
 * Every change of a run that has a GitHub place enqueues it under the key
 * `${runId}/sync-check-run` (app/runtime/advance-run.ts). The key is unique while the task
 * exists, so changes that arrive while it waits are merged into the one pending task, and
 * a busy run costs one write per pacing slot, not one per change.
 *
 * One sync:
 * 1. render the run (render.ts); if a check run exists and shows exactly that (same hash),
 *    there is nothing to write;
 * 2. take the installation's next write slot (github_write_pacing, shared by every process:
 *    GitHub's secondary rate limits want writes serialised and ≥ 1 s apart); a slot in the
 *    future is kept in the task's payload and the task rescheduled to it (run_at = the
 *    slot): no worker sleeps, so paced syncs hold no slot of the runtime while they wait;
 * 3. back at its slot (rendered again: what changed meanwhile is shown too), write: PATCH the check
 *    run, or create one (a first one, or a successor when the current one is completed with
 *    another conclusion: GitHub never changes a completed check run's status or conclusion);
 *    before creating, look for one a previous attempt created but did not get to store
 *    (it died between GitHub's answer and its commit), and use it instead of a second one;
 * 4. store what was sent, delete the task, and enqueue a new sync if the run changed since
 *    it was read (see `finishSync`).
 *
 * A 403 or 429 with `retry-after` (or an exhausted rate limit) reschedules the task for
 * then and holds every write of the installation until then; other 4xx answers are final
 * (logged, the task dropped: the same request would be refused again); anything else is
 * thrown and the runtime retries with backoff.
 */
import {
  finishTask,
  LeaseLostError,
  type RunDetails,
  RunNotFoundError,
  sha256,
  syncCheckRunTask as newSyncCheckRunTask,
  type TaskContext,
  type TaskHandler,
} from "../../runtime/index.js";
import type { Task } from "../../store/model.js";
import { completeTask, enqueueTasks } from "../../store/tasks.js";
import type { GitHubApp } from "../github-app.js";
import type { Octokit } from "../github-client.js";
import { isFinalRefusal } from "../outbox.js";
import type { CheckRunRecord } from "../../store/check-runs.js";
import {
  deferWrites,
  getCheckRunRecord,
  lockRunLastSeq,
  rescheduleTask,
  saveRendered,
  takeWriteSlot,
} from "../../store/check-runs.js";
import type { RenderedCheckRun } from "./render.js";
import { renderCheckRun } from "./render.js";

export interface SyncOptions {
  /** The least time between two writes to GitHub for one installation, across processes. (Default: 1000 ms) */
  writeIntervalMs?: number;
}

/** What the task's payload may carry between two claims. */
interface SyncPayload {
  /** A write slot this task has taken (ms since the epoch, the database's clock). */
  slotAt?: number;
  /**
   * The task's `attempts` when it was rescheduled to the slot: claimed again with the
   * same count, no claim failed (or died) in between, so the slot is still unused.
   */
  slotAttempts?: number;
}

/** A run as it is now, and what its check run would show. */
interface View {
  details: RunDetails;
  record: CheckRunRecord | undefined;
  rendered: RenderedCheckRun;
  hash: string;
}

export function syncCheckRunHandler(app: GitHubApp, options: SyncOptions = {}): TaskHandler {
  const intervalMs = options.writeIntervalMs ?? 1000;
  return async (ctx, task) => {
    const runId = task.runId;
    const view = runId === undefined ? undefined : await readView(app, runId);
    if (runId === undefined || view === undefined) {
      // The run is gone, or GitHub does not show it: nothing to do.
      await finishTask(ctx, task, async () => {});
      return;
    }
    if (isShown(view)) {
      await finishSync(ctx, task, view, undefined);
      return;
    }
    const github = view.details.run.github as NonNullable<RunDetails["run"]["github"]>;

    // Pacing: one write per slot per installation, across processes. A slot is used once,
    // by the task that took it, at or after its time (the task is claimed by the
    // database's clock, the slot's). A task back late for its slot keeps it and writes at
    // once: taking a new one would push it behind every sync queued since, and under load
    // it could come back late for that one too, and so on (a livelock). A slot that a
    // failed or lost claim may have used is not reused: the task takes a new one.
    const payload = (task.payload ?? {}) as SyncPayload;
    // Back for its slot (claimed at run_at = slotAt): the view above is read now, after it.
    const kept = payload.slotAt !== undefined && payload.slotAttempts === task.attempts;
    if (!kept) {
      const slot = await takeWriteSlot(app.store, github.installationId, intervalMs);
      if (slot.waitMs > 0) {
        // Come back for it: the task's run_at is the slot, and the worker is free meanwhile.
        await app.store.transaction((tx) =>
          rescheduleTask(tx, { id: task.id, workerId: ctx.workerId }, new Date(slot.slotAt), {
            slotAt: slot.slotAt,
            // rescheduleTask gives this claim back: the next one counts the same.
            slotAttempts: task.attempts,
          } satisfies SyncPayload),
        );
        return;
      }
      // The slot is now: this view is written at once.
    }
    const octokit = app.github.installation(github.installationId);
    let written: Written;
    try {
      written = await writeCheckRun(app, octokit, view);
    } catch (error: unknown) {
      const delayMs = rateLimitDelayMs(error);
      if (delayMs !== undefined) {
        const until = new Date(Date.now() + delayMs);
        app.log.warn("GitHub asked Baton to slow down; the check run is updated later", {
          runId,
          installationId: github.installationId,
          retryInMs: delayMs,
        });
        await app.store.transaction(async (tx) => {
          await deferWrites(tx, github.installationId, until);
          await rescheduleTask(
            tx,
            { id: task.id, workerId: ctx.workerId },
            until,
            {},
            `rate limited by GitHub for ${delayMs} ms`,
          );
        });
        return;
      }
      if (isFinalRefusal(error)) {
        app.log.error("GitHub refused a check-run update; not retrying it", {
          runId,
          repository: view.details.run.repository,
          status: (error as { status?: number }).status,
          error,
        });
        await finishTask(ctx, task, async () => {});
        return;
      }
      throw error;
    }
    await finishSync(ctx, task, view, written);
  };
}

/** The run's details and its rendering, or undefined when the run is gone or not GitHub's. */
async function readView(app: GitHubApp, runId: string): Promise<View | undefined> {
  let details: RunDetails;
  try {
    details = await app.service.getRun(runId);
  } catch (error: unknown) {
    if (error instanceof RunNotFoundError) return undefined;
    throw error;
  }
  if (!details.run.github) return undefined;
  const record = await getCheckRunRecord(app.store, runId);
  const rendered = renderCheckRun(details, record?.note !== undefined ? { note: record.note } : {});
  return { details, record, rendered, hash: sha256(JSON.stringify(rendered)) };
}

/** A check run exists and shows exactly this rendering. */
function isShown(view: View): boolean {
  return view.record?.checkRunId !== undefined && view.record.renderedHash === view.hash;
}

interface Written {
  checkRunId: number;
  conclusion: string | undefined;
}

/** One write: update the current check run, or create the run's next one. */
async function writeCheckRun(app: GitHubApp, octokit: Octokit, view: View): Promise<Written> {
  const { details, record, rendered } = view;
  const [owner = "", repo = ""] = details.run.repository.split("/");
  const github = details.run.github as NonNullable<RunDetails["run"]["github"]>;
  const written = { conclusion: rendered.conclusion };
  const body = {
    name: rendered.name,
    external_id: rendered.external_id,
    status: rendered.status,
    ...(rendered.conclusion ? { conclusion: rendered.conclusion } : {}),
    output: rendered.output,
    actions: rendered.actions,
  };
  const current = record?.checkRunId;
  // A completed check run keeps its status and conclusion: show a different one on a new check run.
  const needsNew =
    current === undefined ||
    (record?.conclusion !== undefined && record.conclusion !== rendered.conclusion);
  if (!needsNew) {
    await octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
      owner,
      repo,
      check_run_id: current,
      ...body,
    });
    return { checkRunId: current, ...written };
  }
  // Created by an attempt that died before storing its id? Then that one is the run's.
  const orphan = await findCreatedCheckRun(octokit, {
    owner,
    repo,
    headSha: github.headSha,
    name: rendered.name,
    runId: details.run.id,
    after: current,
  });
  if (orphan) {
    await octokit.request("PATCH /repos/{owner}/{repo}/check-runs/{check_run_id}", {
      owner,
      repo,
      check_run_id: orphan,
      ...body,
    });
    return { checkRunId: orphan, ...written };
  }
  const { data } = await octokit.request("POST /repos/{owner}/{repo}/check-runs", {
    owner,
    repo,
    head_sha: github.headSha,
    started_at: details.run.createdAt.toISOString(),
    ...(app.publicUrl
      ? { details_url: `${app.publicUrl.replace(/\/+$/, "")}/api/runs/${details.run.id}` }
      : {}),
    ...body,
  });
  return { checkRunId: Number(data.id), ...written };
}

/**
 * The newest check run named `name` on `headSha` whose external_id is the run's, created
 * after `after` (the run's previous check run, when this is a successor).
 */
export async function findCreatedCheckRun(
  octokit: Octokit,
  where: {
    owner: string;
    repo: string;
    headSha: string;
    name: string;
    runId: string;
    after?: number;
  },
): Promise<number | undefined> {
  const { data } = await octokit.request("GET /repos/{owner}/{repo}/commits/{ref}/check-runs", {
    owner: where.owner,
    repo: where.repo,
    ref: where.headSha,
    check_name: where.name,
    filter: "all",
    per_page: 100,
  });
  const ids = data.check_runs
    .filter((run) => run.external_id === where.runId && Number(run.id) > (where.after ?? 0))
    .map((run) => Number(run.id));
  return ids.length > 0 ? Math.max(...ids) : undefined;
}

/**
 * Store what was written, delete the task, and, if the run changed after it was read,
 * enqueue the next sync, in one transaction.
 *
 * The race this closes: a change of the run that commits while this sync runs finds the
 * task's key taken and enqueues nothing, trusting the pending task to show it; but this
 * sync read the run before that change. So the transaction first locks the run's row
 * (every change of a run holds that lock from its read to its commit, see advanceRun),
 * then reads last_seq, then deletes the task:
 * - a change that committed before the lock is seen in last_seq (> the seq shown): a new
 *   sync is enqueued here, under the key just freed;
 * - a change that commits after this transaction finds the key free (or the new task)
 *   and enqueues (or merges into) a sync itself.
 * Locking the run before deleting the task also matters: a change holding the run's lock
 * and inserting the key would wait for the task's deletion, which would wait for the
 * run's lock: a deadlock. (Without the runtime's slots, `finishTask` deletes the task
 * first; only handlers called outside a runtime do that.)
 * A note left by a button click (note_seq) is tracked the same way.
 */
async function finishSync(
  ctx: TaskContext,
  task: Task,
  view: View,
  written: Written | undefined,
): Promise<void> {
  const runId = view.details.run.id;
  const shownSeq = view.details.run.lastSeq;
  const shownNoteSeq = view.record?.noteSeq ?? 0;
  await finishTask(
    ctx,
    task,
    async (tx, handoff) => {
      const lastSeq = await lockRunLastSeq(tx, runId);
      if (handoff?.completion) {
        if (!(await completeTask(tx, task.id, ctx.workerId))) throw new LeaseLostError(task.id);
        handoff.completion = undefined;
      }
      if (lastSeq === undefined) return; // the run was deleted meanwhile
      const checkRunId = written?.checkRunId ?? view.record?.checkRunId;
      if (checkRunId !== undefined) {
        await saveRendered(tx, {
          runId,
          checkRunId,
          conclusion: written ? written.conclusion : view.record?.conclusion,
          renderedSeq: shownSeq,
          renderedHash: view.hash,
          renderedNoteSeq: shownNoteSeq,
        });
      }
      const now = await getCheckRunRecord(tx, runId);
      if (lastSeq > shownSeq || (now?.noteSeq ?? 0) > shownNoteSeq)
        await enqueueTasks(tx, [newSyncCheckRunTask(runId, ctx.now())]);
    },
    { foldCompletion: true },
  );
}

/**
 * How long GitHub asked to wait, for a rate-limited answer: `retry-after` on a 403 or 429,
 * or the reset of an exhausted primary limit. Undefined for any other error.
 */
export function rateLimitDelayMs(error: unknown, now = Date.now()): number | undefined {
  const status = (error as { status?: unknown }).status;
  if (status !== 403 && status !== 429) return undefined;
  const headers =
    (error as { response?: { headers?: Record<string, string | number | undefined> } }).response
      ?.headers ?? {};
  const retryAfter = Number(headers["retry-after"]);
  if (headers["retry-after"] !== undefined && Number.isFinite(retryAfter))
    return Math.max(0, retryAfter * 1000);
  if (String(headers["x-ratelimit-remaining"]) === "0") {
    const reset = Number(headers["x-ratelimit-reset"]);
    if (Number.isFinite(reset)) return Math.max(1000, reset * 1000 - now);
  }
  // GitHub's advice for a secondary limit without a header: wait at least a minute.
  const message = error instanceof Error ? error.message : "";
  return status === 429 || /secondary rate limit/i.test(message) ? 60_000 : undefined;
}
