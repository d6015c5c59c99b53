/**
 * The two foundations together: the fake GitHub delivers a signed webhook to the real
 * inbox; a handler answers through a real Octokit against the fake (checking the
 * commenter's permission first, DESIGN.md rule 8); the recovery route
 * (GET /app/hook/deliveries + POST …/attempts) redelivers it, and it is processed once.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { ProbotOctokit } from "probot";
import { getDelivery } from "../../app/store/deliveries.js";
import type { DeliveryHandlers } from "../../app/github/process-deliveries.js";
import { startDeliveryWorker } from "../../app/github/process-deliveries.js";
import { createWebhookInbox } from "../../app/github/webhook-inbox.js";
import { silentLogger } from "../../app/runtime/log.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeGitHub } from "../fake-github/server.js";
import { patchPayload, webhookExample } from "../fake-github/webhooks.js";

const SECRET = "inbox and fake";

for (const backend of BACKENDS) {
  describe(`the fake GitHub delivering to the inbox on ${backend}`, () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await createTestDatabase(backend);
    });
    after(async () => {
      await testDb.drop();
    });

    test("a comment is answered once, even after a redelivery through the deliveries API", async () => {
      const store = testDb.db;
      const fake = await FakeGitHub.start();
      fake.addInstallation({ id: 9, account: "acme" });
      const repo = fake.addRepository({
        owner: "acme",
        name: "widgets",
        installationId: 9,
        files: { "README.md": "hi\n" },
      });
      fake.addIssue("acme/widgets", 3);
      fake.setRole("acme/widgets", "octocat", "write");
      const app = new ProbotOctokit({
        auth: { appId: fake.appId, privateKey: fake.privateKey },
        baseUrl: fake.url,
      });

      let calls = 0;
      const handlers: DeliveryHandlers = {
        issue_comment: async (delivery) => {
          calls += 1;
          const payload = delivery.payload as {
            comment: { user: { login: string } };
            issue: { number: number };
            repository: { name: string; owner: { login: string } };
          };
          const octokit = new ProbotOctokit({
            auth: {
              appId: fake.appId,
              privateKey: fake.privateKey,
              installationId: delivery.installationId,
            },
            baseUrl: fake.url,
          });
          const owner = payload.repository.owner.login;
          const repoName = payload.repository.name;
          const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({
            owner,
            repo: repoName,
            username: payload.comment.user.login,
          });
          await octokit.rest.issues.createComment({
            owner,
            repo: repoName,
            issue_number: payload.issue.number,
            body: `@${payload.comment.user.login} has ${data.permission} permission`,
          });
        },
      };
      const worker = startDeliveryWorker({ store, handlers, log: silentLogger });
      const inbox = createWebhookInbox({
        store,
        secret: SECRET,
        log: silentLogger,
        onStored: () => worker.kick(),
      });
      const server = createServer((request, response) => void inbox(request, response));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      fake.webhook = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
        secret: SECRET,
      };
      try {
        const payload = patchPayload(webhookExample("issue_comment", "created"), {
          installationId: 9,
          repository: { id: repo.id, owner: "acme", name: "widgets", defaultBranch: "main" },
        });
        (payload.issue as { number: number }).number = 3;
        (payload.comment as { user: { login: string } }).user.login = "octocat";
        const sent = await fake.deliverWebhook("issue_comment", payload);
        assert.equal(sent.status, 202);
        const deadline = Date.now() + 10_000;
        while ((await getDelivery(store, sent.deliveryId))?.status !== "processed") {
          assert.ok(Date.now() < deadline, "the delivery is processed within 10 s");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        assert.deepEqual(
          fake.comments.map((c) => [c.issue_number, c.body]),
          [[3, "@octocat has write permission"]],
        );

        // Recovery: list the app's deliveries and redeliver this one (same GUID).
        const listed = await app.request("GET /app/hook/deliveries", { per_page: 50 });
        const original = listed.data.find((d) => d.guid === sent.deliveryId);
        assert.ok(original, "the delivery is listed");
        await app.request("POST /app/hook/deliveries/{delivery_id}/attempts", {
          delivery_id: Number(original.id),
        });
        while (fake.deliveries.length < 2) await new Promise((resolve) => setTimeout(resolve, 10));
        assert.deepEqual(fake.deliveries[1]?.status_code, 202);
        assert.deepEqual(fake.deliveries[1]?.guid, sent.deliveryId);
        await new Promise((resolve) => setTimeout(resolve, 200)); // room for a wrong second run
        assert.equal(calls, 1, "processed once");
        assert.equal(fake.comments.length, 1);
        fake.assertNoUnexpectedRequests();
      } finally {
        await worker.stop();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await fake.stop();
      }
    });
  });
}
