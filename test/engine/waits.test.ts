import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { HOUR, MIN, TestRun, flow } from "./helpers.js";

void describe("wait steps", () => {
  void it("wait for: a timer from the step's start", () => {
    const run = new TestRun(
      flow({ steps: { a: { run: "a" }, w: { needs: "a", wait: { for: "1h30m" } } } }),
    );
    run.decide(0);
    const started = run.finish("a", 1, "success").decide(5 * MIN);
    assert.equal(started.wakeAt, 5 * MIN + 90 * MIN);
    assert.equal(run.state.steps.w?.status, "waiting");
    assert.equal(run.state.steps.w?.reason, "for 1h30m");
    run.decide(95 * MIN);
    assert.equal(run.result("w"), "success");
    assert.equal(run.state.status, "success");
  });

  void it("wait until: an ISO timestamp after expansion", () => {
    const at = Date.parse("2030-01-01T00:00:00Z");
    const run = new TestRun(flow({ steps: { w: { wait: { until: "${{ inputs.when }}" } } } }), {
      inputs: { when: "2030-01-01T00:00:00Z" },
      at: at - HOUR,
    });
    assert.equal(run.decide(at - HOUR).wakeAt, at);
    run.decide(at);
    assert.equal(run.result("w"), "success");
  });

  void it("wait until: an invalid timestamp fails the step", () => {
    const run = new TestRun(flow({ steps: { w: { wait: { until: "next tuesday" } } } }));
    run.decide(0);
    assert.equal(run.result("w"), "failure");
    assert.match(run.state.steps.w?.reason ?? "", /not an ISO 8601 timestamp/);
  });

  void it("wait signal: buffered signals satisfy a later wait; each signal is consumed once", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a" },
          w1: { needs: "a", wait: { signal: "go" } },
          w2: { needs: "w1", wait: { signal: "go" } },
        },
      }),
    );
    run.add({ type: "signal.received", at: 0, name: "go", payload: { n: 1 }, by: "ci" });
    run.decide(0);
    assert.equal(run.state.steps.a?.status, "running");
    run.finish("a", 1, "success").decide(1);
    assert.equal(run.result("w1"), "success");
    assert.deepEqual(run.state.steps.w1?.outputs, { payload: '{"n":1}', signal: "go" });
    assert.equal(run.state.steps.w2?.status, "waiting");
    assert.equal(run.state.steps.w2?.reason, "signal go");
    run.add({ type: "signal.received", at: 2, name: "other", payload: null, by: "ci" }).decide(2);
    assert.equal(run.state.steps.w2?.status, "waiting");
    run.add({ type: "signal.received", at: 3, name: "go", payload: "two", by: "ci" }).decide(3);
    assert.deepEqual(run.state.steps.w2?.outputs, { payload: '"two"', signal: "go" });
    assert.equal(run.state.status, "success");
  });

  void it("wait signal: times out", () => {
    const run = new TestRun(flow({ steps: { w: { wait: { signal: "go", timeout: "1h" } } } }));
    assert.equal(run.decide(0).wakeAt, HOUR);
    const end = run.decide(HOUR);
    assert.equal(run.result("w"), "failure");
    assert.equal(run.state.steps.w?.reason, "timed out after 1h");
    assert.ok(end.effects.every((effect) => effect.type !== "cancel"));
  });
});
