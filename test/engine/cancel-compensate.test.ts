import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../app/engine/index.js";
import { TestRun, flow } from "./helpers.js";

void describe("cancellation", () => {
  void it("cancels running attempts; always() steps still run; then run.finished cancelled", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a" },
          sub: { flow: "child", with: { x: "${{ inputs.x }}" } },
          gate: { approval: {} },
          b: { needs: "a", run: "b" },
          cleanup: { needs: ["a", "sub"], if: "${{ always() }}", run: "cleanup" },
          notify: { needs: "a", if: "cancelled()", run: "notify" },
        },
      }),
      { inputs: { x: 1 } },
    );
    const first = run.decide(0);
    assert.deepEqual(
      first.effects.find((effect) => effect.type === "start-sub-run"),
      {
        type: "start-sub-run",
        key: "run-1/sub/1",
        step: "sub",
        attempt: 1,
        flow: "child",
        inputs: { x: "1" },
      },
    );
    run.add({ type: "run.cancel-requested", at: 1, by: "alice", reason: "wrong version" });
    const cancelled = run.decide(1);
    assert.deepEqual(
      cancelled.effects.map((effect) => [effect.type, "step" in effect ? effect.step : ""]),
      [
        ["cancel", "a"],
        ["cancel-sub-run", "sub"],
        ["execute", "cleanup"],
        ["execute", "notify"],
      ],
    );
    assert.equal(run.result("a"), "cancelled");
    assert.equal(run.result("gate"), "cancelled");
    assert.equal(run.result("b"), "cancelled");
    assert.equal(run.state.steps.b?.reason, "cancelled: cancelled by alice: wrong version");
    assert.equal(run.state.status, "running");
    run.finish("a", 1, "success").decide(2); // late: ignored
    assert.equal(run.result("a"), "cancelled");
    run.finish("cleanup", 1, "success").finish("notify", 1, "success").decide(3);
    assert.equal(run.state.status, "cancelled");
    assert.deepEqual(
      run.last?.effects.map((effect) => effect.type),
      ["run-ended"],
    );
  });

  void it("cancels a queued run at once, freeing its concurrency group", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a" } } }), { admit: false });
    run.history[0] = { ...run.history[0], concurrencyGroup: "g" } as (typeof run.history)[number];
    run.add({ type: "run.cancel-requested", at: 0, by: "alice", reason: "" });
    const decision = run.decide(0);
    assert.equal(decision.state.status, "cancelled");
    assert.deepEqual(decision.effects, [
      {
        type: "run-ended",
        key: "run-1/run-ended/1",
        status: "cancelled",
        outputs: {},
        concurrencyGroup: "g",
      },
    ]);
  });

  void it("cancels a step waiting for its retry", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a", retry: 3 } } }));
    run.decide(0);
    run.finish("a", 1, "failure").decide(1);
    run.add({ type: "run.cancel-requested", at: 2, by: "alice", reason: "" }).decide(2);
    assert.equal(run.result("a"), "cancelled");
    assert.equal(run.state.status, "cancelled");
  });
});

void describe("compensation", () => {
  void it("undoes succeeded steps in reverse order of completion, one at a time", () => {
    const run = new TestRun(
      flow({
        steps: {
          first: {
            run: "one",
            "runs-on": ["prod"],
            compensate: "undo-one ${{ steps.first.outputs.id }}",
          },
          second: { run: "two", compensate: { workflow: "rollback.yml", with: { v: "x" } } },
          plain: { run: "plain" },
          last: { needs: ["first", "second", "plain"], run: "last" },
        },
      }),
    );
    run.decide(0);
    run.finish("second", 1, "success").decide(1);
    run.finish("first", 1, "success", { outputs: { id: "42" } }).decide(2);
    run.finish("plain", 1, "success").decide(3);
    const failed = run.finish("last", 1, "failure", { error: "boom" }).decide(4);
    assert.equal(run.state.status, "compensating");
    assert.deepEqual(failed.effects, [
      {
        type: "compensate",
        key: "run-1/first/1/compensate",
        step: "first",
        kind: "run",
        spec: { run: "undo-one ${BATON_EXPR_1}", "runs-on": ["prod"] },
        env: { BATON_EXPR_1: "42" },
      },
    ]);
    assert.deepEqual(decide(run.flow, run.history, 5).events, []);
    const next = run
      .add({ type: "compensation.finished", at: 5, step: "first", outcome: "success" })
      .decide(5);
    assert.deepEqual(
      next.effects.map((effect) => effect.type === "compensate" && [effect.step, effect.kind]),
      [["second", "workflow"]],
    );
    run
      .add({
        type: "compensation.finished",
        at: 6,
        step: "second",
        outcome: "failure",
        error: "no",
      })
      .decide(6);
    assert.equal(run.state.status, "failure");
    assert.equal(run.state.reason, "failed: last; compensation failed: second");
    assert.equal(run.state.steps.first?.compensation, "success");
    assert.deepEqual(
      run.last?.effects.map((effect) => effect.type),
      ["run-ended"],
    );
  });

  void it("compensates when the run is cancelled, and not when it succeeds", () => {
    const ok = new TestRun(flow({ steps: { a: { run: "a", compensate: "undo" } } }));
    ok.decide(0);
    ok.finish("a", 1, "success").decide(1);
    assert.equal(ok.state.status, "success");

    const run = new TestRun(
      flow({ steps: { a: { run: "a", compensate: "undo" }, b: { needs: "a", run: "b" } } }),
    );
    run.decide(0);
    run.finish("a", 1, "success").decide(1);
    run.add({ type: "run.cancel-requested", at: 2, by: "alice", reason: "stop" }).decide(2);
    assert.equal(run.state.status, "compensating");
    run.add({ type: "compensation.finished", at: 3, step: "a", outcome: "success" }).decide(3);
    assert.equal(run.state.status, "cancelled");
  });
});
