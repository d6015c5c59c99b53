/** The run's concurrency group, evaluated once when the run is created. */
import { expandTemplate } from "./evaluate.js";
import type { FlowDefinition, Json, RunMeta, Trigger } from "./types.js";

/**
 * The group key and mode, or `undefined` when the flow has no `concurrency`. A string is a
 * group with mode `queue`. Throws `ExpressionEvaluationFailed` when the group cannot be
 * evaluated (the runtime should refuse to create the run, with that message).
 */
export function concurrencyOf(
  flow: FlowDefinition,
  start: { inputs: Record<string, Json>; trigger: Trigger; meta: RunMeta },
): { group: string; mode: "queue" | "cancel-in-progress" | "reject" } | undefined {
  const concurrency = flow.concurrency;
  if (concurrency === undefined) return undefined;
  const { group, mode } =
    typeof concurrency === "string" ? { group: concurrency, mode: "queue" as const } : concurrency;
  const scope = {
    contexts: {
      inputs: start.inputs,
      trigger: { event: start.trigger.event, payload: start.trigger.payload },
      run: {
        id: start.meta.id,
        number: start.meta.number,
        attempt: 1,
        sha: start.meta.sha,
        repository: start.meta.repository,
        url: start.meta.url ?? "",
      },
      env: { ...(flow.env ?? {}) },
      steps: {},
    },
  };
  return { group: expandTemplate(group, scope), mode };
}
