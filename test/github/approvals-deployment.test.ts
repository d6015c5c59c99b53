/**
 * Baton as a deployment protection rule for Actions environments, through the fake GitHub
 * and the whole app, on both backends: `deployment_protection_rule.requested` starts the
 * live flow that declares it; GitHub is answered once, through the callback, when the
 * flow's approval decides (approved or rejected, with a comment); a repository without
 * such a flow is answered `rejected` at once, saying why.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gateVerdict } from "../../app/github/approvals/index.js";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import type { RunState } from "../../app/engine/types.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import type { ApprovalsHarness } from "./approvals-harness.js";
import { eventually, startApprovalsApp, waiting } from "./approvals-harness.js";

const GATE_FLOW = `
on:
  github:
    deployment_protection_rule: {}
steps:
  gate:
    approval:
      via: [check-run]
  notify:
    needs: gate
    run: echo approved \${{ trigger.payload.environment }}
`;

const DEPLOYS = "beta/deploys";

for (const backend of BACKENDS) {
  describe(`deployment protection rules on ${backend}`, () => {
    let testDb: TestDatabase;
    let h: ApprovalsHarness;
    before(async () => {
      testDb = await createTestDatabase(backend);
      h = await startApprovalsApp(testDb.db);
      await h.processed(
        h.fake.install({
          installationId: 21,
          account: "beta",
          repositories: [
            { name: "deploys", files: { ".github/flows/gate.yml": GATE_FLOW } },
            { name: "empty" },
          ],
        }),
      );
      h.fake.setRole(DEPLOYS, "lead", "maintain");
      h.fake.setRole(DEPLOYS, "reader", "read");
      await h.runnerFor(DEPLOYS, 21);
    });
    after(async () => {
      h.fake.assertNoUnexpectedRequests();
      await h.stop();
      await testDb.drop();
    });

    async function gateRun(workflowRunId: number): Promise<string> {
      await h.processed(
        h.fake.requestDeploymentGate(DEPLOYS, {
          environment: "production",
          workflowRunId,
          user: "deployer",
        }),
      );
      const row = await eventually("the gate's run", async () => {
        const result = await testDb.db.query<{ run_id: string }>(
          "SELECT run_id FROM github_deployment_gates WHERE workflow_run_id = $1",
          [workflowRunId],
        );
        return result.rows[0];
      });
      await h.until(row.run_id, "the gate to wait", waiting("gate"));
      return row.run_id;
    }

    async function click(runId: string, label: "Approve" | "Reject", user: string) {
      const checkRun = await eventually(`a check run with ${label}`, () =>
        h.fake.checkRuns
          .filter((c) => c.external_id === runId)
          .reverse()
          .find((c) => c.actions.some((a) => a.label === label)),
      );
      const identifier = checkRun.actions.find((a) => a.label === label)?.identifier ?? "";
      await h.processed(h.fake.requestAction(DEPLOYS, checkRun.id, { identifier, user }));
    }

    test("an approval of the flow's step approves the deployment, once", async () => {
      const runId = await gateRun(501);
      // A reader's click is refused: GitHub hears nothing yet.
      await click(runId, "Approve", "reader");
      await click(runId, "Approve", "lead");
      const review = await eventually("GitHub to be answered", () =>
        h.fake.deploymentGateReviews.find((r) => r.workflowRunId === 501),
      );
      assert.equal(review.repository, DEPLOYS);
      assert.equal(review.environment, "production");
      assert.equal(review.state, "approved");
      assert.match(review.comment ?? "", /^Baton gate#\d+: approved by lead\.$/);
      await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      // Answered once, whatever the run does next.
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(h.fake.deploymentGateReviews.filter((r) => r.workflowRunId === 501).length, 1);
    });

    test("a rejection rejects the deployment and says why", async () => {
      const runId = await gateRun(502);
      await click(runId, "Reject", "lead");
      const review = await eventually("GitHub to be answered", () =>
        h.fake.deploymentGateReviews.find((r) => r.workflowRunId === 502),
      );
      assert.equal(review.state, "rejected");
      assert.match(review.comment ?? "", /`gate` rejected by lead/);
    });

    test("a repository without a flow for deployment protection rules is answered rejected", async () => {
      await h.processed(
        h.fake.requestDeploymentGate("beta/empty", {
          environment: "staging",
          workflowRunId: 503,
          user: "deployer",
        }),
      );
      const review = await eventually("GitHub to be answered", () =>
        h.fake.deploymentGateReviews.find((r) => r.workflowRunId === 503),
      );
      assert.equal(review.state, "rejected");
      assert.match(review.comment ?? "", /No live Baton flow of beta\/empty handles/);
    });
  });
}

describe("deployment gate verdicts", () => {
  const parsed = parseFlow(GATE_FLOW, ".github/flows/gate.yml");
  const definition = parsed.flow;
  assert.ok(definition);
  function state(status: RunState["status"], gate: Partial<RunState["steps"][string]>): RunState {
    return {
      status,
      steps: {
        gate: { id: "gate", status: "pending", attempt: 1, outputs: {}, approvals: [], ...gate },
        notify: { id: "notify", status: "pending", attempt: 0, outputs: {}, approvals: [] },
      },
    } as unknown as RunState;
  }

  test("waiting: no answer yet; skipped approval: approved; a run that ends without deciding: its end", () => {
    assert.equal(
      gateVerdict(definition, state("running", { status: "waiting" }), "r", undefined),
      undefined,
    );
    assert.equal(
      gateVerdict(
        definition,
        state("running", { status: "done", result: "skipped" }),
        "r",
        undefined,
      )?.state,
      "approved",
    );
    assert.deepEqual(
      gateVerdict(definition, state("cancelled", { status: "waiting" }), "r", "https://b/runs/1"),
      { state: "rejected", comment: "r ended cancelled. https://b/runs/1" },
    );
    assert.equal(
      gateVerdict(
        definition,
        state("running", { status: "done", result: "failure", reason: "timed out after 1h" }),
        "r",
        undefined,
      )?.comment,
      "r: `gate` timed out after 1h.",
    );
  });
});
