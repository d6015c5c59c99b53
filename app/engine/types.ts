/**
 * Glossary — the words every part of Baton shares.
 *
 * - flow: a file `.github/flows/<name>.yml` (or a local file). Its name is the file name.
 * - version (flow version): a flow's parsed definition at one commit SHA, or of one local
 *   file's content hash. Immutable; a run is pinned to one version for its whole life.
 * - run: one execution of one flow version. It has attempts: a rerun from a failed step is
 *   a new attempt of the same run.
 * - step: a node of the flow's graph (`steps.<id>`).
 * - attempt: one try of a step (retries make more), numbered from 1 within the run.
 * - event: an entry of a run's append-only history. A run's state is a function of its flow
 *   version and its events, nothing else (`replay`).
 * - task: a unit of work for the runtime (advance a run, execute a step attempt), claimed
 *   from Postgres with `FOR UPDATE SKIP LOCKED`.
 * - runner: a process that executes `run` and `agent` steps; the in-process local
 *   executor is one, self-hosted runners are others.
 *
 * The engine is pure: `decide(flow, events, now)` returns what should happen next. It does
 * no I/O, reads no clock and draws no random numbers, so a run can be replayed, recovered
 * after a crash, and tested with properties.
 */
import type { FlowDefinition, PermissionLevel, StepKind } from "../../flows-schema/schema.js";

export type { FlowDefinition, StepKind };

/** Milliseconds since the Unix epoch. The runtime supplies it; the engine never reads a clock. */
export type Millis = number;

/** JSON values, as stored in Postgres `jsonb`. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What a finished step came to, as `steps.<id>.result` reports it (as in GitHub Actions). */
export type StepResult = "success" | "failure" | "cancelled" | "skipped";

/** Where a step is now. `waiting` covers approvals, signals and timers. */
export type StepStatus =
  | "pending" // its needs have not all finished
  | "running" // an attempt is executing
  | "waiting" // an approval, a signal or a timer
  | "retrying" // an attempt failed; the next one is scheduled (`retryAt`)
  | "done"; // finished with `result`

/** Where a run is now. Terminal statuses: success, failure, cancelled. */
export type RunStatus =
  | "queued" // waiting for its concurrency group to admit it
  | "running"
  | "compensating" // failing or cancelled; undoing completed steps in reverse order
  | "success"
  | "failure"
  | "cancelled";

export const TERMINAL_RUN_STATUSES: readonly RunStatus[] = ["success", "failure", "cancelled"];

/** Facts about the run that expressions see as `run.*`; fixed when the run is created. */
export interface RunMeta {
  id: string;
  number: number;
  /** The commit the run is pinned to, or the local file's content hash. */
  sha: string;
  /** `owner/repo`, or `local` for a local file. */
  repository: string;
  url?: string;
  /** Who started the run (a GitHub login, or the local user). Used for self-approval. */
  actor: string;
}

/** What started a run: `trigger.event` and `trigger.payload` in expressions. */
export interface Trigger {
  event: string; // "manual" | "schedule" | "webhook" | "flow" | a GitHub event name
  payload: Json;
}

/**
 * What the caller knows about someone who approves or rejects, looked up at the moment of
 * the decision (GitHub's permission API, team membership, CODEOWNERS). The engine applies
 * the flow's policy to these facts; it never looks anything up itself.
 */
export interface ApproverFacts {
  permission: PermissionLevel | "none";
  /** Teams (`org/slug`) of the policy that the person belongs to. */
  teams: string[];
  /** Whether CODEOWNERS makes the person an owner of the policy's paths. */
  codeowner: boolean;
  /** For reviews: whether the review was made on the head commit the run is about. */
  stale?: boolean;
  /**
   * The pull request's head commit the decision was made at (a review's `commit_id`, or
   * the head when a button was clicked or a comment written), when the approval is about a
   * pull request. `approval.withdrawn` with `keepCommit` withdraws approvals of other commits.
   */
  commit?: string;
}

// ---------------------------------------------------------------------------------------
// Events. Two families share one history:
//  - inputs: what happened outside the engine (a run was created, a step attempt finished,
//    a signal arrived, someone approved). The runtime appends them.
//  - decisions: what the engine decided (start an attempt, skip a step, finish the run).
//    The runtime appends what `decide` returns, so nothing is decided twice.
// Inputs may arrive late, twice, or for an attempt that is no longer current; the engine
// ignores those, so duplicates and stale deliveries are harmless.
// ---------------------------------------------------------------------------------------

interface EventBase {
  /** Position in the run's history, from 1. */
  seq: number;
  at: Millis;
}

// Inputs

export interface RunCreated extends EventBase {
  type: "run.created";
  meta: RunMeta;
  inputs: Record<string, Json>;
  trigger: Trigger;
  /** The evaluated concurrency group key, when the flow has one. */
  concurrencyGroup?: string;
  /** For sub-runs: the parent step this run is the result of. */
  parent?: { runId: string; step: string; attempt: number };
}

/** The run's concurrency group let it start (immediately, or after waiting in the queue). */
export interface RunAdmitted extends EventBase {
  type: "run.admitted";
}

export interface RunCancelRequested extends EventBase {
  type: "run.cancel-requested";
  by: string;
  reason: string;
}

/** Rerun a finished run, keeping the results of steps that succeeded before `fromStep`. */
export interface RunRetryRequested extends EventBase {
  type: "run.retry-requested";
  by: string;
  /** Rerun this step and everything after it. (Default: every step that did not succeed.) */
  fromStep?: string;
}

/** An executor reports an attempt's outcome (a shell exit, a workflow conclusion, a sub-run's end). */
export interface AttemptFinished extends EventBase {
  type: "attempt.finished";
  step: string;
  attempt: number;
  outcome: "success" | "failure";
  outputs: Record<string, string>;
  /** For failures: what went wrong, for people. */
  error?: string;
  /** Failures that no retry can fix (a step kind that cannot run here, a bad request). */
  retryable?: boolean;
}

/** Optional progress from an executor (queued on Actions, a link to the run's page). */
export interface AttemptProgress extends EventBase {
  type: "attempt.progress";
  step: string;
  attempt: number;
  detail: string;
  url?: string;
}

export interface SignalReceived extends EventBase {
  type: "signal.received";
  name: string;
  payload: Json;
  by: string;
}

/** How an approval was given. */
export type ApprovalVia = "review" | "check-run" | "comment" | "cli";

export interface ApprovalSubmitted extends EventBase {
  type: "approval.submitted";
  step: string;
  user: string;
  decision: "approve" | "reject";
  via: ApprovalVia;
  comment?: string;
  facts: ApproverFacts;
}

/**
 * Counted approvals of a waiting step no longer count: a review was dismissed (`user`,
 * `via: review`), or the pull request got a new head (`keepCommit`: approvals given at
 * that commit stay, every other one is withdrawn). Approvals only: a counted rejection has
 * already decided the step. Recorded whatever the step's status (the audit trail); it
 * changes nothing once the step has stopped waiting.
 */
export interface ApprovalWithdrawn extends EventBase {
  type: "approval.withdrawn";
  step: string;
  /** Whose approvals. (Default: everyone's) */
  user?: string;
  /** Only approvals given this way. (Default: any way) */
  via?: ApprovalVia;
  /** Approvals given at this commit (`facts.commit`) are kept. */
  keepCommit?: string;
  /** Why, for people: "review dismissed by octocat", "new commits pushed (abc1234)". */
  reason: string;
  /** Who caused it (the dismisser, the pusher). */
  by: string;
}

/** A compensating action has finished (compensations are not retried by the engine). */
export interface CompensationFinished extends EventBase {
  type: "compensation.finished";
  step: string;
  outcome: "success" | "failure";
  error?: string;
}

// Decisions

export interface AttemptStarted extends EventBase {
  type: "attempt.started";
  step: string;
  attempt: number;
  /** The attempt fails with a timeout if it has not finished by then. */
  deadline?: Millis;
}

export interface StepWaiting extends EventBase {
  type: "step.waiting";
  step: string;
  attempt: number;
  /** What it waits for, for people: "approval (1 of 2)", "signal smoke-passed", "until …". */
  reason: string;
  /** When the wait ends by itself (timer, timeout), if ever. */
  until?: Millis;
  /** Set on the second `step.waiting` of an approval: the approvers were reminded. */
  reminder?: boolean;
}

export interface AttemptTimedOut extends EventBase {
  type: "attempt.timed-out";
  step: string;
  attempt: number;
}

export interface RetryScheduled extends EventBase {
  type: "retry.scheduled";
  step: string;
  /** The attempt that will run. */
  attempt: number;
  retryAt: Millis;
  /** Why the previous attempt failed, for people. */
  reason?: string;
}

/** An approval was counted, or refused with the reason (audit trail). */
export interface ApprovalEvaluated extends EventBase {
  type: "approval.evaluated";
  step: string;
  user: string;
  decision: "approve" | "reject";
  counted: boolean;
  reason?: string;
  /** The submission's comment, if any. */
  comment?: string;
  /** How it was given (absent in histories written before withdrawals existed). */
  via?: ApprovalVia;
  /** The submission's `facts.commit`, if any. */
  commit?: string;
  /**
   * In the state only (never in an event): why a counted approval no longer counts, set by
   * `approval.withdrawn`.
   */
  withdrawn?: string;
}

export interface StepFinished extends EventBase {
  type: "step.finished";
  step: string;
  result: StepResult;
  outputs: Record<string, string>;
  /** Why, for people: "skipped: build failed", "timed out after 30m", an error message. */
  reason?: string;
  /** For `wait: { signal }` steps: the `seq` of the `signal.received` event the step consumed. */
  signal?: number;
}

export interface CompensationStarted extends EventBase {
  type: "compensation.started";
  step: string;
}

/**
 * The run passed its `timeout` (counted from admission, or from the rerun): its running
 * steps are cancelled and it ends as a failure.
 */
export interface RunTimedOut extends EventBase {
  type: "run.timed-out";
  /** The flow's timeout as written, e.g. "2d". */
  after: string;
}

export interface RunFinished extends EventBase {
  type: "run.finished";
  status: "success" | "failure" | "cancelled";
  outputs: Record<string, string>;
  reason?: string;
}

/** A rerun began: the run's attempt number went up and the named steps are pending again. */
export interface RunRetried extends EventBase {
  type: "run.retried";
  runAttempt: number;
  steps: string[];
}

export type InputEvent =
  | RunCreated
  | RunAdmitted
  | RunCancelRequested
  | RunRetryRequested
  | AttemptFinished
  | AttemptProgress
  | SignalReceived
  | ApprovalSubmitted
  | ApprovalWithdrawn
  | CompensationFinished;

export type DecisionEvent =
  | AttemptStarted
  | StepWaiting
  | AttemptTimedOut
  | RetryScheduled
  | ApprovalEvaluated
  | StepFinished
  | CompensationStarted
  | RunTimedOut
  | RunFinished
  | RunRetried;

export type RunEvent = InputEvent | DecisionEvent;
export type RunEventType = RunEvent["type"];

/** An event before the store numbers it. */
export type NewRunEvent = RunEvent extends infer E
  ? E extends RunEvent
    ? Omit<E, "seq">
    : never
  : never;

// ---------------------------------------------------------------------------------------
// Effects: what the runtime must do in the world after committing a decision. Each carries
// an idempotency key so that an effect repeated after a crash is recognised.
// ---------------------------------------------------------------------------------------

/** `${runId}/${step}/${attempt}`: the same for every retry of the same effect. */
export type IdempotencyKey = string;

/** A step attempt, with everything evaluated, ready for an executor. */
export interface ExecuteStep {
  type: "execute";
  key: IdempotencyKey;
  step: string;
  attempt: number;
  kind: "workflow" | "run" | "agent" | "github";
  /** The step's definition with every expression expanded. */
  spec: Json;
  /** Environment: the flow's `env`, the step's `env` and `with`, expanded. */
  env: Record<string, string>;
  deadline?: Millis;
}

export interface CancelStep {
  type: "cancel";
  /** The key of the attempt to stop (the same as its `execute`'s key). */
  key: IdempotencyKey;
  step: string;
  attempt: number;
}

export interface StartSubRun {
  type: "start-sub-run";
  key: IdempotencyKey;
  step: string;
  attempt: number;
  flow: string;
  inputs: Record<string, Json>;
}

export interface CancelSubRun {
  type: "cancel-sub-run";
  key: IdempotencyKey;
  step: string;
  attempt: number;
}

export interface RequestApproval {
  type: "request-approval";
  /** `${runId}/${step}/${attempt}`, or `${runId}/${step}/${attempt}/reminder` for the reminder. */
  key: IdempotencyKey;
  step: string;
  attempt: number;
  /** A reminder (the approval's `reminder` before its timeout) rather than the first request. */
  reminder?: boolean;
  /** The approval's `pull-request`, expanded, when the flow names one. */
  pullRequest?: string;
}

export interface Compensate {
  type: "compensate";
  /** `${runId}/${step}/${attempt}/compensate`, `attempt` being the step attempt that succeeded. */
  key: IdempotencyKey;
  step: string;
  kind: "workflow" | "run" | "github";
  spec: Json;
  env: Record<string, string>;
}

/** The run is over: free its concurrency group, tell a parent run, update views. */
export interface RunEnded {
  type: "run-ended";
  /** `${runId}/run-ended/${runAttempt}`: a rerun ends again, under a new key. Always set by the engine. */
  key?: IdempotencyKey;
  status: "success" | "failure" | "cancelled";
  outputs: Record<string, string>;
  parent?: { runId: string; step: string; attempt: number };
  concurrencyGroup?: string;
}

export type Effect =
  ExecuteStep | CancelStep | StartSubRun | CancelSubRun | RequestApproval | Compensate | RunEnded;

// ---------------------------------------------------------------------------------------
// State: a projection of the events, for queries and for views.
// ---------------------------------------------------------------------------------------

export interface StepState {
  id: string;
  status: StepStatus;
  result?: StepResult;
  /** The current (or last) attempt, from 1; 0 before the first. */
  attempt: number;
  outputs: Record<string, string>;
  startedAt?: Millis;
  finishedAt?: Millis;
  retryAt?: Millis;
  /** What the step waits for, or why it failed or was skipped. */
  reason?: string;
  approvals: ApprovalEvaluated[];
  compensation?: "running" | "success" | "failure";
}

export interface RunState {
  status: RunStatus;
  meta: RunMeta;
  inputs: Record<string, Json>;
  trigger: Trigger;
  /** From 1; a rerun adds one. */
  runAttempt: number;
  steps: Record<string, StepState>;
  outputs: Record<string, string>;
  createdAt: Millis;
  finishedAt?: Millis;
  reason?: string;
  concurrencyGroup?: string;
  parent?: { runId: string; step: string; attempt: number };
}

export interface Decision {
  /** The state after the history and the new events. */
  state: RunState;
  /** Decisions to append, in order, stamped `at: now`. */
  events: NewRunEvent[];
  /** What to do once those events are committed. */
  effects: Effect[];
  /** The next moment at which `decide` must be called again without any new input (timers). */
  wakeAt?: Millis;
}
