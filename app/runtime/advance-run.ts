/**
 * The heart of the runtime: one state change of one run, in the caller's transaction.
 *
 * Lock the run's row (without its state), take the run's fold (cached, moved on by the
 * events appended since, or folded from the history), add the new inputs, ask the engine
 * what happens next, append the inputs and the decisions, update the projections (the
 * run-level state when it changed, the steps the events touched) and enqueue the effects
 * and the next timer as tasks. Everything commits together or not at all (DESIGN rule 2),
 * and the row lock makes every process take turns on a run.
 */
import { decideOn } from "../engine/decide.js";
import type { Fold } from "../engine/replay.js";
import { apply, detach, fold as foldHistory } from "../engine/replay.js";
import type {
  Decision,
  ExecuteStep,
  Millis,
  NewRunEvent,
  RunEvent,
  RunState,
  StepState,
} from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import type { Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import { loadEvents, recordDecision } from "../store/events.js";
import type { FlowVersion, Run } from "../store/model.js";
import type { DbTask } from "../store/rows.js";
import { lockRun, lockRunCompletingTask } from "../store/runs.js";
import { deletePendingTimers, insertPrepared, prepareEnqueue } from "../store/tasks.js";
import { LeaseLostError, RunNotFoundError } from "./errors.js";
import type { FlowCache } from "./flow-cache.js";
import type { Handoff } from "./task-context.js";
import { syncCheckRunTask, tasksForEffects, wakeTask } from "./task-kinds.js";

export interface Advanced {
  run: Run;
  version: FlowVersion;
  /** The history before this change. */
  history: readonly RunEvent[];
  /** The events this change appended (inputs, then decisions), numbered. */
  appended: RunEvent[];
  decision: Decision;
}

export async function advanceRun(
  tx: Transaction,
  flows: FlowCache,
  runId: string,
  inputs: readonly NewRunEvent[],
  now: Millis,
  /** Claim the tasks it enqueues for this worker, up to the handoff's free slots. */
  handoff?: Handoff,
): Promise<Advanced> {
  const completing = handoff?.completion;
  let run: Run | undefined;
  if (completing) {
    // The finishing task's deletion rides on the run's lock: one round trip.
    handoff.completion = undefined;
    const locked = await lockRunCompletingTask(tx, runId, completing);
    if (!locked.completed) throw new LeaseLostError(completing.taskId);
    run = locked.run;
  } else {
    run = await lockRun(tx, runId, { state: false });
  }
  if (!run) throw new RunNotFoundError(runId);
  const version = await flows.get(tx, run.flowVersionId);
  const flow = version.definition;
  const cached = handoff?.events?.prefix(runId, run.lastSeq);
  const known = cached?.events ?? [];
  const loaded =
    known.length === run.lastSeq && known.length > 0
      ? []
      : await loadEvents(tx, runId, known.length);
  const history = loaded.length > 0 ? [...known, ...loaded] : known;
  // The fold of the history: the cached one moved on by the events appended since (a
  // copy: the cached one stays as committed), or the whole history folded.
  let current: Fold | undefined;
  if (cached && known.length > 0) {
    current = detach(cached.fold);
    for (const event of loaded) apply(current, event);
  } else if (history.length > 0) {
    current = foldHistory(flow, history);
  }
  const before = current ? runLevelOf(current.state) : undefined;
  let seq = history.at(-1)?.seq ?? 0;
  const numbered: RunEvent[] = [];
  for (const input of inputs) {
    // An attempt reported twice (an execution repeated after a crash, a late report) is
    // recognised here and not recorded again; the engine would ignore it anyway.
    if (
      input.type === "attempt.finished" &&
      isReported(history, numbered, input.step, input.attempt)
    )
      continue;
    seq += 1;
    numbered.push({ ...input, seq });
  }
  if (current) for (const event of numbered) apply(current, event);
  else current = foldHistory(flow, numbered);
  const decision = decideOn(flow, current, now);
  const appended = [...numbered];
  for (const event of decision.events) {
    seq += 1;
    appended.push({ ...event, seq });
  }
  const tasks = tasksForEffects(runId, decision.state.runAttempt, decision.effects);
  if (decision.wakeAt !== undefined) tasks.push(wakeTask(runId, decision.wakeAt));
  if (run.github && appended.length > 0) tasks.push(syncCheckRunTask(runId, now));
  if (
    TERMINAL_RUN_STATUSES.includes(decision.state.status) &&
    !TERMINAL_RUN_STATUSES.includes(run.status)
  ) {
    // Timers of a finished run (step deadlines, the run's timeout) have nothing left to do.
    await deletePendingTimers(tx, runId);
  }
  const limit = handoff ? handoff.claim.limit - handoff.claimed.length : 0;
  const enqueue = prepareEnqueue(tasks, {
    ...(handoff && limit > 0 ? { claim: { ...handoff.claim, limit } } : {}),
    ...(handoff?.announceWithinMs !== undefined
      ? { announceWithinMs: handoff.announceWithinMs }
      : {}),
  });
  let inserted: DbTask[] = [];
  if (appended.length > 0) {
    // Events, projections and tasks: one statement.
    const recorded = await recordDecision(
      tx,
      runId,
      {
        events: appended,
        state: decision.state,
        runLevelChanged: before !== runLevelOf(decision.state),
        lastSeq: seq,
        now: new Date(now),
        steps: changedSteps(history.length === 0, appended, decision.state),
      },
      tasks.length > 0 ? enqueue : undefined,
    );
    inserted = recorded.inserted;
    // On Postgres, tell watchers only (a NOTIFY costs every listening session of the
    // database a transaction); PGlite's notifications are in-process and free.
    if (recorded.watched || tx.kind !== "postgres") await tx.notify(CHANNELS.runs, runId);
  } else if (tasks.length > 0) {
    inserted = await insertPrepared(tx, enqueue);
  }
  const { claimed } = await enqueue.finish(tx, inserted);
  if (handoff?.events) {
    const events = handoff.events;
    const all = [...history, ...appended];
    const finished = TERMINAL_RUN_STATUSES.includes(decision.state.status);
    const folded = current;
    handoff.afterCommit.push(() => events.remember(runId, { events: all, fold: folded }, finished));
  }
  for (const task of claimed) {
    if (task.kind !== "execute") continue;
    // Enqueued by this very decision: its attempt is current if the state says it runs.
    const effect = task.payload as unknown as ExecuteStep;
    const step = decision.state.steps[effect.step];
    task.stepCurrent = step?.status === "running" && step.attempt === effect.attempt;
  }
  handoff?.claimed.push(...claimed);
  return { run, version, history, appended, decision };
}

function isReported(
  history: readonly RunEvent[],
  added: readonly RunEvent[],
  step: string,
  attempt: number,
): boolean {
  const same = (event: RunEvent) =>
    event.type === "attempt.finished" && event.step === step && event.attempt === attempt;
  return history.some(same) || added.some(same);
}

/**
 * Steps whose state the appended events may have changed (every step of a new run): only
 * an event naming a step changes that step (a rerun names the steps it resets), so the
 * others are as stored and are not written again.
 */
function changedSteps(
  created: boolean,
  appended: readonly RunEvent[],
  state: RunState,
): StepState[] {
  if (created) return Object.values(state.steps);
  const ids = new Set<string>();
  for (const event of appended) {
    if ("step" in event) ids.add(event.step);
    else if (event.type === "run.retried") for (const id of event.steps) ids.add(id);
  }
  return [...ids].flatMap((id) => state.steps[id] ?? []);
}

/**
 * The run-level fields of a state that change after creation, as text to compare: the
 * others (meta, inputs, trigger, parent, group, createdAt) are written once, with the
 * first decision.
 */
function runLevelOf(state: RunState): string {
  return JSON.stringify([
    state.status,
    state.runAttempt,
    state.outputs,
    state.finishedAt ?? null,
    state.reason ?? null,
  ]);
}
