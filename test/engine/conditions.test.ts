import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TestRun, flow } from "./helpers.js";

void describe("if and status functions", () => {
  void it("skips dependents of a failed step; failure() and always() still run", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a" },
          b: { needs: "a", run: "b" },
          c: { needs: "b", run: "c" },
          onFail: { needs: "c", if: "${{ failure() }}", run: "x" },
          always: { needs: "c", if: "always()", run: "y" },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "failure", { error: "boom" }).decide(1);
    assert.equal(run.result("b"), "skipped");
    assert.equal(run.state.steps.b?.reason, "skipped: a did not succeed");
    assert.equal(run.result("c"), "skipped");
    assert.equal(run.state.steps.onFail?.status, "running");
    assert.equal(run.state.steps.always?.status, "running");
    run.finish("onFail", 1, "success").finish("always", 1, "success").decide(2);
    assert.equal(run.state.status, "failure");
    assert.equal(run.state.reason, "failed: a");
  });

  void it("treats a skipped need as success", () => {
    const run = new TestRun(
      flow({ steps: { a: { if: false, run: "a" }, b: { needs: "a", run: "b" } } }),
    );
    run.decide(0);
    assert.equal(run.result("a"), "skipped");
    assert.equal(run.state.steps.b?.status, "running");
  });

  void it("implies success() && for conditions without a status function, with or without ${{ }}", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a" },
          plain: { needs: "a", if: "inputs.go == 'yes'", run: "p" },
          wrapped: { needs: "a", if: "${{ inputs.go == 'no' }}", run: "w" },
        },
      }),
      { inputs: { go: "yes" } },
    );
    run.decide(0);
    run.finish("a", 1, "success").decide(1);
    assert.equal(run.state.steps.plain?.status, "running");
    assert.equal(run.result("wrapped"), "skipped");
    assert.equal(run.state.steps.wrapped?.reason, "skipped: `if` is false");

    const failed = new TestRun(
      flow({ steps: { a: { run: "a" }, b: { needs: "a", if: "inputs.go == 'yes'", run: "b" } } }),
      { inputs: { go: "yes" } },
    );
    failed.decide(0);
    failed.finish("a", 1, "failure").decide(1);
    assert.equal(failed.result("b"), "skipped");
  });

  void it("sees steps.<id>.result, trigger, run and env", () => {
    const run = new TestRun(
      flow({
        env: { STAGE: "prod" },
        steps: {
          a: { run: "a", "continue-on-error": true },
          b: {
            needs: "a",
            if: "${{ steps.a.result == 'failure' && trigger.event == 'manual' && run.attempt == 1 && env.STAGE == 'prod' && run.repository == 'acme/app' }}",
            run: "b",
          },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "failure").decide(1);
    assert.equal(run.state.steps.b?.status, "running");
  });

  void it("fails a step whose condition cannot be evaluated", () => {
    const run = new TestRun(flow({ steps: { a: { if: "${{ fromJSON('{') }}", run: "a" } } }));
    run.decide(0);
    assert.equal(run.result("a"), "failure");
    assert.match(run.state.steps.a?.reason ?? "", /^if: cannot evaluate/);
    assert.equal(run.state.status, "failure");
  });

  void it("continue-on-error: result failure, the run succeeds, dependents see success()", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a", "continue-on-error": true },
          b: { needs: "a", run: "b" },
          c: { needs: "a", if: "failure()", run: "c" },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "failure").decide(1);
    assert.equal(run.result("a"), "failure");
    assert.equal(run.state.steps.b?.status, "running");
    assert.equal(run.result("c"), "skipped");
    run.finish("b", 1, "success").decide(2);
    assert.equal(run.state.status, "success");
  });

  void it("evaluates failure() over transitive needs", () => {
    const run = new TestRun(
      flow({
        steps: {
          a: { run: "a" },
          b: { needs: "a", run: "b" },
          c: { needs: "b", if: "failure()", run: "c" },
        },
      }),
    );
    run.decide(0);
    run.finish("a", 1, "failure").decide(1);
    assert.equal(run.result("b"), "skipped");
    assert.equal(run.state.steps.c?.status, "running");
  });

  void it("expands ${{ }} in with, env, agent prompt and github with; objects become JSON", () => {
    const run = new TestRun(
      flow({
        steps: {
          agent: { "runs-on": ["agent"], agent: { prompt: "Fix ${{ inputs.v }}" } },
          gh: {
            github: {
              request: "POST /repos/{owner}/{repo}/issues",
              with: { body: "v=${{ inputs.v }}", n: 1 },
            },
          },
          wf: { workflow: "build.yml", with: { payload: "${{ toJSON(inputs) }}" } },
        },
      }),
      { inputs: { v: "1.0" } },
    );
    const effects = run.decide(0).effects;
    const spec = (step: string) => {
      const effect = effects.find(
        (candidate) => candidate.type === "execute" && candidate.step === step,
      );
      return effect?.type === "execute" ? (effect.spec as Record<string, unknown>) : {};
    };
    assert.deepEqual(spec("agent").agent, { prompt: "Fix 1.0" });
    assert.deepEqual((spec("gh").github as { with: unknown }).with, { body: "v=1.0", n: 1 });
    assert.match(String((spec("wf").with as { payload: string }).payload), /"v": "1.0"/);
  });
});
