import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, replay } from "../../app/engine/index.js";
import type { RunEvent } from "../../app/engine/index.js";
import { TestRun, flow } from "./helpers.js";

void describe("replay and determinism", () => {
  const f = flow({
    steps: {
      a: { run: "a", retry: 2 },
      w: { needs: "a", wait: { for: "1m" } },
      b: { needs: "w", run: "b" },
    },
  });

  void it("returns the same decision for the same flow, events and now", () => {
    const run = new TestRun(f);
    run.decide(0);
    run.finish("a", 1, "failure");
    assert.deepEqual(decide(f, run.history, 5), decide(f, run.history, 5));
  });

  void it("replays a history into the state decide returned, whatever order the array is in", () => {
    const run = new TestRun(f);
    run.decide(0);
    run.finish("a", 1, "failure").decide(1);
    run.decide(20_000);
    run.finish("a", 2, "success").decide(21_000);
    const state = run.decide(90_000).state;
    assert.deepEqual(replay(f, run.history), state);
    assert.deepEqual(replay(f, [...run.history].reverse()), state);
    assert.equal(state.steps.b?.status, "running");
    assert.equal(state.steps.a?.attempt, 2);
  });

  void it("ignores duplicate and stale inputs", () => {
    const run = new TestRun(f);
    run.decide(0);
    run.finish("a", 1, "success", { outputs: { v: "1" } });
    run.finish("a", 1, "failure");
    run.finish("a", 7, "failure");
    run.add({ type: "run.admitted", at: 1 });
    run.decide(1);
    assert.equal(run.result("a"), "success");
    assert.deepEqual(run.state.steps.a?.outputs, { v: "1" });
  });

  void it("records progress as the running step's reason", () => {
    const run = new TestRun(f);
    run.decide(0);
    run.add({
      type: "attempt.progress",
      at: 1,
      step: "a",
      attempt: 1,
      detail: "queued on Actions",
    });
    assert.equal(run.decide(1).state.steps.a?.reason, "queued on Actions");
  });

  void it("needs a history that starts with run.created", () => {
    assert.throws(() => decide(f, [], 0), /starts with run.created/);
    const admitted: RunEvent = { type: "run.admitted", seq: 1, at: 0 };
    assert.throws(() => replay(f, [admitted]), /starts with run.created, not run.admitted/);
  });
});
