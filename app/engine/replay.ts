/**
 * The fold: a run's history, event by event, into its state. `decide` applies its own
 * decisions through the same `apply`, so `replay(flow, history + decision.events)` is
 * `decision.state` by construction.
 *
 * Beside the public `RunState`, the fold keeps bookkeeping that only `decide` needs
 * (deadlines, reported outcomes not yet acted on, buffered signals, pending approval
 * submissions). All of it is derived from events, none of it from the clock.
 */
import type {
  AttemptFinished,
  ApprovalSubmitted,
  FlowDefinition,
  Json,
  Millis,
  RunEvent,
  RunRetryRequested,
  RunState,
  StepState,
} from "./types.js";

export interface StepTrack {
  /** Attempts made before the current run attempt (a rerun counts its retries from here). */
  baseAttempt: number;
  deadline?: Millis;
  /** When a `wait` timer ends, or an approval/signal wait times out. */
  waitUntil?: Millis;
  waiting: boolean;
  reminderSent: boolean;
  /** The current attempt's reported outcome, not yet acted on. */
  reported?: AttemptFinished;
  /** The current attempt timed out (`attempt.timed-out`), not yet acted on. */
  timedOut: boolean;
  /** Submissions not yet judged (`approval.evaluated` judges the first). */
  submissions: ApprovalSubmitted[];
  /** An `approval.withdrawn` changed the count: `decide` shows the new progress. */
  progressChanged: boolean;
  /** `seq` of the `step.finished` that finished the step: the order of completion. */
  finishedSeq?: number;
  /**
   * The current attempt started while the run was being cancelled (its `if` used always()
   * or cancelled()): the cancellation does not cancel it.
   */
  startedWhileCancelling: boolean;
}

export interface BufferedSignal {
  seq: number;
  name: string;
  payload: Json;
  consumed: boolean;
}

export interface Fold {
  state: RunState;
  tracks: Record<string, StepTrack>;
  signals: BufferedSignal[];
  /** The run's timeout counts from here: admission, or the start of a rerun. */
  startedAt?: Millis;
  cancel?: { by: string; reason: string };
  timedOut?: string;
  retryRequest?: RunRetryRequested;
  lastSeq: number;
}

export class HistoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HistoryError";
  }
}

function freshStep(id: string, attempt: number): StepState {
  return { id, status: "pending", attempt, outputs: {}, approvals: [] };
}

function freshTrack(baseAttempt: number): StepTrack {
  return {
    baseAttempt,
    waiting: false,
    reminderSent: false,
    timedOut: false,
    submissions: [],
    progressChanged: false,
    startedWhileCancelling: false,
  };
}

/** The fold of the first event, which must be `run.created`. */
function start(flow: FlowDefinition, event: RunEvent): Fold {
  if (event.type !== "run.created") {
    throw new HistoryError(`a run's history starts with run.created, not ${event.type}`);
  }
  const steps: Record<string, StepState> = {};
  const tracks: Record<string, StepTrack> = {};
  for (const id of Object.keys(flow.steps)) {
    steps[id] = freshStep(id, 0);
    tracks[id] = freshTrack(0);
  }
  const state: RunState = {
    status: "queued",
    meta: event.meta,
    inputs: event.inputs,
    trigger: event.trigger,
    runAttempt: 1,
    steps,
    outputs: {},
    createdAt: event.at,
  };
  if (event.concurrencyGroup !== undefined) state.concurrencyGroup = event.concurrencyGroup;
  if (event.parent !== undefined) state.parent = event.parent;
  return { state, tracks, signals: [], lastSeq: event.seq };
}

export function isTerminal(fold: Fold): boolean {
  const { status } = fold.state;
  return status === "success" || status === "failure" || status === "cancelled";
}

/**
 * A fold that `apply` may change without changing `fold`: new top-level records, the
 * steps and tracks shared. `apply` never changes a step, a track or an array in place
 * (it replaces them), so a cached fold stays as it was while its copy moves on (an
 * incremental decision costs what its new events cost, not what the history does).
 */
export function detach(fold: Fold): Fold {
  return {
    ...fold,
    state: { ...fold.state, steps: { ...fold.state.steps } },
    tracks: { ...fold.tracks },
  };
}

/**
 * Applies one event to the fold: to its top-level records in place (see `detach`), to a
 * step's state and track by replacing them. Events that no longer apply are ignored.
 */
export function apply(fold: Fold, event: RunEvent): void {
  fold.lastSeq = Math.max(fold.lastSeq, event.seq);
  const { state } = fold;
  let step: StepState | undefined;
  let track: StepTrack | undefined;
  if ("step" in event) {
    const oldStep = state.steps[event.step];
    const oldTrack = fold.tracks[event.step];
    if (oldStep) state.steps[event.step] = step = { ...oldStep };
    if (oldTrack) fold.tracks[event.step] = track = { ...oldTrack };
  }
  switch (event.type) {
    case "run.created":
      return; // a second run.created is ignored
    case "run.admitted":
      if (state.status === "queued") {
        state.status = "running";
        fold.startedAt = event.at;
      }
      return;
    case "run.cancel-requested":
      if ((state.status === "queued" || state.status === "running") && !fold.cancel) {
        fold.cancel = { by: event.by, reason: event.reason };
      }
      return;
    case "run.retry-requested":
      if (isTerminal(fold) && !fold.retryRequest) fold.retryRequest = event;
      return;
    case "attempt.finished":
      if (
        step &&
        track &&
        step.status === "running" &&
        step.attempt === event.attempt &&
        !track.reported &&
        !track.timedOut
      ) {
        track.reported = event;
      }
      return;
    case "attempt.progress":
      if (step && step.status === "running" && step.attempt === event.attempt)
        step.reason = event.detail;
      return;
    case "signal.received":
      fold.signals = [
        ...fold.signals,
        { seq: event.seq, name: event.name, payload: event.payload, consumed: false },
      ];
      return;
    case "approval.submitted":
      if (track) track.submissions = [...track.submissions, event];
      return;
    case "approval.withdrawn":
      if (!step || !track || step.status !== "waiting") return;
      // Copies, not the events themselves: the state must never change the history.
      step.approvals = step.approvals.map((approval) => {
        const matches =
          approval.counted &&
          approval.decision === "approve" &&
          approval.withdrawn === undefined &&
          (event.user === undefined || approval.user.toLowerCase() === event.user.toLowerCase()) &&
          (event.via === undefined || approval.via === event.via) &&
          (event.keepCommit === undefined || approval.commit !== event.keepCommit);
        if (!matches) return approval;
        track.progressChanged = true;
        return { ...approval, withdrawn: event.reason };
      });
      return;
    case "compensation.finished":
      if (step && step.compensation === "running") step.compensation = event.outcome;
      return;
    case "attempt.started":
      if (!step || !track) return;
      step.status = "running";
      step.attempt = event.attempt;
      step.startedAt = event.at;
      delete step.retryAt;
      delete step.reason;
      step.approvals = [];
      track.deadline = event.deadline;
      track.reported = undefined;
      track.timedOut = false;
      track.waiting = false;
      track.waitUntil = undefined;
      track.reminderSent = false;
      track.progressChanged = false;
      track.startedWhileCancelling = fold.cancel !== undefined || fold.timedOut !== undefined;
      return;
    case "step.waiting":
      if (!step || !track) return;
      step.status = "waiting";
      step.reason = event.reason;
      track.waiting = true;
      track.waitUntil = event.until;
      if (event.reminder === true) track.reminderSent = true;
      track.progressChanged = false;
      return;
    case "attempt.timed-out":
      if (track && step?.attempt === event.attempt) track.timedOut = true;
      return;
    case "retry.scheduled":
      if (!step || !track) return;
      step.status = "retrying";
      step.retryAt = event.retryAt;
      if (event.reason !== undefined) step.reason = event.reason;
      track.reported = undefined;
      track.timedOut = false;
      track.deadline = undefined;
      return;
    case "approval.evaluated":
      if (!step || !track) return;
      track.submissions = track.submissions.slice(1);
      step.approvals = [...step.approvals, event];
      return;
    case "step.finished":
      if (!step || !track) return;
      step.status = "done";
      step.result = event.result;
      step.outputs = event.outputs;
      step.finishedAt = event.at;
      delete step.retryAt;
      if (event.reason !== undefined) step.reason = event.reason;
      else delete step.reason;
      track.finishedSeq = event.seq;
      track.reported = undefined;
      track.waiting = false;
      track.deadline = undefined;
      track.waitUntil = undefined;
      if (event.signal !== undefined) {
        fold.signals = fold.signals.map((candidate) =>
          candidate.seq === event.signal ? { ...candidate, consumed: true } : candidate,
        );
      }
      return;
    case "compensation.started":
      if (step) step.compensation = "running";
      state.status = "compensating";
      return;
    case "run.timed-out":
      fold.timedOut = event.after;
      return;
    case "run.finished":
      state.status = event.status;
      state.outputs = event.outputs;
      state.finishedAt = event.at;
      if (event.reason !== undefined) state.reason = event.reason;
      return;
    case "run.retried":
      state.runAttempt = event.runAttempt;
      state.status = "running";
      state.outputs = {};
      delete state.finishedAt;
      delete state.reason;
      fold.startedAt = event.at;
      fold.cancel = undefined;
      fold.timedOut = undefined;
      fold.retryRequest = undefined;
      for (const id of event.steps) {
        const old = state.steps[id];
        if (!old) continue;
        state.steps[id] = freshStep(id, old.attempt);
        fold.tracks[id] = freshTrack(old.attempt);
      }
      return;
  }
}

/** Folds a whole history. Events are applied in `seq` order. */
export function fold(flow: FlowDefinition, events: readonly RunEvent[]): Fold {
  const ordered = [...events].sort((a, b) => a.seq - b.seq);
  const first = ordered[0];
  if (!first) throw new HistoryError("a run's history cannot be empty: it starts with run.created");
  const result = start(flow, first);
  for (const event of ordered.slice(1)) apply(result, event);
  return result;
}

/** The run's state after its history. */
export function replay(flow: FlowDefinition, events: readonly RunEvent[]): RunState {
  return fold(flow, events).state;
}
