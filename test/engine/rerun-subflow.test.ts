import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide } from "../../app/engine/index.js";
import { HOUR, TestRun, flow } from "./helpers.js";

void describe("sub-flows", () => {
  void it("starts a sub-run and takes its result from attempt.finished; times out with cancel-sub-run", () => {
    const run = new TestRun(
      flow({
        steps: {
          sub: { flow: "child", timeout: "1h" },
          b: { needs: "sub", run: "${{ steps.sub.outputs.v }}" },
        },
      }),
    );
    const first = run.decide(0);
    assert.equal(first.wakeAt, HOUR);
    run.finish("sub", 1, "success", { outputs: { v: "ok" } }).decide(1);
    assert.equal(run.result("sub"), "success");

    const slow = new TestRun(flow({ steps: { sub: { flow: "child", timeout: "1h" } } }));
    slow.decide(0);
    const timedOut = slow.decide(HOUR);
    assert.deepEqual(timedOut.effects[0], {
      type: "cancel-sub-run",
      key: "run-1/sub/1",
      step: "sub",
      attempt: 1,
    });
    assert.equal(slow.state.status, "failure");
  });

  void it("has no default timeout for flow steps", () => {
    const run = new TestRun(flow({ timeout: "365d", steps: { sub: { flow: "child" } } }));
    assert.equal(run.decide(0).wakeAt, 365 * 24 * HOUR);
  });

  void it("reports the end to the parent run with outputs", () => {
    const run = new TestRun(
      flow({ outputs: { v: "${{ steps.a.outputs.v }}" }, steps: { a: { run: "a" } } }),
    );
    run.history[0] = {
      ...run.history[0],
      parent: { runId: "p", step: "sub", attempt: 2 },
    } as (typeof run.history)[number];
    run.decide(0);
    const end = run.finish("a", 1, "success", { outputs: { v: "7" } }).decide(1);
    assert.deepEqual(end.effects, [
      {
        type: "run-ended",
        key: "run-1/run-ended/1",
        status: "success",
        outputs: { v: "7" },
        parent: { runId: "p", step: "sub", attempt: 2 },
      },
    ]);
  });
});

void describe("rerun", () => {
  const threeSteps = () =>
    flow({
      steps: {
        a: { run: "a" },
        b: { needs: "a", run: "b" },
        c: { needs: "b", run: "c" },
        d: { run: "d" },
      },
    });

  void it("keeps succeeded steps, reruns the others, and continues attempt numbers", () => {
    const run = new TestRun(threeSteps());
    run.decide(0);
    run
      .finish("a", 1, "success", { outputs: { x: "1" } })
      .finish("d", 1, "success")
      .decide(1);
    run.finish("b", 1, "failure").decide(2);
    assert.equal(run.state.status, "failure");
    run.add({ type: "run.retry-requested", at: 3, by: "alice" });
    const rerun = run.decide(3);
    assert.deepEqual(rerun.events[0], {
      type: "run.retried",
      at: 3,
      runAttempt: 2,
      steps: ["b", "c"],
    });
    assert.deepEqual(
      rerun.effects.map((effect) => effect.type === "execute" && effect.key),
      ["run-1/b/2"],
    );
    assert.equal(run.state.status, "running");
    assert.deepEqual(run.state.steps.a?.outputs, { x: "1" });
    run.finish("b", 2, "success").decide(4);
    run.finish("c", 1, "success").decide(5); // c never started before: its first attempt
    assert.equal(run.state.status, "success");
    assert.equal(run.state.runAttempt, 2);
  });

  void it("reruns from a named step and everything that needs it", () => {
    const run = new TestRun(threeSteps());
    run.decide(0);
    run.finish("a", 1, "success").finish("d", 1, "success").decide(1);
    run.finish("b", 1, "success").decide(2);
    run.finish("c", 1, "success").decide(3);
    run.add({ type: "run.retry-requested", at: 4, by: "alice", fromStep: "b" });
    assert.deepEqual(run.decide(4).events[0], {
      type: "run.retried",
      at: 4,
      runAttempt: 2,
      steps: ["b", "c"],
    });
  });

  void it("ignores a retry request on a run that has not finished", () => {
    const run = new TestRun(threeSteps());
    run.decide(0);
    run.add({ type: "run.retry-requested", at: 1, by: "alice" });
    assert.deepEqual(run.decide(1).events, []);
    run.finish("a", 1, "failure").finish("d", 1, "success").decide(2);
    assert.equal(run.state.status, "failure");
    assert.equal(run.state.runAttempt, 1);
    assert.deepEqual(decide(run.flow, run.history, 3).events, []);
  });
});
