import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decide, replay } from "../../app/engine/index.js";
import { HOUR, TestRun, flow } from "./helpers.js";

void describe("graph", () => {
  void it("stays queued until admitted", () => {
    const run = new TestRun(flow({ steps: { a: { run: "echo a" } } }), { admit: false });
    const decision = run.decide(0);
    assert.equal(decision.state.status, "queued");
    assert.deepEqual(decision.effects, []);
    assert.equal(decision.wakeAt, undefined);
  });

  void it("starts independent steps in parallel and a dependent after its needs", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "echo a" },
          b: { run: "echo b" },
          c: { needs: ["a", "b"], run: "echo c" },
        },
      }),
    );
    const first = run.decide(0);
    assert.deepEqual(
      first.effects.map((effect) => [effect.type, "step" in effect ? effect.step : ""]),
      [
        ["execute", "a"],
        ["execute", "b"],
      ],
    );
    assert.equal(first.state.steps.c?.status, "pending");
    run.finish("a", 1, "success").decide(1);
    assert.equal(run.last?.effects.length, 0);
    run.finish("b", 1, "success").decide(2);
    assert.equal(run.last?.effects[0]?.type, "execute");
    run.finish("c", 1, "success").decide(3);
    assert.equal(run.state.status, "success");
    assert.equal(run.last?.effects[0]?.type, "run-ended");
  });

  void it("is a fixpoint: deciding again at the same time changes nothing", () => {
    const run = new TestRun(flow({ steps: { a: { run: "echo a" }, b: { needs: "a", run: "b" } } }));
    run.decide(0);
    const again = decide(run.flow, run.history, 0);
    assert.deepEqual(again.events, []);
    assert.deepEqual(again.effects, []);
    assert.deepEqual(again.state, run.state);
    assert.deepEqual(replay(run.flow, run.history), run.state);
  });

  void it("uses idempotency keys run/step/attempt and passes expanded specs and env", () => {
    const run = new TestRun(
      flow({
        env: { CHANNEL: "stable" },
        steps: {
          build: {
            run: 'make VERSION="${{ inputs.version }}" ${{ run.number }}',
            env: { X: "${{ env.CHANNEL }}-x" },
            with: { n: 3 },
          },
        },
      }),
      { inputs: { version: "1.2" } },
    );
    const effect = run.decide(1000).effects[0];
    assert.equal(effect?.type, "execute");
    if (effect?.type !== "execute") return;
    assert.equal(effect.key, "run-1/build/1");
    assert.equal(effect.kind, "run");
    // The script holds references to variables; the values travel in the env.
    assert.equal(
      (effect.spec as { run: string }).run,
      'make VERSION="${BATON_EXPR_1}" ${BATON_EXPR_2}',
    );
    assert.deepEqual(effect.env, {
      CHANNEL: "stable",
      X: "stable-x",
      n: "3",
      BATON_EXPR_1: "1.2",
      BATON_EXPR_2: "7",
    });
    assert.equal(effect.deadline, 1000 + 6 * HOUR);
  });

  void it("passes step outputs to later steps and flow outputs at the end", () => {
    const run = new TestRun(
      flow({
        outputs: { version: "v${{ steps.a.outputs.v }}", obj: "${{ steps.a.outputs }}" },
        steps: {
          a: { run: "a" },
          b: { needs: "a", run: "echo ${{ steps.a.outputs.v }} ${{ steps.a.result }}" },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "success", { outputs: { v: "9" } }).decide(1);
    const effect = run.last?.effects[0];
    assert.ok(effect?.type === "execute");
    assert.equal((effect.spec as { run: string }).run, "echo ${BATON_EXPR_1} ${BATON_EXPR_2}");
    assert.deepEqual(effect.env, { BATON_EXPR_1: "9", BATON_EXPR_2: "success" });
    run.finish("b", 1, "success").decide(2);
    assert.deepEqual(run.state.outputs, { version: "v9", obj: '{"v":"9"}' });
  });
});
