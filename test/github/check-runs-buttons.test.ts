/**
 * Check-run buttons through the fake GitHub and the real webhook inbox, on both backends:
 * a click by a user with write permission approves, cancels or reruns; a click by a
 * reader is refused, and the refusal is told on the check run and on the run's issue.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { getCheckRunRecord } from "../../app/store/check-runs.js";
import { checkRunsPart } from "../../app/github/check-runs/index.js";
import { getDelivery } from "../../app/store/deliveries.js";
import { combineEventHandlers } from "../../app/github/github-app.js";
import type { DeliveryWorker } from "../../app/github/process-deliveries.js";
import { startDeliveryWorker } from "../../app/github/process-deliveries.js";
import { createWebhookInbox } from "../../app/github/webhook-inbox.js";
import { silentLogger } from "../../app/runtime/log.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import type { Harness } from "./check-runs-harness.js";
import {
  REPOSITORY,
  assertNoCompletedCheckRunChanged,
  checkRunsOf,
  eventually,
  latestCheckRun,
  startHarness,
} from "./check-runs-harness.js";

const SECRET = "check-run buttons";

const APPROVAL_FLOW = `
steps:
  gate:
    approval: {}
  done:
    needs: gate
    run: echo done
`;

const SIGNAL_FLOW = `
steps:
  gate:
    wait: { signal: go }
`;

interface Clicks {
  h: Harness;
  worker: DeliveryWorker;
  server: Server;
  /** Click `identifier` on the run's latest check run as `user`; resolves once processed. */
  click(runId: string, identifier: string, user: string): Promise<void>;
  stop(): Promise<void>;
}

async function startClicks(testDb: TestDatabase): Promise<Clicks> {
  const h = await startHarness(testDb.db);
  const store = testDb.db;
  const part = checkRunsPart(h.app);
  const worker = startDeliveryWorker({
    store,
    handlers: combineEventHandlers(h.app, [part]),
    log: silentLogger,
  });
  const inbox = createWebhookInbox({
    store,
    secret: SECRET,
    log: silentLogger,
    onStored: () => worker.kick(),
  });
  const server = createServer((request, response) => void inbox(request, response));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  h.fake.webhook = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
    secret: SECRET,
  };
  h.fake.setRole(REPOSITORY, "reader", "read");
  h.fake.setRole(REPOSITORY, "writer", "write");
  h.startRuntime();
  return {
    h,
    worker,
    server,
    async click(runId, identifier, user) {
      const checkRun = checkRunsOf(h.fake, runId).at(-1);
      assert.ok(checkRun, "the run has a check run");
      const sent = await h.fake.requestAction(REPOSITORY, checkRun.id, { identifier, user });
      assert.equal(sent.status, 202);
      await eventually(`delivery ${sent.deliveryId} to be processed`, async () =>
        (await getDelivery(store, sent.deliveryId))?.status === "processed" ? true : undefined,
      );
    },
    async stop() {
      await worker.stop();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await h.stop();
    },
  };
}

function identifierOf(
  checkRun: { actions: { label: string; identifier: string }[] },
  label: string,
): string {
  const action = checkRun.actions.find((a) => a.label === label);
  assert.ok(action, `the check run has a ${label} button`);
  return action.identifier;
}

/** The run's latest check run once its note (output.text) matches `pattern`. */
function noteMatching(clicks: Clicks, runId: string, pattern: RegExp) {
  return eventually(`a note matching ${pattern}`, () => {
    const latest = checkRunsOf(clicks.h.fake, runId).at(-1);
    return latest && pattern.test(latest.output.text ?? "") ? latest : undefined;
  });
}

for (const backend of BACKENDS) {
  describe(`check-run buttons on ${backend}`, () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await createTestDatabase(backend);
    });
    after(async () => {
      await testDb.drop();
    });

    test("a reader's clicks are refused and told why; a writer's approval counts", async () => {
      const clicks = await startClicks(testDb);
      const { h } = clicks;
      try {
        const runId = await h.startRun(APPROVAL_FLOW, { issue: 3 });
        const waiting = await latestCheckRun(h.fake, runId, "completed", "action_required");
        assert.deepEqual(
          waiting.actions.map((a) => a.label),
          ["Approve", "Reject", "Cancel"],
        );

        // A reader approves: the policy refuses it (read < write), in the audit trail too.
        await clicks.click(runId, identifierOf(waiting, "Approve"), "reader");
        const refused = await noteMatching(
          clicks,
          runId,
          /reader's approval of `gate` was not counted: reader has read permission; this approval needs write/,
        );
        assert.match(
          refused.output.summary ?? "",
          /@reader \| approved `gate` \| check-run \(read permission\) \| refused/,
        );
        assert.equal(refused.conclusion, "action_required");

        // A reader cancels: refused before the run is touched, with GitHub's answer.
        await clicks.click(runId, identifierOf(waiting, "Cancel"), "reader");
        await noteMatching(
          clicks,
          runId,
          /@reader may not cancel this run: GitHub reports read permission on acme\/widgets, and cancelling needs write/,
        );
        assert.equal((await h.service.getRun(runId)).run.status, "running");
        await eventually("two comments on the run's issue", () =>
          h.fake.comments.filter((c) => c.issue_number === 3).length === 2 ? true : undefined,
        );
        const comments = h.fake.comments.filter((c) => c.issue_number === 3).map((c) => c.body);
        assert.match(comments[0] ?? "", /@reader's approval of `gate` was not counted/);
        assert.match(comments[1] ?? "", /@reader may not cancel this run/);

        // Another part's button is not ours: nothing happens.
        await clicks.click(runId, "run-draft", "writer");

        // A writer approves: the run goes on and succeeds, on a new check run (GitHub
        // keeps a completed check run's conclusion).
        await clicks.click(runId, identifierOf(waiting, "Approve"), "writer");
        await h.service.waitForRun(runId);
        const done = await latestCheckRun(h.fake, runId, "completed", "success");
        assert.notEqual(done.id, waiting.id);
        assert.match(done.output.text ?? "", /@writer approved `gate`/);
        assert.match(
          done.output.summary ?? "",
          /@writer \| approved `gate` \| check-run \(write permission\) \| counted/,
        );
        assert.equal((await getCheckRunRecord(testDb.db, runId))?.checkRunId, done.id);
        assert.equal(h.fake.comments.length, 2, "an accepted click makes no comment");
        assertNoCompletedCheckRunChanged(h.fake);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await clicks.stop();
      }
    });

    test("a writer cancels a waiting run, then reruns it", async () => {
      const clicks = await startClicks(testDb);
      const { h } = clicks;
      try {
        const runId = await h.startRun(SIGNAL_FLOW, { issue: 3 });
        const waiting = await latestCheckRun(h.fake, runId, "completed", "action_required");
        assert.deepEqual(
          waiting.actions.map((a) => a.label),
          ["Cancel"],
        );
        await clicks.click(runId, identifierOf(waiting, "Cancel"), "writer");
        const cancelled = await latestCheckRun(h.fake, runId, "completed", "cancelled");
        assert.equal((await h.service.getRun(runId)).run.status, "cancelled");
        assert.match(cancelled.output.text ?? "", /@writer cancelled the run/);

        // A reader may not rerun it; a writer may.
        await clicks.click(runId, identifierOf(cancelled, "Retry"), "reader");
        await noteMatching(
          clicks,
          runId,
          /@reader may not rerun this run: GitHub reports read permission/,
        );
        assert.equal((await h.service.getRun(runId)).run.status, "cancelled");
        await clicks.click(runId, identifierOf(cancelled, "Retry"), "writer");
        const again = await eventually("the rerun to wait on its signal", () => {
          const latest = checkRunsOf(h.fake, runId).at(-1);
          return latest && latest.id !== cancelled.id && latest.conclusion === "action_required"
            ? latest
            : undefined;
        });
        assert.match(again.output.text ?? "", /@writer reran the run/);
        assert.match(again.output.summary ?? "", /@writer \| rerun/);
        assertNoCompletedCheckRunChanged(h.fake);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await clicks.stop();
      }
    });
  });
}
