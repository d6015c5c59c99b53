/** The flow's step graph: kinds, needs, and the transitive closures the engine asks about. */
import { STEP_KINDS } from "../../flows-schema/schema.js";
import type { FlowDefinition, StepDefinition, StepKind } from "../../flows-schema/schema.js";

/** The step's kind: the one kind key it has. The schema's semantic checks guarantee one. */
export function stepKind(step: StepDefinition): StepKind {
  const kind = STEP_KINDS.find((name) => step[name] !== undefined);
  if (!kind)
    throw new Error("step has no kind (workflow, run, agent, approval, wait, flow, github)");
  return kind;
}

export function needsOf(step: StepDefinition): string[] {
  if (step.needs === undefined) return [];
  return typeof step.needs === "string" ? [step.needs] : [...step.needs];
}

/** Every step the given one needs, directly or through others. */
export function transitiveNeeds(flow: FlowDefinition, id: string): Set<string> {
  const found = new Set<string>();
  const visit = (current: string): void => {
    const step = flow.steps[current];
    if (!step) return;
    for (const need of needsOf(step)) {
      if (!found.has(need)) {
        found.add(need);
        visit(need);
      }
    }
  };
  visit(id);
  return found;
}

/** The given step and every step that needs it, directly or through others. */
export function withDependents(flow: FlowDefinition, id: string): Set<string> {
  const found = new Set<string>([id]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const [other, step] of Object.entries(flow.steps)) {
      if (!found.has(other) && needsOf(step).some((need) => found.has(need))) {
        found.add(other);
        grew = true;
      }
    }
  }
  return found;
}
