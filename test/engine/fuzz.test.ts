/**
 * Robustness: whatever inputs arrive (unknown steps, stale attempts, approvals for steps
 * that are not waiting, cancels and reruns at any moment, long silences), decide never
 * throws, stays a fixpoint, and agrees with replay.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { decide, replay } from "../../app/engine/index.js";
import type { NewRunEvent, RunEvent } from "../../app/engine/index.js";
import { META } from "./helpers.js";
import { scenarioFlow } from "./simulate.js";
import type { Scenario } from "./simulate.js";

const stepName = fc.constantFrom("s0", "s1", "s2", "s3", "s4", "nope");
const facts = fc.record({
  permission: fc.constantFrom("none" as const, "read" as const, "write" as const, "admin" as const),
  teams: fc.constantFrom([], ["acme/release"]),
  codeowner: fc.boolean(),
  stale: fc.option(fc.boolean(), { nil: undefined }),
});

type Junk = { advance: number } | { event: NewRunEvent };

const junkArb: fc.Arbitrary<Junk> = fc.oneof(
  fc.record({ advance: fc.integer({ min: 0, max: 8 * 3_600_000 }) }),
  fc.record({
    event: fc.record({
      type: fc.constant("attempt.finished" as const),
      at: fc.constant(0),
      step: stepName,
      attempt: fc.integer({ min: 0, max: 4 }),
      outcome: fc.constantFrom("success" as const, "failure" as const),
      outputs: fc.constant({ out: "x" }),
      retryable: fc.boolean(),
    }),
  }),
  fc.record({
    event: fc.record({
      type: fc.constant("approval.submitted" as const),
      at: fc.constant(0),
      step: stepName,
      user: fc.constantFrom("ann", "bob", "starter", "eve"),
      decision: fc.constantFrom("approve" as const, "reject" as const),
      via: fc.constantFrom(
        "review" as const,
        "check-run" as const,
        "comment" as const,
        "cli" as const,
      ),
      facts,
    }),
  }),
  fc.record({
    event: fc.record({
      type: fc.constant("signal.received" as const),
      at: fc.constant(0),
      name: fc.constantFrom("go-s0", "go-s1", "go-s2", "other"),
      payload: fc.jsonValue() as fc.Arbitrary<never>,
      by: fc.constant("ci"),
    }),
  }),
  fc.record({
    event: fc.record({
      type: fc.constant("run.cancel-requested" as const),
      at: fc.constant(0),
      by: fc.constant("alice"),
      reason: fc.constant("stop"),
    }),
  }),
  fc.record({
    event: fc.record(
      {
        type: fc.constant("run.retry-requested" as const),
        at: fc.constant(0),
        by: fc.constant("alice"),
        fromStep: stepName,
      },
      { requiredKeys: ["type", "at", "by"] },
    ),
  }),
  fc.record({
    event: fc.record({
      type: fc.constant("compensation.finished" as const),
      at: fc.constant(0),
      step: stepName,
      outcome: fc.constantFrom("success" as const, "failure" as const),
    }),
  }),
  fc.constant({ event: { type: "run.admitted" as const, at: 0 } }),
) as unknown as fc.Arbitrary<Junk>;

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .array(
    fc.record({
      needs: fc.uniqueArray(fc.nat(4), { maxLength: 2 }),
      model: fc.oneof(
        fc.record({
          kind: fc.constant("run" as const),
          outcomes: fc.constant([]),
          compensationOk: fc.constantFrom(true, undefined),
          subflow: fc.boolean(),
        }),
        fc.constant({ kind: "wait-for" as const, minutes: 30 }),
        fc.constant({ kind: "wait-signal" as const, signalDelay: 0 }),
        fc.record({
          kind: fc.constant("approval" as const),
          required: fc.constantFrom(1 as const, 2 as const),
          approve: fc.constant(true),
        }),
      ),
      condition: fc.constantFrom(undefined, "always()", "failure()", "cancelled()"),
      retry: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      continueOnError: fc.boolean(),
    }),
    { minLength: 1, maxLength: 5 },
  )
  // Needs only point backwards, so the graph is a DAG.
  .map((steps) => ({
    steps: steps.map((step, index) => ({
      ...step,
      needs: step.needs.filter((need) => need < index),
    })),
  })) as unknown as fc.Arbitrary<Scenario>;

void describe("decide under arbitrary inputs", () => {
  void it("never throws, stays a fixpoint and agrees with replay", () => {
    fc.assert(
      fc.property(scenarioArb, fc.array(junkArb, { maxLength: 60 }), (scenario, junk) => {
        const flow = scenarioFlow(scenario);
        const history: RunEvent[] = [];
        let now = 0;
        const append = (event: NewRunEvent) =>
          history.push({ ...event, at: now, seq: history.length + 1 });
        append({
          type: "run.created",
          at: 0,
          meta: META,
          inputs: {},
          trigger: { event: "manual", payload: {} },
        });
        for (const item of junk) {
          if ("advance" in item) now += item.advance;
          else append(item.event);
          const decision = decide(flow, history, now);
          for (const event of decision.events) append(event);
          const again = decide(flow, history, now);
          assert.deepEqual(again.events, []);
          assert.deepEqual(again.effects, []);
          assert.deepEqual(replay(flow, history), decision.state);
          if (decision.wakeAt !== undefined) assert.ok(decision.wakeAt > now);
        }
      }),
      { numRuns: 200 },
    );
  });
});
