/**
 * `on.github` and `/baton run` comments through the real path: the fake GitHub delivers a
 * signed webhook to the real inbox, the delivery is processed with the triggers part's
 * handlers (combineEventHandlers), and runs start in the delivery's transaction. Live
 * flows are written as the flow loader writes them.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { GitHubApp, GitHubAppPart } from "../../app/github/github-app.js";
import { combineEventHandlers } from "../../app/github/github-app.js";
import { flowsPart } from "../../app/github/flows/flows-part.js";
import { processDeliveries } from "../../app/github/process-deliveries.js";
import { triggersPart } from "../../app/github/triggers/index.js";
import { createWebhookInbox } from "../../app/github/webhook-inbox.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { testLogger } from "../helpers/flows.js";
import { FakeGitHub } from "../fake-github/server.js";
import { patchPayload, webhookExample } from "../fake-github/webhooks.js";
import {
  addRepository,
  createTestApp,
  makeLive,
  pendingGitHubRequests,
  runsOf,
} from "./triggers-setup.js";

const REPO = "acme/widgets";
const SECRET = "triggers test";
const STEPS = "steps:\n  hold: { wait: { signal: go } }\n";

const FLOWS: Record<string, string> = {
  "push-main-src": `on:\n  github:\n    push: { branches: [main], paths: ["src/**"] }\n${STEPS}`,
  "push-any": `on:\n  github:\n    push:\n${STEPS}`,
  "pr-src": `on:\n  github:\n    pull_request: { types: [opened], paths: ["src/**"] }\n${STEPS}`,
  "pr-docs": `on:\n  github:\n    pull_request: { types: [opened], paths: ["docs/**"] }\n${STEPS}`,
  "release-label": `on:\n  github:\n    issues: { types: [labeled], labels: [release] }\n${STEPS}`,
  "push-one-at-a-time": `on:\n  github:\n    push: { branches: [solo] }\nconcurrency: { group: solo, mode: reject }\n${STEPS}`,
  ship: `on:\n  manual:\n    inputs:\n      version: { type: string, required: true }\n${STEPS}`,
};

for (const backend of BACKENDS) {
  describe(`triggers from GitHub events on ${backend}`, () => {
    let testDb: TestDatabase;
    let fake: FakeGitHub;
    let server: Server;
    let app: GitHubApp;
    let parts: GitHubAppPart[];
    let liveSha: string;
    let repositoryId: number;
    const log = testLogger();

    const processAll = async () => {
      const result = await processDeliveries({
        store: testDb.db,
        handlers: combineEventHandlers(app, parts),
        log,
        retry: { maxAttempts: 1 },
      });
      assert.equal(result.failed + result.retried, 0, "every delivery is processed");
    };
    const flowsRun = async () => (await runsOf(testDb.db, REPO)).map((run) => run.flow);

    before(async () => {
      testDb = await createTestDatabase(backend);
      fake = await FakeGitHub.start();
      fake.addInstallation({ id: 7, account: "acme" });
      const repo = fake.addRepository({
        owner: "acme",
        name: "widgets",
        installationId: 7,
        files: { "README.md": "hi\n", "src/a.ts": "export {};\n" },
      });
      liveSha = repo.head;
      repositoryId = repo.id;
      const inbox = createWebhookInbox({ store: testDb.db, secret: SECRET, log });
      server = createServer((request, response) => void inbox(request, response));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      fake.webhook = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
        secret: SECRET,
      };
      app = createTestApp(testDb.db, { fake, log });
      parts = [triggersPart(app)];
      await addRepository(testDb.db, { name: REPO, installationId: 7, liveSha });
      for (const [flow, source] of Object.entries(FLOWS)) {
        await makeLive(testDb.db, REPO, flow, source, { sha: liveSha });
      }
    });
    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await fake.stop();
      await testDb.drop();
    });

    test("a push to main that changes src/ starts the push flows whose filters match, on the pushed commit", async () => {
      const { sha } = await fake.push(REPO, {
        files: { "src/b.ts": "export const b = 1;\n" },
        pusher: "octocat",
      });
      await processAll();
      const runs = await runsOf(testDb.db, REPO);
      assert.deepEqual(runs.map((run) => run.flow).sort(), ["push-any", "push-main-src"]);
      for (const run of runs) {
        assert.equal(run.actor, "octocat");
        assert.equal(run.triggerEvent, "push");
        assert.equal(run.trigger.event, "push");
        assert.equal(run.trigger.payload.after, sha);
        assert.equal(run.installationId, 7);
        assert.equal(run.headSha, sha);
        assert.equal(run.pullRequest, null);
      }
    });

    test("a push to another branch, or to main outside src/, starts only the unfiltered flow", async () => {
      await fake.push(REPO, {
        files: { "src/c.ts": "x\n" },
        branch: "feature",
        pusher: "octocat",
      });
      await fake.push(REPO, { files: { "README.md": "more\n" }, pusher: "octocat" });
      await processAll();
      assert.deepEqual((await flowsRun()).sort(), [
        "push-any",
        "push-any",
        "push-any",
        "push-main-src",
      ]);
    });

    test("pull_request.opened: the paths filter reads the pull request's files; the run is on its head", async () => {
      const before = (await flowsRun()).length;
      await fake.openPullRequest(REPO, {
        number: 5,
        headBranch: "change-src",
        user: "octocat",
        files: { "src/d.ts": "d\n" },
      });
      await processAll();
      const runs = (await runsOf(testDb.db, REPO)).slice(before);
      assert.deepEqual(
        runs.map((run) => run.flow),
        ["pr-src"],
      );
      const [run] = runs;
      assert.equal(run?.pullRequest, 5);
      assert.equal(run?.headSha, fake.pullRequest(REPO, 5).head.sha);
      assert.equal(run?.trigger.event, "pull_request");
      assert.equal(run?.trigger.payload.action, "opened");
      assert.ok(
        fake.requests.some((r) => r.method === "GET" && r.path.endsWith("/pulls/5/files")),
        "the files were listed",
      );
    });

    test("issues.labeled starts the flow for its label only, not for a bot's labeling", async () => {
      const labeled = (label: string, sender: { login: string; type: string }) => {
        const payload = patchPayload(webhookExample("issues", "labeled"), {
          installationId: 7,
          repository: { id: repositoryId, owner: "acme", name: "widgets", defaultBranch: "main" },
        });
        (payload.label as { name: string }).name = label;
        (payload.issue as { number: number }).number = 12;
        payload.sender = { ...(payload.sender as object), ...sender };
        return payload;
      };
      const before = (await flowsRun()).length;
      await fake.deliverWebhook("issues", labeled("release", { login: "octocat", type: "User" }));
      await fake.deliverWebhook("issues", labeled("bug", { login: "octocat", type: "User" }));
      await fake.deliverWebhook("issues", labeled("release", { login: "baton[bot]", type: "Bot" }));
      await processAll();
      const runs = (await runsOf(testDb.db, REPO)).slice(before);
      assert.deepEqual(
        runs.map((run) => [run.flow, run.actor, run.issue, run.headSha]),
        [["release-label", "octocat", 12, liveSha]],
      );
      assert.equal(runs[0]?.trigger.event, "issues");
    });

    test("/baton run by a writer starts the live flow with its inputs and replies", async () => {
      fake.addIssue(REPO, 3);
      fake.setRole(REPO, "writer", "write");
      await fake.comment(REPO, 3, { user: "writer", body: "Please:\n/baton run ship version=1.2" });
      await processAll();
      const ship = (await runsOf(testDb.db, REPO)).filter((run) => run.flow === "ship");
      assert.equal(ship.length, 1);
      assert.deepEqual(ship[0]?.inputs, { version: "1.2" });
      assert.equal(ship[0]?.actor, "writer");
      assert.equal(ship[0]?.issue, 3);
      assert.equal(ship[0]?.headSha, liveSha);
      assert.equal(ship[0]?.trigger.event, "manual");
      assert.equal(ship[0]?.trigger.payload.via, "comment");
      assert.equal((ship[0]?.trigger.payload.issue as { number?: number }).number, 3);
      const replies = await pendingGitHubRequests(testDb.db);
      const reply = replies.at(-1);
      assert.equal(reply?.route, "POST /repos/{owner}/{repo}/issues/{issue_number}/comments");
      assert.equal(reply?.params.issue_number, 3);
      assert.match(String(reply?.params.body), /^@writer Started ship#1\b/);
      // The reply is a request GitHub accepts (checked against its OpenAPI description).
      await app.github.installation(7).request(reply?.route ?? "", reply?.params as never);
      assert.match(fake.comments.at(-1)?.body ?? "", /Started ship#1/);
    });

    test("/baton run by a reader is refused with a reply; missing inputs are listed", async () => {
      fake.setRole(REPO, "reader", "read");
      await fake.comment(REPO, 3, { user: "reader", body: "/baton run ship version=2" });
      await fake.comment(REPO, 3, { user: "writer", body: "/baton run ship" });
      await fake.comment(REPO, 3, { user: "writer", body: "/baton run nope" });
      await fake.comment(REPO, 3, { user: "writer", body: "/baton run ship --draft" });
      await processAll();
      assert.equal((await flowsRun()).filter((flow) => flow === "ship").length, 1, "no new run");
      const bodies = (await pendingGitHubRequests(testDb.db)).slice(-3).map((r) => r.params.body);
      assert.match(String(bodies[0]), /^@reader starting `ship` needs write permission .* read/);
      assert.match(String(bodies[1]), /^@writer the inputs do not fit flow `ship`:\n- .*version/);
      assert.match(String(bodies[2]), /^@writer acme\/widgets has no live flow `nope`.*`ship`/s);
    });

    test("/baton run on a pull request puts the run on its head", async () => {
      await fake.comment(REPO, 5, { user: "writer", body: "/baton run ship version=3" });
      await processAll();
      const ship = (await runsOf(testDb.db, REPO)).filter((run) => run.flow === "ship");
      assert.equal(ship.length, 2);
      assert.equal(ship[1]?.pullRequest, 5);
      assert.equal(ship[1]?.issue, 5);
      assert.equal(ship[1]?.headSha, fake.pullRequest(REPO, 5).head.sha);
      fake.assertNoUnexpectedRequests();
      assert.deepEqual(log.problems, []);
    });

    test("a flow whose concurrency group rejects the run does not fail the delivery; the other flows start", async () => {
      await fake.push(REPO, { files: { "x.txt": "1\n" }, branch: "solo", pusher: "octocat" });
      await processAll();
      const before = await flowsRun();
      assert.equal(before.filter((flow) => flow === "push-one-at-a-time").length, 1);
      // The first run still waits for its signal: the group rejects the second.
      await fake.push(REPO, { files: { "x.txt": "2\n" }, branch: "solo", pusher: "octocat" });
      await processAll();
      const after = await flowsRun();
      assert.equal(after.filter((flow) => flow === "push-one-at-a-time").length, 1);
      assert.equal(after.length, before.length + 1, "push-any started");
      assert.equal(after.at(-1), "push-any");
      assert.equal(log.problems.length, 1);
      assert.match(log.problems[0] ?? "", /refused.*push-one-at-a-time.*concurrency group/s);
      log.problems.length = 0;
    });
  });
}

for (const backend of BACKENDS) {
  describe(`triggers after the flow loader, in one delivery, on ${backend}`, () => {
    test("a push that adds a flow listening to push starts it at once, at the pushed commit", async () => {
      const testDb = await createTestDatabase(backend);
      const fake = await FakeGitHub.start();
      const log = testLogger();
      const inbox = createWebhookInbox({ store: testDb.db, secret: SECRET, log });
      const server = createServer((request, response) => void inbox(request, response));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      fake.webhook = {
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/github/webhooks`,
        secret: SECRET,
      };
      try {
        const app = createTestApp(testDb.db, { fake, log });
        const handlers = combineEventHandlers(app, [flowsPart(app), triggersPart(app)]);
        const processAll = async () => {
          const result = await processDeliveries({ store: testDb.db, handlers, log });
          assert.equal(result.failed + result.retried, 0, "every delivery is processed");
        };
        await fake.install({
          installationId: 8,
          account: "acme",
          repositories: [{ name: "loaded" }],
        });
        await processAll();
        const { sha } = await fake.push("acme/loaded", {
          files: { ".github/flows/on-push.yml": `on:\n  github:\n    push:\n${STEPS}` },
          pusher: "octocat",
        });
        await processAll();
        const runs = await runsOf(testDb.db, "acme/loaded");
        assert.deepEqual(
          runs.map((run) => [run.flow, run.headSha, run.actor]),
          [["on-push", sha, "octocat"]],
        );
        fake.assertNoUnexpectedRequests();
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await fake.stop();
        await testDb.drop();
      }
    });
  });
}
