import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApproverFacts, NewRunEvent } from "../../app/engine/index.js";
import { HOUR, TestRun, flow } from "./helpers.js";
import type { FlowInput } from "../../flows-schema/schema.js";

const WRITE: ApproverFacts = { permission: "write", teams: [], codeowner: false };

function approvalRun(approval: NonNullable<FlowInput["steps"][string]["approval"]>) {
  const run = new TestRun(flow({ steps: { ok: { approval } } }), { actor: "starter" });
  run.decide(0);
  return run;
}

function submit(
  user: string,
  decision: "approve" | "reject",
  facts: Partial<ApproverFacts> = {},
  extra: Partial<{ via: "review" | "check-run" | "comment" | "cli"; comment: string }> = {},
): NewRunEvent {
  return {
    type: "approval.submitted",
    at: 1,
    step: "ok",
    user,
    decision,
    via: extra.via ?? "cli",
    facts: { ...WRITE, ...facts },
    ...(extra.comment === undefined ? {} : { comment: extra.comment }),
  };
}

void describe("approval steps", () => {
  void it("requests approval, waits, and succeeds with decision, approvers and comment", () => {
    const run = new TestRun(
      flow({ steps: { ok: { approval: { "pull-request": "${{ inputs.pr }}" } } } }),
      {
        inputs: { pr: 12 },
      },
    );
    const first = run.decide(0);
    assert.deepEqual(first.effects, [
      { type: "request-approval", key: "run-1/ok/1", step: "ok", attempt: 1, pullRequest: "12" },
    ]);
    assert.equal(run.state.steps.ok?.status, "waiting");
    assert.equal(run.state.steps.ok?.reason, "approval (0 of 1)");
    run.add(submit("alice", "approve", {}, { comment: "ship it" })).decide(1);
    assert.equal(run.result("ok"), "success");
    assert.deepEqual(run.state.steps.ok?.outputs, {
      decision: "approved",
      approvers: "alice",
      comment: "ship it",
    });
  });

  void it("records ineligible submissions with the reason, and counts distinct approvers", () => {
    const run = approvalRun({ required: 2 });
    run.add(submit("reader", "approve", { permission: "read" }));
    run.add(submit("starter", "approve"));
    run.add(submit("alice", "approve", { stale: true }, { via: "review" }));
    run.add(submit("bob", "approve", {}, { via: "review" }));
    run.add(submit("carol", "approve"));
    run.add(submit("carol", "approve"));
    run.decide(1);
    const approvals = run.state.steps.ok?.approvals ?? [];
    assert.deepEqual(
      approvals.map((approval) => [approval.user, approval.counted, approval.reason]),
      [
        ["reader", false, "reader has read permission; this approval needs write"],
        ["starter", false, "starter started the run, and this step does not allow self-approval"],
        [
          "alice",
          false,
          "review decisions are not accepted for this step (via: check-run, comment, cli)",
        ],
        [
          "bob",
          false,
          "review decisions are not accepted for this step (via: check-run, comment, cli)",
        ],
        ["carol", true, undefined],
        ["carol", false, "carol has already approved"],
      ],
    );
    assert.equal(run.state.steps.ok?.status, "waiting");
    assert.equal(run.state.steps.ok?.reason, "approval (1 of 2)");
    run.add(submit("dave", "approve")).decide(2);
    assert.equal(run.result("ok"), "success");
    assert.equal(run.state.steps.ok?.outputs.approvers, "carol,dave");
  });

  void it("applies users, teams, codeowners, permission and stale reviews", () => {
    const run = approvalRun({
      via: ["review", "cli"],
      required: 3,
      approvers: {
        users: ["Uma"],
        teams: ["acme/release"],
        codeowners: true,
        permission: "maintain",
      },
    });
    run.add(submit("zed", "approve", { permission: "admin" }));
    run.add(submit("uma", "approve", { permission: "maintain" }));
    run.add(submit("tim", "approve", { permission: "admin", teams: ["acme/release"] }));
    run.add(
      submit(
        "old",
        "approve",
        { permission: "admin", codeowner: true, stale: true },
        { via: "review" },
      ),
    );
    run.add(submit("writer", "approve", { permission: "write", codeowner: true }));
    run.add(
      submit("owner", "approve", { permission: "admin", codeowner: true }, { via: "review" }),
    );
    run.decide(1);
    const approvals = run.state.steps.ok?.approvals ?? [];
    assert.deepEqual(
      approvals.map((approval) => [approval.user, approval.counted]),
      [
        ["zed", false],
        ["uma", true],
        ["tim", true],
        ["old", false],
        ["writer", false],
        ["owner", true],
      ],
    );
    assert.equal(
      approvals[0]?.reason,
      "zed is not an approver of this step (allowed: users Uma; members of acme/release; code owners)",
    );
    assert.match(approvals[3]?.reason ?? "", /stale/);
    assert.equal(approvals[4]?.reason, "writer has write permission; this approval needs maintain");
    assert.equal(run.result("ok"), "success");
  });

  void it("allows self-approval when the flow says so", () => {
    const run = approvalRun({ "self-approval": true });
    run.add(submit("starter", "approve")).decide(1);
    assert.equal(run.result("ok"), "success");
  });

  void it("a rejection by an eligible person fails the step; an ineligible one does not", () => {
    const run = approvalRun({ required: 2 });
    run.add(submit("reader", "reject", { permission: "read" })).decide(1);
    assert.equal(run.state.steps.ok?.status, "waiting");
    run
      .add(submit("alice", "approve"))
      .add(submit("bob", "reject", {}, { comment: "not today" }))
      .decide(2);
    assert.equal(run.result("ok"), "failure");
    assert.equal(run.state.steps.ok?.reason, "rejected by bob");
    assert.deepEqual(run.state.steps.ok?.outputs, {
      decision: "rejected",
      approvers: "bob",
      comment: "not today",
    });
    // Late submissions are recorded, never counted.
    run.add(submit("carol", "approve")).decide(3);
    assert.equal(run.state.steps.ok?.approvals.at(-1)?.counted, false);
    assert.match(run.state.steps.ok?.approvals.at(-1)?.reason ?? "", /was not waiting/);
    assert.equal(run.state.status, "failure");
  });

  void it("on timeout: fail, reject or approve; reminds once before", () => {
    const fail = approvalRun({ timeout: "2h", reminder: "30m" });
    assert.equal(fail.last?.wakeAt, 90 * 60_000);
    const reminded = fail.decide(90 * 60_000);
    assert.deepEqual(reminded.effects, [
      {
        type: "request-approval",
        key: "run-1/ok/1/reminder",
        step: "ok",
        attempt: 1,
        reminder: true,
      },
    ]);
    assert.equal(reminded.wakeAt, 2 * HOUR);
    assert.equal(fail.decide(100 * 60_000).effects.length, 0);
    fail.decide(2 * HOUR);
    assert.equal(fail.result("ok"), "failure");
    assert.equal(fail.state.steps.ok?.reason, "timed out after 2h");

    const reject = approvalRun({ timeout: "1h", "on-timeout": "reject" });
    reject.decide(HOUR);
    assert.equal(reject.result("ok"), "failure");
    assert.equal(reject.state.steps.ok?.outputs.decision, "rejected");

    const approve = approvalRun({ timeout: "1h", "on-timeout": "approve" });
    approve.decide(HOUR);
    assert.equal(approve.result("ok"), "success");
    assert.equal(approve.state.steps.ok?.outputs.decision, "approved");
  });
});
