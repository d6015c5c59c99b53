/**
 * `decide`: given a run's history and the time, what happens next. It folds the history,
 * then repeatedly asks "what is the next thing to decide?" and applies each answer to the
 * fold, until nothing is left. Every effect belongs to the decision event that caused it,
 * so an effect is emitted exactly once: a second call on the extended history finds
 * nothing left to decide.
 *
 * Decisions worth knowing (GitHub Actions semantics unless said otherwise):
 * - success() of a step: the run is not being cancelled and no step it needs, transitively,
 *   failed or was cancelled. failure(): some transitive need failed. A skipped need counts
 *   as success. cancelled(): the run is being cancelled (requested, or run timeout).
 * - continue-on-error: the step's result stays `failure` (visible in `steps.x.result`), but
 *   it neither fails the run nor counts as a failure for its dependents' success()/failure()
 *   (in Actions the job's conclusion becomes success). Change `failedForGraph` to revisit.
 * - While a run is being cancelled, pending steps whose `if` holds (only always() or
 *   cancelled() can) still run; the others finish as `cancelled`, not `skipped`.
 * - A reported outcome beats a timeout: if `attempt.finished` is in the history when the
 *   deadline has passed, the reported outcome counts.
 * - A rerun request on a run that has not finished is recorded and ignored, not deferred.
 * - The run timeout counts from admission (queue time excluded), and again from a rerun.
 * - A value never becomes syntax (DESIGN rule 11): the n-th `${{ }}` of a `run` or
 *   `compensate` script becomes `${BATON_EXPR_<n>}` in the script's text, and the value
 *   goes into the effect's env under that name (after the flow's and step's env, so it
 *   wins a clash). The script text is a function of the flow alone. `env`, `with` and
 *   agent prompts are values already and reach executors as data. An effect stored before
 *   this rule (values pasted into `run`) is executed as stored.
 */
import type { ApprovalSpec, Compensation, StepDefinition } from "../../flows-schema/schema.js";
import { judgeSubmission } from "./approval-policy.js";
import {
  DEFAULT_MAX_RETRY_DELAY,
  DEFAULT_RUN_TIMEOUT,
  DEFAULT_STEP_TIMEOUT,
  parseDuration,
} from "./duration.js";
import type { ExpressionScope } from "./evaluate.js";
import { evaluateCondition, expandDeep, expandScript, expandTemplate } from "./evaluate.js";
import { needsOf, stepKind, transitiveNeeds, withDependents } from "./graph.js";
import type { Fold } from "./replay.js";
import { apply, fold as foldHistory, isTerminal } from "./replay.js";
import type {
  ApprovalEvaluated,
  Decision,
  Effect,
  FlowDefinition,
  Json,
  Millis,
  NewRunEvent,
  RunEvent,
  StepResult,
  StepState,
} from "./types.js";

/** One step of deciding: events to append (in order) and the effects they cause. */
interface Batch {
  events: NewRunEvent[];
  effects: Effect[];
}

/** A safety net against a bug looping forever; a run of 1,000 steps needs far fewer. */
const MAX_DECISIONS = 100_000;

export function decide(flow: FlowDefinition, events: readonly RunEvent[], now: Millis): Decision {
  return decideOn(flow, foldHistory(flow, events), now);
}

/**
 * `decide` on a history already folded: `decideOn(flow, fold(flow, events), now)` is
 * `decide(flow, events, now)`. The fold becomes the decision's (it is changed: pass a
 * `detach`ed copy to keep it). The runtime keeps each run's fold between decisions, so a
 * decision does not fold the whole history again.
 */
export function decideOn(flow: FlowDefinition, current: Fold, now: Millis): Decision {
  const out: NewRunEvent[] = [];
  const effects: Effect[] = [];
  for (let round = 0; ; round += 1) {
    if (round > MAX_DECISIONS) throw new Error("engine bug: decide did not reach a fixpoint");
    const batch = next(flow, current, now);
    if (!batch) break;
    for (const event of batch.events) {
      const numbered = { ...event, seq: current.lastSeq + 1 };
      apply(current, numbered);
      out.push(event);
    }
    effects.push(...batch.effects);
  }
  const wakeAt = nextWake(flow, current, now);
  const decision: Decision = { state: current.state, events: out, effects };
  if (wakeAt !== undefined) decision.wakeAt = wakeAt;
  return decision;
}

// ---------------------------------------------------------------------------------------
// The next decision
// ---------------------------------------------------------------------------------------

function next(flow: FlowDefinition, run: Fold, now: Millis): Batch | undefined {
  const { state } = run;
  // Approval submissions are judged whatever the run's status: the audit trail records all.
  // for…in, not Object.entries: this runs every round, and a long run has many steps.
  for (const id in run.tracks) {
    const definition = flow.steps[id];
    if (definition && (run.tracks[id]?.submissions.length ?? 0) > 0)
      return judge(definition, run, id, now);
  }
  if (isTerminal(run)) return run.retryRequest ? rerun(flow, run, now) : undefined;
  if (state.status === "queued") {
    return run.cancel ? finishRun(flow, run, now, "cancelled", cancelReason(run)) : undefined;
  }
  if (state.status === "running" && !isCancelling(run) && now >= runDeadline(flow, run)) {
    return one({ type: "run.timed-out", at: now, after: flow.timeout ?? DEFAULT_RUN_TIMEOUT });
  }
  if (state.status === "running") {
    for (const id of Object.keys(flow.steps)) {
      const batch = nextForStep(flow, run, id, now);
      if (batch) return batch;
    }
  }
  const steps = Object.values(state.steps);
  if (steps.every((step) => step.status === "done")) return endRun(flow, run, now);
  return undefined;
}

function nextForStep(flow: FlowDefinition, run: Fold, id: string, now: Millis): Batch | undefined {
  const definition = flow.steps[id];
  const step = run.state.steps[id];
  const track = run.tracks[id];
  if (!definition || !step || !track) return undefined;
  const kind = stepKind(definition);

  switch (step.status) {
    case "done":
      return undefined;
    case "pending":
      return needsOf(definition).every((need) => run.state.steps[need]?.status === "done")
        ? startOrSkip(flow, run, id, now)
        : undefined;
    case "retrying":
      if (isCancelling(run)) return cancelStep(flow, run, id, now);
      return step.retryAt !== undefined && now >= step.retryAt
        ? startAttempt(flow, run, id, step.attempt + 1, now)
        : undefined;
    case "running":
    case "waiting": {
      if (track.reported) {
        const { outcome, outputs, error, retryable } = track.reported;
        if (outcome === "success") return finishStep(id, now, "success", outputs);
        return failAttempt(
          definition,
          run,
          id,
          now,
          error ?? "the attempt failed",
          retryable !== false,
        );
      }
      if (kind === "approval" && definition.approval) {
        const decided = approvalOutcome(definition.approval, step);
        if (decided) return decided(id, now);
        if (track.progressChanged && step.status === "waiting")
          return progress(definition.approval, run, id, now);
      }
      if (kind === "wait" && definition.wait?.signal !== undefined) {
        const name = definition.wait.signal;
        const signal = run.signals.find(
          (candidate) => candidate.name === name && !candidate.consumed,
        );
        if (signal) {
          return one({
            type: "step.finished",
            at: now,
            step: id,
            result: "success",
            outputs: { payload: JSON.stringify(signal.payload), signal: signal.name },
            signal: signal.seq,
          });
        }
      }
      if (isCancelling(run) && !track.startedWhileCancelling) return cancelStep(flow, run, id, now);
      if (kind === "wait" && definition.wait?.signal === undefined) {
        if (track.waitUntil !== undefined && now >= track.waitUntil) {
          return finishStep(id, now, "success", {});
        }
        return undefined;
      }
      if (track.deadline !== undefined && now >= track.deadline && !track.timedOut) {
        return timeOut(definition, run, id, now);
      }
      if (kind === "approval" && definition.approval)
        return remind(definition.approval, run, id, now);
      return undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------
// Starting and finishing steps
// ---------------------------------------------------------------------------------------

function startOrSkip(flow: FlowDefinition, run: Fold, id: string, now: Millis): Batch {
  const definition = flow.steps[id] as StepDefinition;
  const scope = scopeFor(flow, run, id);
  let go: boolean;
  try {
    go = evaluateCondition(definition.if, scope);
  } catch (error: unknown) {
    return finishStep(id, now, "failure", {}, `if: ${message(error)}`);
  }
  const step = run.state.steps[id] as StepState;
  if (go) return startAttempt(flow, run, id, step.attempt + 1, now);
  if (isCancelling(run))
    return finishStep(id, now, "cancelled", {}, `cancelled: ${cancelReason(run)}`);
  if (scope.status?.success === false) {
    const blocking = [...transitiveNeeds(flow, id)].filter((need) => {
      const result = run.state.steps[need]?.result;
      return result === "cancelled" || failedForGraph(flow, run, need);
    });
    return finishStep(id, now, "skipped", {}, `skipped: ${blocking.join(", ")} did not succeed`);
  }
  return finishStep(id, now, "skipped", {}, "skipped: `if` is false");
}

function startAttempt(
  flow: FlowDefinition,
  run: Fold,
  id: string,
  attempt: number,
  now: Millis,
): Batch {
  const definition = flow.steps[id] as StepDefinition;
  const kind = stepKind(definition);
  const key = `${run.state.meta.id}/${id}/${attempt}`;
  const scope = scopeFor(flow, run, id);
  const started = (deadline: Millis | undefined): NewRunEvent =>
    deadline === undefined
      ? { type: "attempt.started", at: now, step: id, attempt }
      : { type: "attempt.started", at: now, step: id, attempt, deadline };
  const failWith = (deadline: Millis | undefined, error: unknown): Batch => ({
    events: [started(deadline), finishEvent(id, now, "failure", {}, message(error))],
    effects: [],
  });

  switch (kind) {
    case "run":
    case "agent":
    case "workflow":
    case "github": {
      const deadline = now + parseDuration(definition.timeout ?? DEFAULT_STEP_TIMEOUT);
      let spec: Json;
      let env: Record<string, string>;
      try {
        const expanded = expandSpec(definition, scope);
        spec = expanded.spec;
        env = checkedEnv({ ...stepEnv(flow, definition, scope), ...expanded.env });
      } catch (error: unknown) {
        return failWith(deadline, error);
      }
      return {
        events: [started(deadline)],
        effects: [{ type: "execute", key, step: id, attempt, kind, spec, env, deadline }],
      };
    }
    case "flow": {
      const deadline =
        definition.timeout === undefined ? undefined : now + parseDuration(definition.timeout);
      let inputs: Record<string, Json>;
      try {
        inputs = expandDeep(definition.with ?? {}, scope) as Record<string, Json>;
      } catch (error: unknown) {
        return failWith(deadline, error);
      }
      return {
        events: [started(deadline)],
        effects: [
          { type: "start-sub-run", key, step: id, attempt, flow: definition.flow ?? "", inputs },
        ],
      };
    }
    case "approval": {
      const spec = definition.approval as ApprovalSpec;
      const timeout = spec.timeout ?? definition.timeout;
      const deadline = timeout === undefined ? undefined : now + parseDuration(timeout);
      let pullRequest: string | undefined;
      try {
        pullRequest =
          spec["pull-request"] === undefined
            ? undefined
            : expandTemplate(String(spec["pull-request"]), scope);
      } catch (error: unknown) {
        return failWith(deadline, error);
      }
      const waiting: NewRunEvent = {
        type: "step.waiting",
        at: now,
        step: id,
        attempt,
        reason: `approval (0 of ${spec.required})`,
      };
      if (deadline !== undefined) waiting.until = deadline;
      const effect: Effect = { type: "request-approval", key, step: id, attempt };
      if (pullRequest !== undefined) effect.pullRequest = pullRequest;
      return { events: [started(deadline), waiting], effects: [effect] };
    }
    case "wait": {
      const wait = definition.wait ?? {};
      if (wait.signal !== undefined) {
        const timeout = wait.timeout ?? definition.timeout;
        const deadline = timeout === undefined ? undefined : now + parseDuration(timeout);
        const waiting: NewRunEvent = {
          type: "step.waiting",
          at: now,
          step: id,
          attempt,
          reason: `signal ${wait.signal}`,
        };
        if (deadline !== undefined) waiting.until = deadline;
        return { events: [started(deadline), waiting], effects: [] };
      }
      let until: Millis;
      if (wait.for !== undefined) until = now + parseDuration(wait.for);
      else {
        let text: string;
        try {
          text = expandTemplate(wait.until ?? "", scope);
        } catch (error: unknown) {
          return failWith(undefined, error);
        }
        until = Date.parse(text);
        if (Number.isNaN(until)) {
          return failWith(undefined, `wait.until: "${text}" is not an ISO 8601 timestamp`);
        }
      }
      const reason =
        wait.for !== undefined ? `for ${wait.for}` : `until ${new Date(until).toISOString()}`;
      return {
        events: [
          started(undefined),
          { type: "step.waiting", at: now, step: id, attempt, reason, until },
        ],
        effects: [],
      };
    }
  }
}

function finishEvent(
  id: string,
  now: Millis,
  result: StepResult,
  outputs: Record<string, string>,
  reason?: string,
): NewRunEvent {
  const event: NewRunEvent = { type: "step.finished", at: now, step: id, result, outputs };
  if (reason !== undefined) event.reason = reason;
  return event;
}

function finishStep(
  id: string,
  now: Millis,
  result: StepResult,
  outputs: Record<string, string>,
  reason?: string,
): Batch {
  return one(finishEvent(id, now, result, outputs, reason));
}

/** Retry when attempts remain and the failure is retryable; otherwise the step fails. */
function failAttempt(
  definition: StepDefinition,
  run: Fold,
  id: string,
  now: Millis,
  reason: string,
  retryable: boolean,
): Batch {
  const step = run.state.steps[id] as StepState;
  const track = run.tracks[id];
  const used = step.attempt - (track?.baseAttempt ?? 0);
  const policy = retryPolicy(definition);
  if (retryable && used < policy.attempts && !isCancelling(run)) {
    const wait = Math.min(policy.delay * policy.backoff ** (used - 1), policy.maxDelay);
    return one({
      type: "retry.scheduled",
      at: now,
      step: id,
      attempt: step.attempt + 1,
      retryAt: now + Math.round(wait),
      reason,
    });
  }
  return finishStep(id, now, "failure", {}, reason);
}

function retryPolicy(definition: StepDefinition): {
  attempts: number;
  delay: number;
  backoff: number;
  maxDelay: number;
} {
  const retry = definition.retry;
  const maxDefault = parseDuration(DEFAULT_MAX_RETRY_DELAY);
  if (retry === undefined) return { attempts: 1, delay: 0, backoff: 1, maxDelay: maxDefault };
  if (typeof retry === "number") {
    return {
      attempts: Math.max(1, retry),
      delay: parseDuration("10s"),
      backoff: 2,
      maxDelay: maxDefault,
    };
  }
  return {
    attempts: Math.max(1, retry.attempts),
    delay: parseDuration(retry.delay),
    backoff: retry.backoff,
    maxDelay: retry["max-delay"] === undefined ? maxDefault : parseDuration(retry["max-delay"]),
  };
}

function timeOut(definition: StepDefinition, run: Fold, id: string, now: Millis): Batch {
  const step = run.state.steps[id] as StepState;
  const kind = stepKind(definition);
  const key = `${run.state.meta.id}/${id}/${step.attempt}`;
  if (kind === "approval" && definition.approval) {
    const spec = definition.approval;
    const after = spec.timeout ?? definition.timeout ?? "";
    if (spec["on-timeout"] === "approve") {
      return finishStep(
        id,
        now,
        "success",
        approvalOutputs("approved", step),
        `approval timed out after ${after}; approved`,
      );
    }
    if (spec["on-timeout"] === "reject") {
      return finishStep(
        id,
        now,
        "failure",
        approvalOutputs("rejected", step),
        `approval timed out after ${after}; rejected`,
      );
    }
  }
  const after =
    kind === "approval"
      ? (definition.approval?.timeout ?? definition.timeout)
      : kind === "wait"
        ? (definition.wait?.timeout ?? definition.timeout)
        : (definition.timeout ?? DEFAULT_STEP_TIMEOUT);
  const timedOut: NewRunEvent = {
    type: "attempt.timed-out",
    at: now,
    step: id,
    attempt: step.attempt,
  };
  const effects = cancelEffects(definition, id, key, step.attempt);
  const then = failAttempt(definition, run, id, now, `timed out after ${after ?? "?"}`, true);
  return { events: [timedOut, ...then.events], effects: [...effects, ...then.effects] };
}

function cancelStep(flow: FlowDefinition, run: Fold, id: string, now: Millis): Batch {
  const step = run.state.steps[id] as StepState;
  const key = `${run.state.meta.id}/${id}/${step.attempt}`;
  return {
    events: [finishEvent(id, now, "cancelled", {}, `cancelled: ${cancelReason(run)}`)],
    effects:
      step.status === "running"
        ? cancelEffects(flow.steps[id] as StepDefinition, id, key, step.attempt)
        : [],
  };
}

/** How to stop a running attempt: cancel the executor's work, or the sub-run. */
function cancelEffects(
  definition: StepDefinition,
  id: string,
  key: string,
  attempt: number,
): Effect[] {
  const kind = stepKind(definition);
  if (kind === "flow") return [{ type: "cancel-sub-run", key, step: id, attempt }];
  if (kind === "approval" || kind === "wait") return [];
  return [{ type: "cancel", key, step: id, attempt }];
}

// ---------------------------------------------------------------------------------------
// Approvals
// ---------------------------------------------------------------------------------------

function judge(definition: StepDefinition, run: Fold, id: string, now: Millis): Batch {
  const track = run.tracks[id];
  const step = run.state.steps[id] as StepState;
  const submission = track?.submissions[0];
  if (!submission) throw new Error("engine bug: judge without a submission");
  const evaluated = (counted: boolean, reason?: string): Batch => {
    const event: NewRunEvent = {
      type: "approval.evaluated",
      at: now,
      step: id,
      user: submission.user,
      decision: submission.decision,
      counted,
    };
    if (reason !== undefined) event.reason = reason;
    if (submission.comment !== undefined) event.comment = submission.comment;
    event.via = submission.via;
    if (submission.facts.commit !== undefined) event.commit = submission.facts.commit;
    return one(event);
  };
  const spec = definition.approval;
  if (!spec) return evaluated(false, `${id} is not an approval step`);
  if (step.status !== "waiting")
    return evaluated(
      false,
      `${id} was not waiting for approval (it is ${step.result ?? step.status})`,
    );
  const verdict = judgeSubmission(spec, submission, run.state.meta.actor);
  if (!verdict.eligible) return evaluated(false, verdict.reason);
  const same = step.approvals.some(
    (earlier) =>
      countsNow(earlier) &&
      earlier.decision === "approve" &&
      earlier.user.toLowerCase() === submission.user.toLowerCase(),
  );
  if (submission.decision === "approve" && same)
    return evaluated(false, `${submission.user} has already approved`);
  const batch = evaluated(true);
  // Show the progress while more approvals are needed: "approval (1 of 2)".
  const counted = new Set(
    step.approvals
      .filter((earlier) => countsNow(earlier) && earlier.decision === "approve")
      .map((earlier) => earlier.user.toLowerCase()),
  );
  if (submission.decision === "approve") counted.add(submission.user.toLowerCase());
  if (submission.decision === "approve" && counted.size < spec.required) {
    const waiting: NewRunEvent = {
      type: "step.waiting",
      at: now,
      step: id,
      attempt: step.attempt,
      reason: `approval (${counted.size} of ${spec.required})`,
    };
    if (track?.waitUntil !== undefined) waiting.until = track.waitUntil;
    batch.events.push(waiting);
  }
  return batch;
}

/** A decision, once enough approvals (or one eligible rejection) have been counted. */
function approvalOutcome(
  spec: ApprovalSpec,
  step: StepState,
): ((id: string, now: Millis) => Batch) | undefined {
  if (step.status !== "waiting") return undefined;
  const counted = step.approvals.filter(countsNow);
  const rejection = counted.find((approval) => approval.decision === "reject");
  if (rejection) {
    return (id, now) =>
      finishStep(
        id,
        now,
        "failure",
        approvalOutputs("rejected", step),
        `rejected by ${rejection.user}`,
      );
  }
  const approvers = new Set(counted.map((approval) => approval.user.toLowerCase()));
  if (approvers.size >= spec.required) {
    return (id, now) => finishStep(id, now, "success", approvalOutputs("approved", step));
  }
  return undefined;
}

/**
 * Outputs of an approval step: `decision`, `approvers` (sorted, comma-separated, so the
 * output does not depend on the order submissions arrived in) and `comment` (the counted
 * comments, in the same order, one per line).
 */
function approvalOutputs(
  decision: "approved" | "rejected",
  step: StepState,
): Record<string, string> {
  const wanted = decision === "approved" ? "approve" : "reject";
  const counted = step.approvals
    .filter((approval) => countsNow(approval) && approval.decision === wanted)
    .sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : 0));
  return {
    decision,
    approvers: counted.map((approval) => approval.user).join(","),
    comment: counted
      .map((approval) => approval.comment)
      .filter((comment): comment is string => comment !== undefined && comment !== "")
      .join("\n"),
  };
}

/** Whether an evaluated submission counts now: counted, and not withdrawn since. */
function countsNow(approval: ApprovalEvaluated): boolean {
  return approval.counted && approval.withdrawn === undefined;
}

/** Approvals were withdrawn (a dismissed review, a push): show the new count. */
function progress(spec: ApprovalSpec, run: Fold, id: string, now: Millis): Batch {
  const track = run.tracks[id];
  const step = run.state.steps[id] as StepState;
  const counted = new Set(
    step.approvals
      .filter((a) => countsNow(a) && a.decision === "approve")
      .map((a) => a.user.toLowerCase()),
  );
  const waiting: NewRunEvent = {
    type: "step.waiting",
    at: now,
    step: id,
    attempt: step.attempt,
    reason: `approval (${counted.size} of ${spec.required})`,
  };
  if (track?.waitUntil !== undefined) waiting.until = track.waitUntil;
  return one(waiting);
}

function remind(spec: ApprovalSpec, run: Fold, id: string, now: Millis): Batch | undefined {
  const track = run.tracks[id];
  const step = run.state.steps[id] as StepState;
  if (!track || spec.reminder === undefined || track.deadline === undefined || track.reminderSent)
    return undefined;
  if (step.status !== "waiting") return undefined;
  const at = track.deadline - parseDuration(spec.reminder);
  if (now < at) return undefined;
  const counted = new Set(
    step.approvals
      .filter((a) => countsNow(a) && a.decision === "approve")
      .map((a) => a.user.toLowerCase()),
  );
  return {
    events: [
      {
        type: "step.waiting",
        at: now,
        step: id,
        attempt: step.attempt,
        reason: `approval (${counted.size} of ${spec.required}); reminder sent`,
        until: track.deadline,
        reminder: true,
      },
    ],
    effects: [
      {
        type: "request-approval",
        key: `${run.state.meta.id}/${id}/${step.attempt}/reminder`,
        step: id,
        attempt: step.attempt,
        reminder: true,
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------
// The end of a run: compensation, outputs, run.finished
// ---------------------------------------------------------------------------------------

function endRun(flow: FlowDefinition, run: Fold, now: Millis): Batch | undefined {
  const { state } = run;
  const failed = Object.keys(flow.steps).filter((id) => failedForGraph(flow, run, id));
  const status: "success" | "failure" | "cancelled" = run.cancel
    ? "cancelled"
    : run.timedOut !== undefined || failed.length > 0
      ? "failure"
      : "success";
  let reason =
    status === "cancelled"
      ? cancelReason(run)
      : run.timedOut !== undefined
        ? `timed out after ${run.timedOut}`
        : failed.length > 0
          ? `failed: ${failed.join(", ")}`
          : undefined;
  if (status !== "success") {
    if (Object.values(state.steps).some((step) => step.compensation === "running"))
      return undefined;
    const due = Object.keys(flow.steps)
      .filter((id) => {
        const step = state.steps[id];
        return (
          flow.steps[id]?.compensate !== undefined &&
          step?.result === "success" &&
          step.compensation === undefined
        );
      })
      .sort((a, b) => (run.tracks[b]?.finishedSeq ?? 0) - (run.tracks[a]?.finishedSeq ?? 0));
    const first = due[0];
    if (first !== undefined) return compensate(flow, run, first, now);
    const broken = Object.values(state.steps)
      .filter((step) => step.compensation === "failure")
      .map((step) => step.id);
    if (broken.length > 0)
      reason = `${reason ?? status}; compensation failed: ${broken.join(", ")}`;
  }
  return finishRun(flow, run, now, status, reason);
}

function compensate(flow: FlowDefinition, run: Fold, id: string, now: Millis): Batch {
  const definition = flow.steps[id] as StepDefinition;
  const step = run.state.steps[id] as StepState;
  const compensation = definition.compensate as Compensation;
  const scope = scopeFor(flow, run, id);
  const key = `${run.state.meta.id}/${id}/${step.attempt}/compensate`;
  const started: NewRunEvent = { type: "compensation.started", at: now, step: id };
  try {
    if (typeof compensation === "string") {
      const script = expandScript(compensation, scope);
      const spec: Record<string, Json> = { run: script.script };
      if (definition["runs-on"] !== undefined) spec["runs-on"] = definition["runs-on"];
      return {
        events: [started],
        effects: [
          {
            type: "compensate",
            key,
            step: id,
            kind: "run",
            spec,
            env: checkedEnv({ ...stepEnv(flow, definition, scope), ...script.env }),
          },
        ],
      };
    }
    const kind =
      compensation.workflow !== undefined
        ? "workflow"
        : compensation.github !== undefined
          ? "github"
          : "run";
    const { run: command, "runs-on": runsOn, ...rest } = compensation;
    const spec = expandDeep(rest as unknown as Json, scope) as Record<string, Json>;
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries({
      ...(flow.env ?? {}),
      ...(compensation.env ?? {}),
    })) {
      env[name] = expandTemplate(String(value), scope);
    }
    if (command !== undefined) {
      const script = expandScript(command, scope);
      spec.run = script.script;
      Object.assign(env, script.env);
    }
    // Where it runs is fixed text, as for the step (a value never chooses a host); a
    // compensating command runs where the step ran unless it says otherwise.
    if (runsOn !== undefined) spec["runs-on"] = runsOn;
    else if (kind === "run" && definition["runs-on"] !== undefined) {
      spec["runs-on"] = definition["runs-on"];
    }
    return {
      events: [started],
      effects: [{ type: "compensate", key, step: id, kind, spec, env: checkedEnv(env) }],
    };
  } catch (error: unknown) {
    // Nothing to run: the compensation fails at once, and the run goes on to the next one.
    return {
      events: [
        started,
        {
          type: "compensation.finished",
          at: now,
          step: id,
          outcome: "failure",
          error: message(error),
        },
      ],
      effects: [],
    };
  }
}

function finishRun(
  flow: FlowDefinition,
  run: Fold,
  now: Millis,
  status: "success" | "failure" | "cancelled",
  reason: string | undefined,
): Batch {
  const outputs: Record<string, string> = {};
  const problems: string[] = [];
  const scope = scopeFor(flow, run, undefined);
  for (const [name, template] of Object.entries(flow.outputs ?? {})) {
    try {
      outputs[name] = expandTemplate(template, scope);
    } catch (error: unknown) {
      outputs[name] = "";
      problems.push(`output ${name}: ${message(error)}`);
    }
  }
  const fullReason = [reason, ...problems].filter((part) => part !== undefined).join("; ");
  const event: NewRunEvent = { type: "run.finished", at: now, status, outputs };
  if (fullReason !== "") event.reason = fullReason;
  const ended: Effect = {
    type: "run-ended",
    key: `${run.state.meta.id}/run-ended/${run.state.runAttempt}`,
    status,
    outputs,
  };
  if (run.state.parent) ended.parent = run.state.parent;
  if (run.state.concurrencyGroup !== undefined) ended.concurrencyGroup = run.state.concurrencyGroup;
  return { events: [event], effects: [ended] };
}

function rerun(flow: FlowDefinition, run: Fold, now: Millis): Batch {
  const request = run.retryRequest;
  const roots = Object.keys(flow.steps).filter((id) => {
    const step = run.state.steps[id];
    return step?.result !== "success" || step.compensation !== undefined;
  });
  if (request?.fromStep !== undefined && flow.steps[request.fromStep]) roots.push(request.fromStep);
  const reset = new Set<string>();
  for (const root of roots) for (const id of withDependents(flow, root)) reset.add(id);
  return one({
    type: "run.retried",
    at: now,
    runAttempt: run.state.runAttempt + 1,
    steps: Object.keys(flow.steps).filter((id) => reset.has(id)),
  });
}

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

function one(event: NewRunEvent): Batch {
  return { events: [event], effects: [] };
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isCancelling(run: Fold): boolean {
  return run.cancel !== undefined || run.timedOut !== undefined;
}

function cancelReason(run: Fold): string {
  if (run.cancel)
    return `cancelled by ${run.cancel.by}${run.cancel.reason ? `: ${run.cancel.reason}` : ""}`;
  if (run.timedOut !== undefined) return `run timed out after ${run.timedOut}`;
  return "cancelled";
}

function runDeadline(flow: FlowDefinition, run: Fold): Millis {
  return (
    (run.startedAt ?? run.state.createdAt) + parseDuration(flow.timeout ?? DEFAULT_RUN_TIMEOUT)
  );
}

/** A failure that counts: for the run's result and for dependents' success()/failure(). */
function failedForGraph(flow: FlowDefinition, run: Fold, id: string): boolean {
  return (
    run.state.steps[id]?.result === "failure" && flow.steps[id]?.["continue-on-error"] !== true
  );
}

/** The contexts and status functions a step's expressions see (`undefined`: the flow's outputs). */
export function scopeFor(flow: FlowDefinition, run: Fold, id: string | undefined): ExpressionScope {
  const { state } = run;
  const steps: Record<string, Json> = {};
  for (const [stepId, step] of Object.entries(state.steps)) {
    if (step.status === "done")
      steps[stepId] = { outputs: step.outputs, result: step.result ?? null };
  }
  const definition = id === undefined ? undefined : flow.steps[id];
  const env: Record<string, Json> = { ...(flow.env ?? {}), ...(definition?.env ?? {}) };
  const runContext: Record<string, Json> = {
    id: state.meta.id,
    number: state.meta.number,
    attempt: state.runAttempt,
    sha: state.meta.sha,
    repository: state.meta.repository,
    url: state.meta.url ?? "",
  };
  const needs = id === undefined ? Object.keys(flow.steps) : [...transitiveNeeds(flow, id)];
  const failure = needs.some((need) => failedForGraph(flow, run, need));
  const cancelledNeed = needs.some((need) => state.steps[need]?.result === "cancelled");
  const cancelled = isCancelling(run);
  return {
    contexts: {
      inputs: state.inputs,
      steps,
      trigger: { event: state.trigger.event, payload: state.trigger.payload },
      run: runContext,
      env,
    },
    status: { success: !cancelled && !failure && !cancelledNeed, failure, cancelled },
  };
}

/**
 * The step's definition with its expressions evaluated: `with`, `env`, the agent's prompt
 * and a `github` step's `with` hold the values; `run` gets references to variables, whose
 * values come back in `env`.
 */
function expandSpec(
  definition: StepDefinition,
  scope: ExpressionScope,
): { spec: Json; env: Record<string, string> } {
  const spec = JSON.parse(JSON.stringify(definition)) as Record<string, Json>;
  for (const field of ["with", "env"] as const) {
    const value = spec[field];
    if (value !== undefined) spec[field] = expandDeep(value, scope);
  }
  let env: Record<string, string> = {};
  if (typeof definition.run === "string") {
    const script = expandScript(definition.run, scope);
    spec.run = script.script;
    env = script.env;
  }
  const agent = spec.agent;
  if (
    agent &&
    typeof agent === "object" &&
    !Array.isArray(agent) &&
    typeof agent.prompt === "string"
  ) {
    agent.prompt = expandTemplate(agent.prompt, scope);
  }
  const github = spec.github;
  if (github && typeof github === "object" && !Array.isArray(github) && github.with !== undefined) {
    github.with = expandDeep(github.with, scope);
  }
  return { spec, env };
}

/**
 * No environment can carry a NUL character (execve ends the string there): say so
 * instead of letting an executor fail on it, or cut the value short.
 */
function checkedEnv(env: Record<string, string>): Record<string, string> {
  for (const [name, value] of Object.entries(env)) {
    if (value.includes("\0")) {
      throw new Error(
        `the value of ${name} contains a NUL character, which an environment variable cannot hold; remove it from the value (or encode it, e.g. base64)`,
      );
    }
  }
  return env;
}

/** The flow's `env`, the step's `env` and its `with`, expanded, as strings. */
function stepEnv(
  flow: FlowDefinition,
  definition: StepDefinition,
  scope: ExpressionScope,
): Record<string, string> {
  const env: Record<string, string> = {};
  const merged = { ...(flow.env ?? {}), ...(definition.env ?? {}), ...(definition.with ?? {}) };
  for (const [name, value] of Object.entries(merged))
    env[name] = expandTemplate(String(value), scope);
  return env;
}

/** The earliest moment after `now` at which time alone changes something. */
function nextWake(flow: FlowDefinition, run: Fold, now: Millis): Millis | undefined {
  const times: Millis[] = [];
  const { state } = run;
  if (state.status === "running" && !isCancelling(run)) times.push(runDeadline(flow, run));
  if (state.status === "running") {
    for (const [id, step] of Object.entries(state.steps)) {
      const track = run.tracks[id];
      const definition = flow.steps[id];
      if (!track || !definition) continue;
      if (step.status === "retrying" && step.retryAt !== undefined) times.push(step.retryAt);
      if (step.status === "running" || step.status === "waiting") {
        if (track.deadline !== undefined && !track.timedOut) times.push(track.deadline);
        if (track.waitUntil !== undefined) times.push(track.waitUntil);
        const reminder = definition.approval?.reminder;
        if (reminder !== undefined && track.deadline !== undefined && !track.reminderSent) {
          times.push(track.deadline - parseDuration(reminder));
        }
      }
    }
  }
  const future = times.filter((time) => time > now);
  return future.length === 0 ? undefined : Math.min(...future);
}
