import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../app/engine/index.js";
import { HOUR, MIN, TestRun, flow } from "./helpers.js";

void describe("retries and timeouts", () => {
  void it("retries a failure after delay * backoff^(k-1), capped by max-delay", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a", retry: { attempts: 4, delay: "10s", backoff: 3, "max-delay": "60s" } },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "failure", { error: "flaky" }).decide(1000);
    assert.equal(run.state.steps.a?.status, "retrying");
    assert.equal(run.state.steps.a?.retryAt, 11_000);
    assert.equal(run.last?.wakeAt, 11_000);
    assert.equal(run.decide(5000).events.length, 0); // too early
    const second = run.decide(11_000);
    assert.deepEqual(
      second.effects.map((effect) => effect.type === "execute" && effect.key),
      ["run-1/a/2"],
    );
    run.finish("a", 2, "failure").decide(12_000);
    assert.equal(run.state.steps.a?.retryAt, 12_000 + 30_000);
    run.decide(42_000);
    run.finish("a", 3, "failure").decide(43_000);
    assert.equal(run.state.steps.a?.retryAt, 43_000 + 60_000); // 90s capped to 60s
    run.decide(103_000);
    run.finish("a", 4, "failure", { error: "still flaky" }).decide(104_000);
    assert.equal(run.result("a"), "failure");
    assert.equal(run.state.steps.a?.reason, "still flaky");
    assert.equal(run.state.steps.a?.attempt, 4);
  });

  void it("retry: n uses the default delay of 10s", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a", retry: 2 } } }));
    run.decide(0);
    run.finish("a", 1, "failure").decide(0);
    assert.equal(run.state.steps.a?.retryAt, 10_000);
  });

  void it("does not retry non-retryable failures", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a", retry: 3 } } }));
    run.decide(0);
    run.finish("a", 1, "failure", { error: "bad request", retryable: false }).decide(1);
    assert.equal(run.result("a"), "failure");
  });

  void it("times an attempt out at its deadline, cancels it, retries, and ignores the late result", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a", timeout: "30m", retry: 2 } } }));
    const first = run.decide(0);
    assert.equal(first.wakeAt, 30 * MIN);
    const timedOut = run.decide(30 * MIN);
    assert.deepEqual(
      timedOut.events.map((event) => event.type),
      ["attempt.timed-out", "retry.scheduled"],
    );
    assert.deepEqual(timedOut.effects, [
      { type: "cancel", key: "run-1/a/1", step: "a", attempt: 1 },
    ]);
    run.decide(30 * MIN + 10_000);
    assert.equal(run.state.steps.a?.attempt, 2);
    // The first attempt's result arrives late: ignored.
    run.finish("a", 1, "success").decide(31 * MIN);
    assert.equal(run.state.steps.a?.status, "running");
    run.decide(60 * MIN + 10_000);
    assert.equal(run.result("a"), "failure");
    assert.equal(run.state.steps.a?.reason, "timed out after 30m");
  });

  void it("prefers a reported result over a passed deadline", () => {
    const run = new TestRun(flow({ steps: { a: { run: "a", timeout: "1m" } } }));
    run.decide(0);
    run.finish("a", 1, "success").decide(2 * MIN);
    assert.equal(run.result("a"), "success");
  });

  void it("uses a 6h default step timeout", () => {
    const run = new TestRun(flow({ steps: { a: { workflow: "x.yml" } } }));
    assert.equal(run.decide(0).wakeAt, 6 * HOUR);
  });

  void it("fails the run when the run timeout passes: running steps are cancelled", () => {
    const run = new TestRun(
      flow({
        timeout: "2h",
        steps: { a: { run: "a", timeout: "3h" }, b: { needs: "a", run: "b" } },
      }),
    );
    assert.equal(run.decide(0).wakeAt, 2 * HOUR);
    const end = run.decide(2 * HOUR);
    assert.equal(run.state.status, "failure");
    assert.equal(run.state.reason, "timed out after 2h");
    assert.equal(run.result("a"), "cancelled");
    assert.equal(run.result("b"), "cancelled");
    assert.deepEqual(
      end.effects.map((effect) => effect.type),
      ["cancel", "run-ended"],
    );
    assert.deepEqual(decide(run.flow, run.history, 2 * HOUR).events, []);
  });

  void it("keeps wakeAt at the earliest timer", () => {
    const run = new TestRun(
      flow({ steps: { a: { run: "a", timeout: "1h" }, w: { wait: { for: "10m" } } } }),
    );
    assert.equal(run.decide(0).wakeAt, 10 * MIN);
    assert.equal(run.decide(10 * MIN).wakeAt, HOUR);
  });
});
