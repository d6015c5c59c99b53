/**
 * Approvals by pull-request review, through the fake GitHub and the whole app, on both
 * backends: an approving review counts; a reviewer without permission, outside the
 * policy's team, or not a code owner is refused and told why on the pull request;
 * self-approval is refused; two required approvals need two distinct people; a review
 * on an older commit, a dismissed review, and approvals made before a push do not count;
 * `changes_requested` rejects and the run goes down its failure path, compensating.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { describeEvent } from "../../app/cli/render-run.js";
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

function reviewFlow(approval: string): string {
  return `
steps:
  build:
    run: echo build
    compensate: echo undo-build
  gate:
    needs: build
    approval:
${approval
  .trim()
  .split("\n")
  .map((line) => `      ${line}`)
  .join("\n")}
  deploy:
    needs: gate
    run: echo deploy
  cleanup:
    needs: gate
    if: \${{ failure() }}
    run: echo failure-path
`;
}

for (const backend of BACKENDS) {
  describe(`approvals by review on ${backend}`, () => {
    let testDb: TestDatabase;
    let h: ApprovalsHarness;
    let nextPull = 10;
    before(async () => {
      testDb = await createTestDatabase(backend);
      h = await startApprovalsApp(testDb.db);
      h.fake.setRole(REPOSITORY, "author", "write");
      h.fake.setRole(REPOSITORY, "alice", "write");
      h.fake.setRole(REPOSITORY, "bob", "maintain");
      h.fake.setRole(REPOSITORY, "reader", "read");
      h.fake.setRole(REPOSITORY, "owner", "write");
    });
    after(async () => {
      h.fake.assertNoUnexpectedRequests();
      await h.stop();
      await testDb.drop();
    });

    async function runOnPullRequest(approval: string) {
      const number = (nextPull += 1);
      h.openPullRequest(number, "author");
      const runId = await h.startRun(reviewFlow(approval), {
        pullRequest: number,
        actor: "author",
      });
      await h.until(runId, "the gate to wait", waiting("gate"));
      return { number, runId };
    }

    test("an approving review by a writer approves; the request was announced on the pull request", async () => {
      const { number, runId } = await runOnPullRequest("via: [review]");
      await eventually("the request comment", () =>
        h.replies(number, /`gate` of release#\d+ waits for approval/).length > 0 ? true : undefined,
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, {
          user: "alice",
          state: "APPROVED",
          body: "ship it",
        }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(done, "gate").outputs.decision, "approved");
      assert.equal(stepOf(done, "gate").outputs.approvers, "alice");
      assert.equal(stepOf(done, "gate").outputs.comment, "ship it");
      assert.equal(stepOf(done, "cleanup").result, "skipped");
      const submitted = eventsOf(done, "approval.submitted")[0];
      assert.equal(submitted?.via, "review");
      assert.equal(submitted?.facts.permission, "write");
      assert.equal(submitted?.facts.commit, h.fake.pullRequest(REPOSITORY, number).head.sha);
    });

    test("a reader, the run's own author, and a commented review: refused with the reason, or ignored", async () => {
      const { number, runId } = await runOnPullRequest("via: [review]");
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "reader", state: "APPROVED" }),
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "author", state: "APPROVED" }),
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "COMMENTED" }),
      );
      const details = await h.details(runId);
      assert.equal(stepOf(details, "gate").status, "waiting");
      assert.deepEqual(
        eventsOf(details, "approval.evaluated").map((e) => [e.user, e.counted, e.reason]),
        [
          ["reader", false, "reader has read permission; this approval needs write"],
          ["author", false, "author started the run, and this step does not allow self-approval"],
        ],
      );
      await eventually("both refusals answered on the pull request", () =>
        h.replies(number, /does not count for `gate`/).length === 2 ? true : undefined,
      );
      assert.match(
        h.replies(number, /@reader/).join("\n"),
        /@reader your approval does not count for `gate` of release#\d+: reader has read permission; this approval needs write\./,
      );
      assert.match(h.replies(number, /@author your approval/).join("\n"), /self-approval/);
      await h.running.app.service.cancel(runId, "test over", "test");
    });

    test("a team's member approves; someone outside the team is refused", async () => {
      h.fake.addTeamMember("acme/release", "bob");
      const { number, runId } = await runOnPullRequest(`
via: [review]
approvers: { teams: [acme/release] }`);
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      await eventually("the refusal", () =>
        h.replies(number, /@alice your approval does not count/).length === 1 ? true : undefined,
      );
      assert.match(
        h.replies(number, /@alice/).join(),
        /alice is not an approver of this step \(allowed: members of acme\/release\)/,
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "bob", state: "APPROVED" }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(done, "gate").outputs.approvers, "bob");
      assert.deepEqual(eventsOf(done, "approval.submitted").at(-1)?.facts.teams, ["acme/release"]);
    });

    test("code owners of the flow file approve (CODEOWNERS of the default branch, last match wins)", async () => {
      h.fake.commit(REPOSITORY, {
        files: {
          ".github/CODEOWNERS": [
            "# everything",
            "*            @alice",
            "# the flows: the last matching pattern wins",
            "/.github/flows/  @owner @acme/flow-keepers",
            "docs/*       @reader",
          ].join("\n"),
        },
      });
      h.fake.addTeamMember("acme/flow-keepers", "bob");
      const { number, runId } = await runOnPullRequest(`
via: [review]
required: 2
approvers: { codeowners: true }`);
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      await eventually("the refusal", () =>
        h.replies(number, /@alice your approval does not count/).length === 1 ? true : undefined,
      );
      assert.match(h.replies(number, /@alice/).join(), /allowed: code owners/);
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "owner", state: "APPROVED" }),
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "bob", state: "APPROVED" }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(done, "gate").outputs.approvers, "bob,owner");
    });

    test("two required approvals need two distinct people", async () => {
      const { number, runId } = await runOnPullRequest(`
via: [review]
required: 2`);
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      let details = await h.details(runId);
      assert.equal(stepOf(details, "gate").reason, "approval (1 of 2)");
      assert.equal(
        eventsOf(details, "approval.evaluated")[1]?.reason,
        "alice has already approved",
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "bob", state: "APPROVED" }),
      );
      details = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(details, "gate").outputs.approvers, "alice,bob");
    });

    test("a push withdraws earlier approvals; reviews of older commits and dismissed reviews do not count", async () => {
      const { number, runId } = await runOnPullRequest(`
via: [review, comment]
required: 2`);
      const first = h.fake.pullRequest(REPOSITORY, number).head.sha;
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      await h.until(runId, "1 of 2", waiting("gate", "approval (1 of 2)"));
      // A dismissed review no longer counts.
      const review = h.fake.addReview(REPOSITORY, {
        pull_number: number,
        user: "alice",
        state: "APPROVED",
        commit_id: first,
      });
      await h.processed(h.fake.dismissReview(REPOSITORY, number, review.id, { by: "bob" }));
      let details = await h.until(runId, "0 of 2", waiting("gate", "approval (0 of 2)"));
      assert.equal(
        eventsOf(details, "approval.withdrawn")[0]?.reason,
        "alice's review was dismissed by bob",
      );
      // Approve again by comment, then push: the approval was of older code.
      await h.processed(
        h.fake.comment(REPOSITORY, number, { user: "alice", body: "/baton approve gate" }),
      );
      await h.until(runId, "1 of 2 again", waiting("gate", "approval (1 of 2)"));
      await h.processed(
        h.fake.pushToPullRequest(REPOSITORY, number, { files: { "src/more.ts": "more\n" } }),
      );
      details = await h.until(runId, "the push withdrew it", waiting("gate", "approval (0 of 2)"));
      assert.match(
        eventsOf(details, "approval.withdrawn")[1]?.reason ?? "",
        /new commits were pushed/,
      );
      // `baton show` tells it too.
      const pushed = eventsOf(details, "approval.withdrawn")[1];
      assert.ok(pushed);
      assert.match(
        describeEvent(pushed) ?? "",
        /^gate: approvals withdrawn \(new commits were pushed to #\d+/,
      );
      // A review of the old head is stale; so is one of the new head (this run is about the old one).
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, {
          user: "bob",
          state: "APPROVED",
          commitId: first,
        }),
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, { user: "alice", state: "APPROVED" }),
      );
      details = await h.details(runId);
      assert.equal(stepOf(details, "gate").reason, "approval (0 of 2)");
      const refused = eventsOf(details, "approval.evaluated").slice(-2);
      assert.deepEqual(
        refused.map((e) => [e.user, e.counted]),
        [
          ["bob", false],
          ["alice", false],
        ],
      );
      for (const e of refused) assert.match(e.reason ?? "", /stale/);
      // The audit trail shows the withdrawals on the check run.
      await eventually("the check run's audit trail", () => {
        const latest = h.fake.checkRuns.filter((c) => c.external_id === runId).at(-1);
        const text = `${latest?.output.summary ?? ""}\n${latest?.output.text ?? ""}`;
        return /withdrew/.test(text) && /new commits were pushed/.test(text) ? true : undefined;
      });
      await h.running.app.service.cancel(runId, "test over", "test");
    });

    test("`approval.pull-request` names the pull request whose reviews decide", async () => {
      const release = (nextPull += 1);
      h.openPullRequest(release, "author");
      h.fake.addIssue(REPOSITORY, 900);
      const runId = await h.startRun(
        `
on:
  manual:
    inputs:
      pr: { type: string, required: true }
steps:
  gate:
    approval:
      via: [review]
      pull-request: \${{ inputs.pr }}
`,
        { issue: 900, actor: "starter" },
        { pr: String(release) },
      );
      await h.until(runId, "the gate to wait", waiting("gate"));
      // The request is announced on the named pull request once it is recorded.
      await eventually("the request comment on the named pull request", () =>
        h.replies(release, /waits for approval/).length === 1 ? true : undefined,
      );
      await h.processed(
        h.fake.submitReview(REPOSITORY, release, { user: "alice", state: "APPROVED" }),
      );
      const done = await h.until(runId, "the run to succeed", (d) => d.run.status === "success");
      assert.equal(stepOf(done, "gate").outputs.approvers, "alice");
    });

    test("changes requested rejects: the run takes its failure path and compensates", async () => {
      const { number, runId } = await runOnPullRequest("via: [review]");
      await h.processed(
        h.fake.submitReview(REPOSITORY, number, {
          user: "bob",
          state: "CHANGES_REQUESTED",
          body: "not like this",
        }),
      );
      const done = await h.until(
        runId,
        "the run to fail and compensate",
        (d) => d.run.status === "failure",
      );
      assert.equal(stepOf(done, "gate").result, "failure");
      assert.equal(stepOf(done, "gate").reason, "rejected by bob");
      assert.equal(stepOf(done, "gate").outputs.comment, "not like this");
      assert.equal(stepOf(done, "deploy").result, "skipped");
      assert.equal(stepOf(done, "cleanup").result, "success");
      assert.equal(stepOf(done, "build").compensation, "success");
      assert.deepEqual(
        eventsOf(done, "compensation.started").map((e) => e.step),
        ["build"],
      );
    });
  });
}
