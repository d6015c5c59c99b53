/**
 * Pure judgements the runtime's door makes on a run's state before it hands an input to
 * `decide`: whether a report is about the attempt (or compensation) that runs now, and
 * whether a withdrawal would withdraw anything. Both read only the state, so they are
 * the engine's: the same rules everywhere (runtime, runners, workflows, approvals).
 */
import type { ApprovalEvaluated, ApprovalVia, Millis, NewRunEvent, StepState } from "./types.js";

/** Whatever a step's status is made of: a StepState, or the steps table's row. */
export type StepFacts = Pick<StepState, "status" | "attempt"> &
  Partial<Pick<StepState, "compensation">>;

/** An attempt, or the compensation of one (its effect key ends in `/compensate`). */
export interface AttemptRef {
  runId: string;
  step: string;
  attempt: number;
  compensation: boolean;
}

/**
 * Whether a report about `target` is about what runs now: the step's running attempt, or
 * its running compensation. A late report (a timeout or a cancel ended the attempt, a
 * retry started a new one, the same report came twice) is not.
 */
export function isCurrent(step: StepFacts | undefined, target: AttemptRef): boolean {
  if (!step) return false;
  if (target.compensation) return step.compensation === "running";
  return step.status === "running" && step.attempt === target.attempt;
}

/** What an executor (the local shell, a runner, a workflow run, a sub-run) says happened. */
export interface ReportedOutcome {
  outcome: "success" | "failure";
  outputs: Record<string, string>;
  error?: string;
  /** (Default: true) */
  retryable?: boolean;
}

/** The one mapping from a reported outcome to the run's input event. */
export function outcomeEvent(
  target: AttemptRef,
  outcome: ReportedOutcome,
  at: Millis,
): NewRunEvent {
  if (target.compensation)
    return {
      type: "compensation.finished",
      at,
      step: target.step,
      outcome: outcome.outcome,
      ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    };
  return {
    type: "attempt.finished",
    at,
    step: target.step,
    attempt: target.attempt,
    outcome: outcome.outcome,
    outputs: outcome.outputs,
    ...(outcome.error !== undefined ? { error: outcome.error } : {}),
    ...(outcome.retryable !== undefined ? { retryable: outcome.retryable } : {}),
  };
}

/** Which counted approvals a withdrawal takes back (see `ApprovalWithdrawn`). */
export interface WithdrawalFilter {
  user?: string;
  via?: ApprovalVia;
  keepCommit?: string;
}

/** Whether `approval` is one that `filter` withdraws (the rule replay applies to the event). */
export function withdraws(filter: WithdrawalFilter, approval: ApprovalEvaluated): boolean {
  return (
    approval.counted &&
    approval.decision === "approve" &&
    approval.withdrawn === undefined &&
    (filter.user === undefined || approval.user.toLowerCase() === filter.user.toLowerCase()) &&
    (filter.via === undefined || approval.via === filter.via) &&
    (filter.keepCommit === undefined || approval.commit !== filter.keepCommit)
  );
}

/**
 * Whether a withdrawal would change the step: it waits and some counted approval matches.
 * Otherwise (a dismissal of an uncounted review, a push nobody approved) it is not worth
 * an event.
 */
export function withdrawalChangesStep(
  step: StepState | undefined,
  filter: WithdrawalFilter,
): boolean {
  return (
    step?.status === "waiting" && step.approvals.some((approval) => withdraws(filter, approval))
  );
}
