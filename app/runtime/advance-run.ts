/**
 * The heart of the runtime: one state change of one run, in the caller's transaction.
 *
 * Lock the run's row, load its history, add the new inputs, ask the engine what happens
 * next, append the inputs and the decisions, update the projections (runs.state, steps)
 * and enqueue the effects and the next timer as tasks. Everything commits together or
 * not at all (DESIGN rule 2), and the row lock makes every process take turns on a run.
 */
import { decide } from "../engine/index.js";
import type { Decision, Millis, NewRunEvent, RunEvent, StepState } from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import type { Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import { appendEvents, loadEvents } from "../store/events.js";
import type { FlowVersion, Run } from "../store/model.js";
import { lockRun, updateRunProjection } from "../store/runs.js";
import { upsertSteps } from "../store/steps.js";
import { deletePendingTimers, enqueueTasks } from "../store/tasks.js";
import { RunNotFoundError } from "./errors.js";
import type { FlowCache } from "./flow-cache.js";
import { tasksForEffects, wakeTask } from "./task-kinds.js";

export interface Advanced {
  run: Run;
  version: FlowVersion;
  /** The history before this change. */
  history: RunEvent[];
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
): Promise<Advanced> {
  const run = await lockRun(tx, runId);
  if (!run) throw new RunNotFoundError(runId);
  const version = await flows.get(tx, run.flowVersionId);
  const history = await loadEvents(tx, runId);
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
  const decision = decide(version.definition, [...history, ...numbered], now);
  const appended = [...numbered];
  for (const event of decision.events) {
    seq += 1;
    appended.push({ ...event, seq });
  }
  const tasks = tasksForEffects(runId, decision.state.runAttempt, decision.effects);
  if (decision.wakeAt !== undefined) tasks.push(wakeTask(runId, decision.wakeAt));
  if (appended.length > 0) {
    await appendEvents(tx, runId, appended);
    await updateRunProjection(tx, runId, decision.state, seq, new Date(now));
    await upsertSteps(tx, runId, changedSteps(run, decision));
    await tx.notify(CHANNELS.runs, runId);
  }
  if (
    TERMINAL_RUN_STATUSES.includes(decision.state.status) &&
    !TERMINAL_RUN_STATUSES.includes(run.status)
  ) {
    // Timers of a finished run (step deadlines, the run's timeout) have nothing left to do.
    await deletePendingTimers(tx, runId);
  }
  await enqueueTasks(tx, tasks);
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

/** Steps whose projection differs from the stored state (all of them for a new run). */
function changedSteps(run: Run, decision: Decision): StepState[] {
  const before = run.state?.steps ?? {};
  return Object.values(decision.state.steps).filter(
    (step) => JSON.stringify(before[step.id]) !== JSON.stringify(step),
  );
}
