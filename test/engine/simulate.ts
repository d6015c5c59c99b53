/**
 * A simulation harness that plays the runtime for property tests: it holds a run's
 * history, calls `decide`, appends the decisions, turns effects into pending results, and
 * delivers inputs (attempt results, signals, approvals, compensation results) in a random
 * order, with random duplicates and random delays.
 *
 * Outcomes are fixed per (step, attempt) up front (`Scenario`), so they do not depend on the
 * delivery order: only the engine could make the final state depend on it.
 */
import { decide, replay } from "../../app/engine/index.js";
import type {
  ApproverFacts,
  FlowDefinition,
  Millis,
  NewRunEvent,
  RunEvent,
  RunState,
} from "../../app/engine/index.js";
import { flowDefinition } from "../../flows-schema/schema.js";
import type { FlowInput } from "../../flows-schema/schema.js";
import { HOUR, META } from "./helpers.js";

export type StepModel =
  | {
      kind: "run";
      outcomes: { ok: boolean; retryable: boolean }[];
      compensationOk?: boolean;
      /** A `flow` step (a sub-run) rather than a `run` step: same outcomes, other effects. */
      subflow?: boolean;
    }
  | { kind: "wait-for"; minutes: number }
  | { kind: "wait-signal"; signalDelay: number }
  | { kind: "approval"; required: 1 | 2; approve: boolean };

export interface StepPlan {
  needs: number[];
  model: StepModel;
  condition?: string | boolean;
  retry?: number;
  continueOnError?: boolean;
}

export interface Scenario {
  steps: StepPlan[];
}

export const stepId = (index: number): string => `s${index}`;

/** The flow a scenario describes. */
export function scenarioFlow(scenario: Scenario): FlowDefinition {
  const steps: FlowInput["steps"] = {};
  scenario.steps.forEach((plan, index) => {
    const id = stepId(index);
    const step: FlowInput["steps"][string] = {};
    if (plan.needs.length > 0) step.needs = plan.needs.map(stepId);
    if (plan.condition !== undefined) step.if = plan.condition;
    if (plan.continueOnError) step["continue-on-error"] = true;
    const model = plan.model;
    switch (model.kind) {
      case "run":
        if (model.subflow) {
          step.flow = `child-${id}`;
          step.with = Object.fromEntries(
            plan.needs.map((need) => [stepId(need), `\${{ steps.${stepId(need)}.outputs.out }}`]),
          );
        } else {
          step.run = `echo ${id} ${plan.needs.map((need) => `\${{ steps.${stepId(need)}.outputs.out }}`).join(" ")}`;
        }
        if (plan.retry !== undefined)
          step.retry = { attempts: plan.retry, delay: "5s", backoff: 2 };
        if (model.compensationOk !== undefined) step.compensate = `undo ${id}`;
        break;
      case "wait-for":
        step.wait = { for: `${model.minutes}m` };
        break;
      case "wait-signal":
        step.wait = { signal: `go-${id}` };
        break;
      case "approval":
        step.approval = { required: model.required, approvers: { users: ["ann", "bob", "cyd"] } };
        break;
    }
    steps[id] = step;
  });
  const outputs: Record<string, string> = {};
  scenario.steps.forEach((_, index) => {
    outputs[`o${index}`] =
      `\${{ steps.${stepId(index)}.outputs.out }}/\${{ steps.${stepId(index)}.result }}`;
  });
  return flowDefinition.parse({ steps, outputs });
}

/** A small deterministic PRNG (mulberry32), seeded by fast-check. */
export function prng(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Delivery {
  /** Random order, duplicates and delays; `undefined`: in order, once, without delay. */
  random?: () => number;
  /** Also deliver a `run.cancel-requested`, at a random moment among the other inputs. */
  cancel?: boolean;
  /** Once the run has ended, request a rerun (once), and play it to its end too. */
  rerun?: { fromStep?: string };
}

export interface SimulationResult {
  history: RunEvent[];
  final: RunState;
  decideCalls: number;
  ended: boolean;
  /** Violations of the properties checked along the way (empty when all hold). */
  violations: string[];
}

const ELIGIBLE: ApproverFacts = { permission: "write", teams: [], codeowner: false };
const READ_ONLY: ApproverFacts = { permission: "read", teams: [], codeowner: false };

export const MAX_DECIDE_CALLS = 3_000;

export function simulate(scenario: Scenario, delivery: Delivery = {}): SimulationResult {
  const flow = scenarioFlow(scenario);
  const random = delivery.random;
  const history: RunEvent[] = [];
  const violations: string[] = [];
  const keys = new Set<string>();
  let now: Millis = 1_000_000;
  let runEnded = 0;
  const bag: NewRunEvent[] = [];

  const append = (event: NewRunEvent): void => {
    history.push({ ...event, at: now, seq: history.length + 1 });
  };
  append({
    type: "run.created",
    at: now,
    meta: META,
    inputs: {},
    trigger: { event: "manual", payload: {} },
  });
  append({ type: "run.admitted", at: now });
  // Signals are sent independently of the run's progress: some arrive before their step waits.
  const pushSignals = (): void =>
    scenario.steps.forEach((plan, index) => {
      if (plan.model.kind === "wait-signal") {
        bag.push({
          type: "signal.received",
          at: 0,
          name: `go-${stepId(index)}`,
          payload: { from: stepId(index) },
          by: "ci",
        });
      }
    });
  pushSignals();

  if (delivery.cancel)
    bag.push({ type: "run.cancel-requested", at: 0, by: "alice", reason: "stop" });
  let rerunRequested = false;
  const modelOf = (step: string): StepModel | undefined =>
    scenario.steps[Number(step.slice(1))]?.model;
  let calls = 0;
  let state: RunState | undefined;
  while (calls < MAX_DECIDE_CALLS) {
    calls += 1;
    const decision = decide(flow, history, now);
    const before = history.length;
    for (const event of decision.events) append(event);
    state = decision.state;

    // (2) no attempt starts before all its needs are done (in the state just before it).
    for (const event of history.slice(before)) {
      if (event.type !== "attempt.started") continue;
      const needs = scenario.steps[Number(event.step.slice(1))]?.needs ?? [];
      const prior = replay(flow, history.slice(0, event.seq - 1));
      for (const need of needs) {
        if (prior.steps[stepId(need)]?.status !== "done") {
          violations.push(
            `${event.step} attempt ${event.attempt} started before its need ${stepId(need)} finished`,
          );
        }
      }
    }
    // (5) replay of the history is the decision's state.
    if (JSON.stringify(replay(flow, history)) !== JSON.stringify(decision.state)) {
      violations.push(`replay differs from decision.state at seq ${history.length}`);
    }
    // Fixpoint: deciding again at the same moment decides nothing.
    const again = decide(flow, history, now);
    if (again.events.length > 0 || again.effects.length > 0)
      violations.push(`decide is not a fixpoint at seq ${history.length}`);

    for (const effect of decision.effects) {
      // (4) every idempotency key at most once (per effect type: a cancel shares its attempt's key).
      const key = `${effect.type}:${effect.key}`;
      if (keys.has(key)) violations.push(`effect ${key} emitted twice`);
      keys.add(key);
      switch (effect.type) {
        case "execute":
        case "start-sub-run": {
          const model = modelOf(effect.step);
          if (model?.kind !== "run") break;
          const outcome = model.outcomes[effect.attempt - 1] ?? { ok: true, retryable: true };
          bag.push({
            type: "attempt.finished",
            at: 0,
            step: effect.step,
            attempt: effect.attempt,
            outcome: outcome.ok ? "success" : "failure",
            outputs: outcome.ok ? { out: `${effect.step}-${effect.attempt}` } : {},
            ...(outcome.ok ? {} : { error: `${effect.step} failed`, retryable: outcome.retryable }),
          });
          break;
        }
        case "request-approval": {
          const model = modelOf(effect.step);
          if (model?.kind !== "approval") break;
          const submit = (
            user: string,
            decision: "approve" | "reject",
            facts: ApproverFacts,
          ): void => {
            bag.push({
              type: "approval.submitted",
              at: 0,
              step: effect.step,
              user,
              decision,
              via: "cli",
              comment: `${user} says ${decision}`,
              facts,
            });
          };
          // An ineligible approval always arrives too: it must never count.
          submit("eve", "approve", READ_ONLY);
          if (model.approve) {
            submit("ann", "approve", ELIGIBLE);
            if (model.required === 2) submit("bob", "approve", ELIGIBLE);
          } else {
            // Fewer approvals than required, and one eligible rejection: rejected in any order.
            if (model.required === 2) submit("ann", "approve", ELIGIBLE);
            submit("cyd", "reject", ELIGIBLE);
          }
          break;
        }
        case "compensate": {
          const model = modelOf(effect.step);
          const ok = model?.kind === "run" ? model.compensationOk !== false : true;
          bag.push({
            type: "compensation.finished",
            at: 0,
            step: effect.step,
            outcome: ok ? "success" : "failure",
          });
          break;
        }
        case "run-ended":
          runEnded += 1;
          break;
        case "cancel":
        case "cancel-sub-run":
          break;
      }
    }

    const terminal =
      state.status === "success" || state.status === "failure" || state.status === "cancelled";
    if (terminal && delivery.rerun && !rerunRequested) {
      rerunRequested = true;
      bag.length = 0;
      append({ type: "run.retry-requested", at: now, by: "alice", ...delivery.rerun });
      // Signals were consumed by the first attempt: whoever sent them sends them again.
      pushSignals();
      continue;
    }
    if (terminal && bag.length === 0) break;
    if (terminal && !random) break;

    if (bag.length === 0 && decision.wakeAt === undefined) {
      if (!terminal)
        violations.push(`stuck: status ${state.status}, nothing pending and no wakeAt`);
      break;
    }
    // Choose what happens next: a delivery, or the timer.
    // A timer may fire before pending deliveries, but only a near one (a wait, a retry):
    // jumping to a step or run timeout while results are still on their way would change
    // outcomes, which a real runtime delivering within seconds never sees.
    const fireTimer =
      decision.wakeAt !== undefined &&
      (bag.length === 0 ||
        (random !== undefined && decision.wakeAt - now < HOUR && random() < 0.2));
    if (fireTimer && decision.wakeAt !== undefined) {
      now = Math.max(now, decision.wakeAt);
      continue;
    }
    const index = random ? Math.floor(random() * bag.length) : 0;
    const [event] = bag.splice(index, 1);
    if (!event) break;
    if (random) {
      now += Math.floor(random() * 30_000); // up to 30 s late: well within every timeout
      if (random() < 0.25) bag.push(event); // delivered again later
    }
    append(event);
    if (terminal) {
      // Late and duplicate deliveries after the end must change nothing.
      continue;
    }
  }
  const runAttempts = history.filter((event) => event.type === "run.retried").length + 1;
  if (runEnded > runAttempts)
    violations.push(`run-ended emitted ${runEnded} times for ${runAttempts} run attempts`);
  const final = state ?? replay(flow, history);
  const ended =
    final.status === "success" || final.status === "failure" || final.status === "cancelled";
  return { history, final, decideCalls: calls, ended, violations };
}

/** What must not depend on delivery: each step's result and outputs, the run's status and outputs. */
export function outcome(state: RunState): unknown {
  return {
    status: state.status,
    outputs: state.outputs,
    steps: Object.fromEntries(
      Object.entries(state.steps).map(([id, step]) => [
        id,
        { result: step.result, outputs: step.outputs, compensation: step.compensation },
      ]),
    ),
  };
}
