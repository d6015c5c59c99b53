/** Test helpers: flows with defaults applied, and a tiny runtime that keeps a history. */
import { flowDefinition } from "../../flows-schema/schema.js";
import type { FlowInput } from "../../flows-schema/schema.js";
import { decide } from "../../app/engine/index.js";
import type {
  Decision,
  Effect,
  FlowDefinition,
  Json,
  Millis,
  NewRunEvent,
  RunEvent,
  RunMeta,
} from "../../app/engine/index.js";

export function flow(input: FlowInput): FlowDefinition {
  return flowDefinition.parse(input);
}

export const META: RunMeta = {
  id: "run-1",
  number: 7,
  sha: "abc123",
  repository: "acme/app",
  url: "https://baton.example/runs/run-1",
  actor: "starter",
};

export const MIN = 60_000;
export const HOUR = 60 * MIN;

/** Holds a run's history like the runtime does: inputs appended, decisions appended. */
export class TestRun {
  readonly history: RunEvent[] = [];
  readonly effects: Effect[] = [];
  last: Decision | undefined;

  constructor(
    readonly flow: FlowDefinition,
    options: { inputs?: Record<string, Json>; at?: Millis; admit?: boolean; actor?: string } = {},
  ) {
    const at = options.at ?? 0;
    this.add({
      type: "run.created",
      at,
      meta: { ...META, actor: options.actor ?? META.actor },
      inputs: options.inputs ?? {},
      trigger: { event: "manual", payload: {} },
    });
    if (options.admit !== false) this.add({ type: "run.admitted", at });
  }

  add(event: NewRunEvent): this {
    this.history.push({ ...event, seq: this.history.length + 1 });
    return this;
  }

  /** decide at `now`, append its events; returns the decision. */
  decide(now: Millis): Decision {
    const decision = decide(this.flow, this.history, now);
    for (const event of decision.events) this.add({ ...event, at: now });
    this.effects.push(...decision.effects);
    this.last = decision;
    return decision;
  }

  finish(
    step: string,
    attempt: number,
    outcome: "success" | "failure",
    extra: Partial<{ outputs: Record<string, string>; error: string; retryable: boolean }> = {},
    at = 0,
  ): this {
    return this.add({
      type: "attempt.finished",
      at,
      step,
      attempt,
      outcome,
      outputs: extra.outputs ?? {},
      ...extra,
    });
  }

  get state() {
    if (!this.last) throw new Error("decide first");
    return this.last.state;
  }

  result(step: string): string | undefined {
    return this.state.steps[step]?.result;
  }

  eventsOf(type: RunEvent["type"]): RunEvent[] {
    return this.history.filter((event) => event.type === type);
  }
}
