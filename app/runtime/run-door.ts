/**
 * The one door into a run (DESIGN.md rule 9): every change of a run's state from outside
 * the engine — an attempt's outcome or progress, a compensation's end, an approval
 * decision or its withdrawal, a signal, a cancel, a retry, a timer, a sub-run's start —
 * is one call here. Each call
 *
 *   1. locks the run's row (and reads the one step it is about),
 *   2. checks that the attempt (or compensation) it reports on is still current, with
 *      `isCurrent`, the one rule for it,
 *   3. maps its input to events (`outcomeEvent`, the one mapping from a step outcome),
 *   4. decides and records through `advanceRun`, and
 *   5. commits: in the caller's transaction when given one (a webhook delivery commits its
 *      own writes with the run's change), else in a transaction of its own.
 *
 * Reports are addressed by the attempt's idempotency key (`<run>/<step>/<attempt>`, or
 * `…/compensate`), the key every executor already holds (BATON_IDEMPOTENCY_KEY), so a
 * repeated or late report is recognised here and changes nothing.
 *
 * The door holds the process's flow cache: the runtime's task handlers and `BatonService`
 * share it. Time is the caller's (`now`): the door reads no clock.
 */
import type { AttemptRef, ReportedOutcome, WithdrawalFilter } from "../engine/run-inputs.js";
import { isCurrent, outcomeEvent, withdrawalChangesStep } from "../engine/run-inputs.js";
import { resolveInputs } from "../engine/index.js";
import type {
  ApprovalEvaluated,
  ApprovalVia,
  ApproverFacts,
  Json,
  Millis,
  NewRunEvent,
  RunStatus,
} from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import type { Database, Queryable, Transaction } from "../store/database.js";
import type { NewFlowVersion } from "../store/flow-versions.js";
import { saveFlowVersion } from "../store/flow-versions.js";
import type { FlowVersion, RunGitHub } from "../store/model.js";
import type { LockedRunStep } from "../store/run-door.js";
import { lockRunStep } from "../store/run-door.js";
import { findChildRun, getRunById } from "../store/runs.js";
import { underSavepoint } from "../store/savepoint.js";
import { getStep } from "../store/steps.js";
import type { Advanced } from "./advance-run.js";
import { advanceRun } from "./advance-run.js";
import { createRun, type CreateRunRequest } from "./create-run.js";
import {
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  InvalidAttemptKeyError,
  LeaseLostError,
  RunFinishedError,
  RunNotFinishedError,
  RunNotFoundError,
  StepNotFoundError,
  StepNotWaitingError,
} from "./errors.js";
import { FlowCache } from "./flow-cache.js";
import type { Handoff } from "./task-context.js";

export type { AttemptRef, ReportedOutcome, WithdrawalFilter } from "../engine/run-inputs.js";

/** A database (the call commits on its own) or the caller's transaction (it commits with the caller's writes). */
export type Into = Database | Transaction;

/** When, and (for the runtime's own task handlers) the handoff of the finishing task. */
export interface DoorCall {
  now: Millis;
  handoff?: Handoff;
}

/** What became of a report. */
export interface Report {
  /** The attempt (or compensation) was the one running when the report arrived. */
  current: boolean;
  /** Events were appended (false for a late or repeated report, or progress of a compensation). */
  recorded: boolean;
}

export interface ApprovalOptions {
  user: string;
  comment?: string;
  /** (Default: "cli") */
  via?: ApprovalVia;
  /** What the caller knows about the user (local mode: the local user, as admin). */
  facts: ApproverFacts;
}

export interface Withdrawal extends WithdrawalFilter {
  step: string;
  /** Why, for people. */
  reason: string;
  by: string;
}

/** A sub-flow's file, read and validated, ready to be stored as a version. */
export type SubFlowFile = NewFlowVersion;

/** What a `SubFlowSource` found: the file, or why the `flow` step fails. */
export type LoadedSubFlow = { file: SubFlowFile } | { error: string };

/** The key of an attempt (or, with `compensation`, of its compensation). */
export function attemptKey(ref: AttemptRef): string {
  return `${ref.runId}/${ref.step}/${ref.attempt}${ref.compensation ? "/compensate" : ""}`;
}

/** `<run>/<step>/<attempt>[/compensate]` → its parts; throws InvalidAttemptKeyError. */
export function parseAttemptKey(key: string): AttemptRef {
  const parts = key.split("/");
  const compensation = parts.at(-1) === "compensate";
  if (compensation) parts.pop();
  const attempt = Number(parts.pop());
  const [runId, ...step] = parts;
  if (!runId || step.length === 0 || !Number.isInteger(attempt) || attempt < 1)
    throw new InvalidAttemptKeyError(key);
  return { runId, step: step.join("/"), attempt, compensation };
}

/**
 * Whether the attempt (or compensation) of `key` runs now, read without a lock: for a
 * worker deciding whether to start or keep running it. The door checks again, locked,
 * before it records anything.
 */
export async function attemptIsCurrent(db: Queryable, key: string): Promise<boolean> {
  const target = parseAttemptKey(key);
  if (target.compensation) {
    const run = await getRunById(db, target.runId);
    return isCurrent(run?.state?.steps[target.step], target);
  }
  return isCurrent(await getStep(db, target.runId, target.step), target);
}

export class RunDoor {
  /** Flow versions by id (immutable, so one cache serves every caller). */
  readonly flows: FlowCache;

  constructor(options: { flows?: FlowCache } = {}) {
    this.flows = options.flows ?? new FlowCache();
  }

  /**
   * Report the outcome of the attempt (or compensation) `key`: `attempt.finished` (or
   * `compensation.finished`) and the run's next decision. A late or repeated report is
   * ignored (`recorded: false`), once the run is locked.
   */
  async reportOutcome(
    into: Into,
    key: string,
    outcome: ReportedOutcome,
    call: DoorCall,
  ): Promise<Report> {
    return this.#whenCurrent(into, key, call, async (tx, runId, target) => {
      await this.#decide(tx, runId, [outcomeEvent(target, outcome, call.now)], call);
      return true;
    });
  }

  /**
   * Lock the run of attempt `key` and, when the attempt is current, do `record` (which says
   * whether it recorded anything); a late or repeated report records nothing.
   */
  #whenCurrent(
    into: Into,
    key: string,
    call: DoorCall,
    record: (tx: Transaction, runId: string, target: AttemptRef) => Promise<boolean>,
  ): Promise<Report> {
    const target = parseAttemptKey(key);
    return within(into, async (tx) => {
      const run = await this.#lock(tx, target.runId, target.step, call);
      if (!run || !isCurrent(run.step, target)) return { current: false, recorded: false };
      return { current: true, recorded: await record(tx, run.id, target) };
    });
  }

  /** `reportOutcome` for a compensation's key (`…/compensate`); throws InvalidAttemptKeyError otherwise. */
  async finishCompensation(
    into: Into,
    key: string,
    outcome: Omit<ReportedOutcome, "outputs" | "retryable">,
    call: DoorCall,
  ): Promise<Report> {
    if (!parseAttemptKey(key).compensation) throw new InvalidAttemptKeyError(key);
    return this.reportOutcome(into, key, { ...outcome, outputs: {} }, call);
  }

  /**
   * What the attempt is doing (queued on Actions, waiting for a runner), shown as the
   * step's reason. A compensation has nothing to show: nothing is recorded, and the
   * answer only says whether it still runs.
   */
  async reportProgress(
    into: Into,
    key: string,
    progress: { detail: string; url?: string },
    call: DoorCall,
  ): Promise<Report> {
    return this.#whenCurrent(into, key, call, async (tx, runId, target) => {
      if (target.compensation) return false;
      await this.#decide(
        tx,
        runId,
        [
          {
            type: "attempt.progress",
            at: call.now,
            step: target.step,
            attempt: target.attempt,
            detail: progress.detail,
            ...(progress.url !== undefined ? { url: progress.url } : {}),
          },
        ],
        call,
      );
      return true;
    });
  }

  /**
   * Lock the run and say whether `key` is current, changing nothing: for a caller whose
   * own writes depend on it (a dispatch that must be stopped when its attempt ended).
   * The lock holds until the caller's transaction ends.
   */
  async lockCurrent(
    tx: Transaction,
    key: string,
  ): Promise<{ current: boolean; step: LockedRunStep["step"] }> {
    const target = parseAttemptKey(key);
    const run = await this.#lock(tx, target.runId, target.step, undefined);
    return { current: !!run && isCurrent(run.step, target), step: run?.step };
  }

  /**
   * Decide again without an input: a timer fired (a retry's delay, a wait, a timeout).
   * Throws RunNotFoundError.
   */
  advance(into: Into, runId: string, call: DoorCall): Promise<Advanced> {
    return within(into, async (tx) => {
      const run = await this.#lock(tx, runId, undefined, call);
      if (!run) throw new RunNotFoundError(runId);
      return this.#decide(tx, runId, [], call);
    });
  }

  /**
   * Approve or reject a waiting approval step. Returns how the engine judged it. Throws
   * RunNotFoundError, RunFinishedError, StepNotFoundError, StepNotWaitingError.
   */
  submitApproval(
    into: Into,
    runId: string,
    step: string,
    decision: "approve" | "reject",
    options: ApprovalOptions,
    now: Millis,
  ): Promise<ApprovalEvaluated | undefined> {
    return within(into, async (tx) => {
      const { run, version } = await this.#lockOpen(tx, runId, step);
      const definition = version.definition.steps[step];
      if (!definition)
        throw new StepNotFoundError(run.id, step, Object.keys(version.definition.steps));
      const status = run.step?.status ?? "pending";
      if (definition.approval === undefined || status !== "waiting")
        throw new StepNotWaitingError(run.id, step, status, "an approval");
      const advanced = await this.#decide(
        tx,
        runId,
        [
          {
            type: "approval.submitted",
            at: now,
            step,
            user: options.user,
            decision,
            via: options.via ?? "cli",
            ...(options.comment !== undefined ? { comment: options.comment } : {}),
            facts: options.facts,
          },
        ],
        { now },
      );
      return advanced.appended.find(
        (event): event is ApprovalEvaluated =>
          event.type === "approval.evaluated" && event.step === step && event.user === options.user,
      );
    });
  }

  /**
   * Withdraw the counted approvals of a waiting step that `withdrawal` matches
   * (`approval.withdrawn`). Returns false, appending nothing, when the run is gone, the
   * step no longer waits or no counted approval matches: a dismissal or a push that
   * changes nothing is not worth an event.
   */
  withdrawApprovals(
    into: Into,
    runId: string,
    withdrawal: Withdrawal,
    now: Millis,
  ): Promise<boolean> {
    return within(into, async (tx) => {
      const run = await this.#lock(tx, runId, withdrawal.step, undefined);
      if (!run || !withdrawalChangesStep(run.step, withdrawal)) return false;
      await this.#decide(tx, runId, [{ type: "approval.withdrawn", at: now, ...withdrawal }], {
        now,
      });
      return true;
    });
  }

  /** Send a signal; a `wait: { signal }` step (now or later) consumes it. Throws RunFinishedError. */
  async signal(
    into: Into,
    runId: string,
    signal: { name: string; payload: Json; by: string },
    now: Millis,
  ): Promise<void> {
    await within(into, async (tx) => {
      await this.#lockOpen(tx, runId, undefined);
      await this.#decide(tx, runId, [{ type: "signal.received", at: now, ...signal }], { now });
    });
  }

  /** Ask the run to cancel; returns its status after the decision. Throws RunFinishedError. */
  cancel(
    into: Into,
    runId: string,
    request: { reason: string; by: string },
    now: Millis,
  ): Promise<RunStatus> {
    return within(into, async (tx) => {
      await this.#lockOpen(tx, runId, undefined);
      const advanced = await this.#decide(
        tx,
        runId,
        [{ type: "run.cancel-requested", at: now, by: request.by, reason: request.reason }],
        { now },
      );
      return advanced.decision.state.status;
    });
  }

  /**
   * Rerun a finished run from `fromStep` (Default: every step that did not succeed).
   * Throws RunNotFinishedError, StepNotFoundError.
   */
  retry(
    into: Into,
    runId: string,
    request: { fromStep?: string; by: string },
    now: Millis,
  ): Promise<RunStatus> {
    return within(into, async (tx) => {
      const run = await this.#lock(tx, runId, undefined, undefined);
      if (!run) throw new RunNotFoundError(runId);
      if (!TERMINAL_RUN_STATUSES.includes(run.status))
        throw new RunNotFinishedError(run.id, run.status);
      const version = await this.flows.get(tx, run.flowVersionId);
      if (request.fromStep !== undefined && !version.definition.steps[request.fromStep])
        throw new StepNotFoundError(
          run.id,
          request.fromStep,
          Object.keys(version.definition.steps),
        );
      const advanced = await this.#decide(
        tx,
        runId,
        [
          {
            type: "run.retry-requested",
            at: now,
            by: request.by,
            ...(request.fromStep !== undefined ? { fromStep: request.fromStep } : {}),
          },
        ],
        { now },
      );
      return advanced.decision.state.status;
    });
  }

  /** Create a run (its first decision included), in `tx`. Inputs already resolved. */
  startRun(tx: Transaction, request: CreateRunRequest, now: Millis): Promise<Advanced> {
    return createRun(tx, this.flows, request, now);
  }

  /**
   * Start the child run of the `flow` step attempt `key` from `loaded` (the sub-flow's
   * file, or why there is none), in the parent's repository. Anything that prevents the
   * start (no file, an invalid one, bad inputs, the child's concurrency group) fails the
   * attempt, without retries. Nothing happens when the attempt is no longer current or
   * its child exists already (the task repeated after a crash).
   */
  async startSubRun(
    into: Into,
    key: string,
    start: { loaded: LoadedSubFlow; inputs: Record<string, Json>; github?: RunGitHub },
    call: DoorCall,
  ): Promise<{ started: boolean; error?: string }> {
    const target = parseAttemptKey(key);
    const parent = { runId: target.runId, step: target.step, attempt: target.attempt };
    return within(into, async (tx) => {
      const run = await this.#lock(tx, target.runId, target.step, call);
      if (!run || !isCurrent(run.step, target)) return { started: false };
      if (await findChildRun(tx, parent)) return { started: false };
      const fail = async (error: string) => {
        await this.#decide(
          tx,
          run.id,
          [
            outcomeEvent(
              target,
              { outcome: "failure", outputs: {}, error, retryable: false },
              call.now,
            ),
          ],
          call,
        );
        return { started: false, error };
      };
      if ("error" in start.loaded) return fail(start.loaded.error);
      const file = start.loaded.file;
      const inputs = resolveInputs(file.definition, start.inputs);
      if (!inputs.ok) return fail(`inputs of sub-flow ${file.name}: ${inputs.errors.join("; ")}`);
      const version = await saveFlowVersion(tx, file);
      try {
        // A refusal (the child's concurrency group) must not leave half a run behind.
        await underSavepoint(tx, () =>
          createRun(
            tx,
            this.flows,
            {
              version,
              inputs: inputs.inputs,
              actor: run.actor,
              trigger: {
                event: "flow",
                payload: { ...parent, flow: run.flow },
              },
              parent,
              ...(start.github ? { github: start.github } : {}),
            },
            call.now,
          ),
        );
      } catch (error: unknown) {
        if (!(error instanceof ConcurrencyRejectedError || error instanceof ConcurrencyGroupError))
          throw error;
        return fail(error.message);
      }
      return { started: true };
    });
  }

  /** The flow version of a run (cached). */
  version(db: Queryable, versionId: string): Promise<FlowVersion> {
    return this.flows.get(db, versionId);
  }

  /**
   * Lock the run, reading `step`'s state. When the call finishes a task of the runtime
   * (its handoff's `completion`), the task's deletion rides on the lock (one round trip);
   * a task lost to another worker throws LeaseLostError, so nothing commits.
   */
  async #lock(
    tx: Transaction,
    runId: string,
    step: string | undefined,
    call: DoorCall | undefined,
  ): Promise<LockedRunStep | undefined> {
    const completing = call?.handoff?.completion;
    if (completing && call.handoff) call.handoff.completion = undefined;
    const locked = await lockRunStep(tx, runId, step, completing);
    if (completing && !locked.completed) throw new LeaseLostError(completing.taskId);
    return locked.run;
  }

  /** Lock a run that must not have finished (signals, approvals, cancels). */
  async #lockOpen(
    tx: Transaction,
    runId: string,
    step: string | undefined,
  ): Promise<{ run: LockedRunStep; version: FlowVersion }> {
    const run = await this.#lock(tx, runId, step, undefined);
    if (!run) throw new RunNotFoundError(runId);
    if (TERMINAL_RUN_STATUSES.includes(run.status)) throw new RunFinishedError(run.id, run.status);
    return { run, version: await this.flows.get(tx, run.flowVersionId) };
  }

  #decide(
    tx: Transaction,
    runId: string,
    inputs: readonly NewRunEvent[],
    call: DoorCall,
  ): Promise<Advanced> {
    return advanceRun(tx, this.flows, runId, inputs, call.now, call.handoff);
  }
}

/** `fn` in the caller's transaction, or in a new one of `into`. */
function within<T>(into: Into, fn: (tx: Transaction) => Promise<T>): Promise<T> {
  return "transaction" in into ? into.transaction(fn) : fn(into);
}

const doors = new WeakMap<FlowCache, RunDoor>();

/** The door of a runtime's task context: the one that holds its flow cache. */
export function doorOf(ctx: { flows: FlowCache }): RunDoor {
  let door = doors.get(ctx.flows);
  if (!door) {
    door = new RunDoor({ flows: ctx.flows });
    doors.set(ctx.flows, door);
  }
  return door;
}
