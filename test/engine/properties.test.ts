import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import type { Scenario, StepModel, StepPlan } from "./simulate.js";
import { outcome, prng, scenarioFlow, simulate } from "./simulate.js";
import { decide, decideOn, detach, fold, replay } from "../../app/engine/index.js";
import { apply } from "../../app/engine/replay.js";

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
  "cancelled()",
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
      subflow: fc.integer({ min: 0, max: 4 }).map((n) => n === 0),
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

/** 300 by default (the suite stays within seconds); set BATON_PROPERTY_RUNS to hunt longer. */
const NUM_RUNS = Number(process.env.BATON_PROPERTY_RUNS ?? 300);

void describe("properties of decide under a simulated runtime", () => {
  void it("an incremental fold (a cached fold moved on by the events since) is the full fold, and decides the same", () => {
    fc.assert(
      fc.property(
        scenarioArb,
        fc.integer(),
        fc.boolean(),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 6 }),
        fc.nat(3_600_000),
        (scenario, seed, cancel, cutsAt, later) => {
          const flow = scenarioFlow(scenario);
          const { history } = simulate(scenario, { random: prng(seed), cancel });
          const cuts = [...new Set(cutsAt.map((x) => 1 + Math.floor(x * (history.length - 1))))]
            .filter((cut) => cut >= 1 && cut <= history.length)
            .sort((a, b) => a - b);
          // The runtime's path: a fold kept between decisions, each moved on from a copy.
          let cached = fold(flow, history.slice(0, cuts[0] ?? 1));
          let at = cuts[0] ?? 1;
          for (const cut of [...cuts.slice(1), history.length]) {
            const kept = JSON.stringify(cached);
            const moved = detach(cached);
            for (const event of history.slice(at, cut)) apply(moved, event);
            const prefix = history.slice(0, cut);
            assert.deepEqual(moved, fold(flow, prefix), "the incremental fold is the full fold");
            const now = (prefix.at(-1)?.at ?? 0) + later;
            assert.deepEqual(
              decideOn(flow, detach(moved), now),
              decide(flow, prefix, now),
              "deciding on it decides the same",
            );
            assert.equal(JSON.stringify(cached), kept, "the cached fold is unchanged");
            cached = moved;
            at = cut;
          }
        },
      ),
      { numRuns: NUM_RUNS },
    );
  });

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

  void it("keeps its invariants and ends when the run is cancelled at a random moment", () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer(), (scenario, seed) => {
        const result = simulate(scenario, { random: prng(seed), cancel: true });
        assert.deepEqual(result.violations, []);
        assert.ok(result.ended, `run did not end: ${result.final.status}`);
        // A cancel that arrives while the run is queued or running wins; once the run is
        // compensating or over, it is recorded and changes nothing.
        const cancel = result.history.find((event) => event.type === "run.cancel-requested");
        assert.ok(cancel);
        const before = replay(
          scenarioFlow(scenario),
          result.history.slice(0, cancel.seq - 1),
        ).status;
        if (before === "running" || before === "queued")
          assert.equal(result.final.status, "cancelled");
        else assert.notEqual(result.final.status, "cancelled");
      }),
      { numRuns: Math.ceil(NUM_RUNS / 2) },
    );
  });

  void it("reruns keep succeeded steps, continue attempt numbers, and end", () => {
    fc.assert(
      fc.property(scenarioArb, fc.integer(), fc.nat(11), (scenario, seed, from) => {
        const fromStep = from < scenario.steps.length ? `s${from}` : undefined;
        const first = simulate(scenario);
        const rerun = simulate(scenario, {
          random: prng(seed),
          rerun: fromStep === undefined ? {} : { fromStep },
        });
        assert.deepEqual(rerun.violations, []);
        assert.ok(rerun.ended, `rerun did not end: ${rerun.final.status}`);
        const retried = rerun.history.find((event) => event.type === "run.retried");
        assert.ok(retried?.type === "run.retried");
        assert.equal(rerun.final.runAttempt, 2);
        for (const [id, step] of Object.entries(first.final.steps)) {
          const again = rerun.final.steps[id];
          if (!retried.steps.includes(id)) {
            assert.equal(step.result, "success", `${id} kept although it did not succeed`);
            assert.deepEqual(again?.outputs, step.outputs);
          }
          if (fromStep === id) assert.ok(retried.steps.includes(id));
        }
        // Attempt numbers never repeat within a step.
        const starts = rerun.history.filter((event) => event.type === "attempt.started");
        const seen = new Set(starts.map((event) => `${event.step}/${event.attempt}`));
        assert.equal(seen.size, starts.length);
      }),
      { numRuns: Math.ceil(NUM_RUNS / 2) },
    );
  });
});
