/**
 * Approvals by comment and by check-run button, through the fake GitHub and the whole
 * app, on both backends; and timeouts with each `on-timeout`, with the reminder comment.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import type { ApprovalsHarness } from "./approvals-harness.js";
import {
  REPOSITORY,
  eventsOf,
  eventually,
  startApprovalsApp,
  stepOf,
  waiting,
} from "./approvals-harness.js";

const COMMENT_FLOW = `
steps:
  build:
    run: echo build
    compensate: echo undo-build
  gate:
    needs: build
    approval:
      via: [comment, check-run]
  deploy:
    needs: gate
    run: echo deploy
  cleanup:
    needs: gate
    if: \${{ failure() }}
    run: echo failure-path
`;

function timeoutFlow(onTimeout: string): string {
  return `
steps:
  gate:
    approval:
      via: [comment]
      timeout: 10m
      on-timeout: ${onTimeout}
      reminder: 2m
  after:
    needs: gate
    if: \${{ always() }}
    run: echo after
`;
}

const MINUTE = 60_000;

for (const backend of BACKENDS) {
  describe(`approvals by comment and button on ${backend}`, () => {
    let testDb: TestDatabase;
    let h: ApprovalsHarness;
    let nextIssue = 100;
    before(async () => {
      testDb = await createTestDatabase(backend);
      h = await startApprovalsApp(testDb.db);
      h.fake.setRole(REPOSITORY, "alice", "write");
      h.fake.setRole(REPOSITORY, "reader", "read");
    });
    after(async () => {
      h.fake.assertNoUnexpectedRequests();
      await h.stop();
      await testDb.drop();
    });

    async function runOnIssue(source: string) {
      const issue = (nextIssue += 1);
      h.fake.addIssue(REPOSITORY, issue);
      const runId = await h.startRun(source, { issue, actor: "starter" });
      return { issue, runId };
    }

    test("`/baton approve` by a writer approves, with the comment; a reader is answered why not", async () => {
      const { issue, runId } = await runOnIssue(COMMENT_FLOW);
      await h.until(runId, "the gate to wait", waiting("gate"));
      await h.processed(
        h.fake.comment(REPOSITORY, issue, { user: "reader", body: "/baton approve" }),
      );
      await eventually("the reader's answer", () =>
        h.replies(issue, /^@reader /).length === 1 ? true : undefined,
      );
      assert.match(
        h.replies(issue, /^@reader /)[0] ?? "",
        /^@reader your approval of `gate` of release#\d+ was not counted: reader has read permission; this approval needs write\.$/,
      );
      await h.processed(
        h.fake.comment(REPOSITORY, issue, {
          user: "alice",
          body: "Looked at the build.\n/baton approve gate all good",
        }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(done, "gate").outputs.comment, "all good");
      assert.equal(eventsOf(done, "approval.submitted").at(-1)?.via, "comment");
      await eventually("alice's answer", () =>
        h.replies(issue, /^@alice approved `gate` of release#\d+ \(write permission\)\.$/)
          .length === 1
          ? true
          : undefined,
      );
    });

    test("`/baton reject` rejects: failure path and compensation; a later command is told it was decided", async () => {
      const { issue, runId } = await runOnIssue(COMMENT_FLOW);
      await h.until(runId, "the gate to wait", waiting("gate"));
      await h.processed(
        h.fake.comment(REPOSITORY, issue, { user: "alice", body: "/baton reject gate too risky" }),
      );
      const done = await h.until(runId, "the run to fail", (d) => d.run.status === "failure");
      assert.equal(stepOf(done, "gate").reason, "rejected by alice");
      assert.equal(stepOf(done, "cleanup").result, "success");
      assert.equal(stepOf(done, "build").compensation, "success");
      await h.processed(
        h.fake.comment(REPOSITORY, issue, { user: "alice", body: "/baton approve gate" }),
      );
      await eventually("the answer to the late approval", () =>
        h.replies(issue, /no run on #\d+ waits for an approval `gate` now/).length === 1
          ? true
          : undefined,
      );
    });

    test("a step that does not take comments refuses them and says so", async () => {
      const { issue, runId } = await runOnIssue(`
steps:
  gate:
    approval: { via: [check-run] }
`);
      await h.until(runId, "the gate to wait", waiting("gate"));
      await h.processed(
        h.fake.comment(REPOSITORY, issue, { user: "alice", body: "/baton approve" }),
      );
      await eventually("the answer", () =>
        h.replies(issue, /comment decisions are not accepted for this step \(via: check-run\)/)
          .length === 1
          ? true
          : undefined,
      );
      assert.equal(stepOf(await h.details(runId), "gate").status, "waiting");
      await h.running.app.service.cancel(runId, "test over", "test");
    });

    test("`baton approve` through the API gets the same facts: a team's member counts, an outsider does not", async () => {
      h.fake.addTeamMember("acme/ops", "opsy");
      h.fake.setRole(REPOSITORY, "opsy", "write");
      const { runId } = await runOnIssue(`
steps:
  gate:
    approval:
      via: [cli]
      approvers: { teams: [acme/ops] }
`);
      await h.until(runId, "the gate to wait", waiting("gate"));
      const approve = async (user: string) => {
        const response = await fetch(`${h.running.url}/api/runs/${runId}/steps/gate/approve`, {
          method: "POST",
          headers: {
            authorization: `Bearer ${h.fake.userToken(user)}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({ comment: `from ${user}` }),
        });
        assert.equal(response.status, 200);
        return (await response.json()) as { counted: boolean; reason?: string };
      };
      assert.deepEqual(await approve("alice"), {
        counted: false,
        reason: "alice is not an approver of this step (allowed: members of acme/ops)",
        user: "alice",
      });
      assert.deepEqual(await approve("opsy"), { counted: true, user: "opsy" });
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.deepEqual(eventsOf(done, "approval.submitted").at(-1)?.facts.teams, ["acme/ops"]);
    });

    test("the Approve button approves (facts from the shared builder)", async () => {
      const { runId } = await runOnIssue(COMMENT_FLOW);
      await h.until(runId, "the gate to wait", waiting("gate"));
      const checkRun = await eventually("a check run with an Approve button", () =>
        h.fake.checkRuns
          .filter((c) => c.external_id === runId)
          .reverse()
          .find((c) => c.actions.some((a) => a.label === "Approve")),
      );
      const identifier = checkRun.actions.find((a) => a.label === "Approve")?.identifier ?? "";
      await h.processed(
        h.fake.requestAction(REPOSITORY, checkRun.id, { identifier, user: "alice" }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(eventsOf(done, "approval.submitted").at(-1)?.via, "check-run");
      assert.equal(stepOf(done, "gate").outputs.approvers, "alice");
    });
  });

  describe(`approval timeouts on ${backend}`, () => {
    let testDb: TestDatabase;
    let h: ApprovalsHarness;
    let nextIssue = 200;
    before(async () => {
      testDb = await createTestDatabase(backend);
      h = await startApprovalsApp(testDb.db);
    });
    after(async () => {
      h.fake.assertNoUnexpectedRequests();
      await h.stop();
      await testDb.drop();
    });

    /** A run whose approval nobody gives: 8 minutes pass (the reminder), then 2 more. */
    async function timedOut(onTimeout: string) {
      const issue = (nextIssue += 1);
      h.fake.addIssue(REPOSITORY, issue);
      const runId = await h.startRun(timeoutFlow(onTimeout), { issue });
      await h.until(runId, "the gate to wait", waiting("gate"));
      await h.passTime(runId, 8 * MINUTE + 1000);
      await h.until(runId, "the reminder", (d) =>
        eventsOf(d, "step.waiting").some((e) => e.reminder === true),
      );
      await eventually("the reminder comment", () =>
        h.replies(issue, /^Reminder: /).length === 1 ? true : undefined,
      );
      await h.passTime(runId, 2 * MINUTE);
      const done = await h.until(runId, "the run to end", (d) =>
        ["success", "failure"].includes(d.run.status),
      );
      return { issue, done };
    }

    test("on-timeout: approve", async () => {
      const { done } = await timedOut("approve");
      assert.equal(done.run.status, "success");
      assert.equal(stepOf(done, "gate").outputs.decision, "approved");
      assert.equal(stepOf(done, "gate").reason, "approval timed out after 10m; approved");
    });

    test("on-timeout: reject", async () => {
      const { done } = await timedOut("reject");
      assert.equal(done.run.status, "failure");
      assert.equal(stepOf(done, "gate").outputs.decision, "rejected");
      assert.equal(stepOf(done, "gate").reason, "approval timed out after 10m; rejected");
      assert.equal(stepOf(done, "after").result, "success");
    });

    test("on-timeout: fail; the request and the reminder were commented", async () => {
      const { issue, done } = await timedOut("fail");
      assert.equal(done.run.status, "failure");
      assert.equal(stepOf(done, "gate").reason, "timed out after 10m");
      assert.equal(eventsOf(done, "attempt.timed-out").length, 1);
      const reminder = h.replies(issue, /^Reminder: /)[0] ?? "";
      assert.match(
        reminder,
        /^Reminder: `gate` of release#\d+ still waits for approval \(0 of 1\): 1 approval from anyone with write permission, not from whoever started the run\. It times out at .*Z; then it is failed\.$/,
      );
      assert.equal(h.replies(issue, /^`gate` of release#\d+ waits for approval/).length, 1);
    });
  });
}
