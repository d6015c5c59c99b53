import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Scenario, StepModel, StepPlan } from "./simulate.js";
import { outcome, prng, simulate } from "./simulate.js";

const conditionArb: fc.Arbitrary<string | boolean | undefined> = fc.constantFrom(
  undefined,
  undefined,
  undefined,
  "${{ always() }}",
  "failure()",
  "${{ success() }}",
  true,
  false,
  "${{ run.attempt == 1 }}",
);

const modelArb: fc.Arbitrary<StepModel> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("run" as const),
      outcomes: fc.array(fc.record({ ok: fc.boolean(), retryable: fc.boolean() }), {
        minLength: 1,
        maxLength: 3,
      }),
      compensationOk: fc.option(fc.boolean(), { nil: undefined }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("wait-for" as const),
      minutes: fc.integer({ min: 1, max: 20 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("wait-signal" as const), signalDelay: fc.nat(5) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant("approval" as const),
      required: fc.constantFrom(1 as const, 2 as const),
      approve: fc.boolean(),
    }),
  },
);

const scenarioArb: fc.Arbitrary<Scenario> = fc
  .integer({ min: 1, max: 12 })
  .chain((count) =>
    fc.tuple(
      ...Array.from(
        { length: count },
        (_, index) =>
          fc.record({
            needs:
              index === 0 ? fc.constant([]) : fc.uniqueArray(fc.nat(index - 1), { maxLength: 3 }),
            model: modelArb,
            condition: conditionArb,
            retry: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
            continueOnError: fc.boolean(),
          }) as fc.Arbitrary<StepPlan>,
      ),
    ),
  )
  .map((steps) => ({ steps }));

const NUM_RUNS = 300;

void describe("properties of decide under a simulated runtime", () => {
  void it("reaches the same final state whatever the delivery order, duplicates and delays", () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer(), (scenario, seed) => {
        const ordered = simulate(scenario);
        const shuffled = simulate(scenario, { random: prng(seed) });
        assert.deepEqual(ordered.violations, []);
        assert.deepEqual(shuffled.violations, []);
        // (3) every run ends within a bounded number of decide calls.
        assert.ok(ordered.ended, `ordered run did not end: ${ordered.final.status}`);
        assert.ok(shuffled.ended, `shuffled run did not end: ${shuffled.final.status}`);
        // (1) same final state.
        assert.deepEqual(outcome(shuffled.final), outcome(ordered.final));
      }),
      { numRuns: NUM_RUNS },
    );
  });
});
