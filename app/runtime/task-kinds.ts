/**
 * The kinds of task the runtime executes, and how each effect of a decision becomes a
 * task (inserted in the decision's transaction: the transactional outbox).
 *
 * - advance:          call `decide` again for a run (a timer: retry delay, wait, timeout).
 * - execute:          run one step attempt through an executor; its outcome is recorded
 *                     together with the next decision, in one transaction.
 * - cancel:           stop a running attempt, wherever it runs (a notification to all processes).
 * - start-sub-run:    create the child run of a `flow` step.
 * - cancel-sub-run:   ask that child run to cancel.
 * - compensate:       run a step's `compensate` action.
 * - request-approval: tell approvers (a no-op in local mode: they use `baton approve`).
 * - run-ended:        free the run's concurrency group (admit the next queued run) and
 *                     report to the parent run; not enqueued when the run has neither.
 * - sync-check-run:   show a GitHub run's change on its check run. Enqueued by every
 *                     change of a run that has a GitHub place (`Run.github`); one pending
 *                     per run, so changes made while it waits are shown together. Its
 *                     handler is the GitHub app's (app/github); the runtime has none.
 *
 * Every task key is unique while the task exists, so repeating a decision's effects never
 * doubles the work.
 */
import type { Effect, Millis } from "../engine/types.js";
import type { NewTask } from "../store/model.js";

export const TASK_KINDS = [
  "advance",
  "execute",
  "cancel",
  "start-sub-run",
  "cancel-sub-run",
  "compensate",
  "request-approval",
  "run-ended",
] as const;
export type TaskKind = (typeof TASK_KINDS)[number];

export function tasksForEffects(
  runId: string,
  runAttempt: number,
  effects: readonly Effect[],
): NewTask[] {
  return effects.flatMap((effect): NewTask[] => {
    const task = taskForEffect(runId, runAttempt, effect);
    return task ? [task] : [];
  });
}

function taskForEffect(runId: string, runAttempt: number, effect: Effect): NewTask | undefined {
  const payload = effect as unknown as NewTask["payload"];
  switch (effect.type) {
    case "execute":
      return { kind: "execute", runId, key: effect.key, payload };
    case "cancel":
      return { kind: "cancel", runId, key: `${effect.key}/cancel`, payload };
    case "start-sub-run":
      return { kind: "start-sub-run", runId, key: effect.key, payload };
    case "cancel-sub-run":
      return { kind: "cancel-sub-run", runId, key: `${effect.key}/cancel-sub-run`, payload };
    case "compensate":
      return { kind: "compensate", runId, key: effect.key, payload };
    case "request-approval":
      return { kind: "request-approval", runId, key: `${effect.key}/request-approval`, payload };
    case "run-ended":
      // Nothing to do without a concurrency group to free or a parent to report to:
      // no task (it would cost a claim and a transaction per run for nothing).
      if (effect.concurrencyGroup === undefined && effect.parent === undefined) return undefined;
      return { kind: "run-ended", runId, key: `${runId}/run-ended/${runAttempt}`, payload };
  }
}

/** Show a GitHub run's latest state on its check run (coalesced: one pending per run). */
export const SYNC_CHECK_RUN = "sync-check-run";
export function syncCheckRunTask(runId: string, now: Millis): NewTask {
  return {
    kind: SYNC_CHECK_RUN,
    runId,
    key: `${runId}/${SYNC_CHECK_RUN}`,
    runAt: new Date(now),
    payload: {},
  };
}

/** A timer: decide again for `runId` at `at`. One per run and moment. */
export function wakeTask(runId: string, at: Millis): NewTask {
  return { kind: "advance", runId, key: `${runId}/wake/${at}`, runAt: new Date(at), payload: {} };
}
