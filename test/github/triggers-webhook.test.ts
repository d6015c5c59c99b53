/**
 * `on.webhook`: `POST /api/flows/{owner}/{repo}/{flow}/webhook` over real HTTP. A good
 * signature starts a run (202); a missing or bad one, an unknown flow or one without
 * `on.webhook` is refused and recorded (never the body); inputs that do not fit are
 * answered 422 with what is wrong; rotating the secret retires the old one.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { GitHubApp } from "../../app/github/github-app.js";
import {
  listWebhookRejections,
  signWebhookBody,
  webhookSecret,
} from "../../app/github/triggers/index.js";
import { webhookTriggerRoute } from "../../app/github/triggers/webhook-route.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { testLogger } from "../helpers/flows.js";
import { addRepository, createTestApp, makeLive, runsOf } from "./triggers-setup.js";

const REPO = "acme/hooks";
const SHA = "b".repeat(40);
const STEPS = "steps:\n  hold: { wait: { signal: go } }\n";
const FLOWS = {
  // `webhook:` with no value (null) is as good as `webhook: {}`.
  deploy: `on:\n  webhook:\n  manual:\n    inputs:\n      version: { type: string, required: true }\n${STEPS}`,
  unsigned: `on:\n  webhook: {}\n${STEPS}`,
  "manual-only": `on:\n  manual: {}\n${STEPS}`,
};

for (const backend of BACKENDS) {
  describe(`the webhook trigger route on ${backend}`, () => {
    let testDb: TestDatabase;
    let server: Server;
    let app: GitHubApp;
    let base: string;
    let secret: string;
    const log = testLogger();

    const post = async (
      flow: string,
      body: string,
      signature: string | undefined,
    ): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${base}/api/flows/acme/hooks/${flow}/webhook`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(signature !== undefined ? { "x-baton-signature-256": signature } : {}),
        },
        body,
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    const reasons = async (flow: string) =>
      (await listWebhookRejections(testDb.db, REPO, flow)).map((r) => r.reason).reverse();

    before(async () => {
      testDb = await createTestDatabase(backend);
      app = createTestApp(testDb.db, { log });
      await addRepository(testDb.db, { name: REPO, installationId: 4, liveSha: SHA });
      for (const [flow, source] of Object.entries(FLOWS)) {
        await makeLive(testDb.db, REPO, flow, source, { sha: SHA });
      }
      const route = webhookTriggerRoute(app, { maxBodyBytes: 4096 });
      server = createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://localhost");
        void route(request, response, url).then((handled) => {
          if (!handled) response.writeHead(404).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await testDb.drop();
    });

    test("webhookSecret issues a derived secret once, and the URL path", async () => {
      const issued = await webhookSecret(testDb.db, REPO, "deploy", { by: "admin" });
      assert.equal(issued.generation, 1);
      assert.equal(issued.path, "/api/flows/acme/hooks/deploy/webhook");
      assert.match(issued.secret, /^[0-9a-f]{64}$/);
      const again = await webhookSecret(testDb.db, REPO, "deploy");
      assert.deepEqual(again, issued, "asking again gives the same secret");
      const stored = await testDb.db.query("SELECT * FROM flow_webhook_secrets");
      assert.ok(!JSON.stringify(stored.rows).includes(issued.secret), "the secret is not stored");
      secret = issued.secret;
    });

    test("a well-signed request starts a run with the body as its payload and its inputs", async () => {
      const body = JSON.stringify({ inputs: { version: "1.4" }, ref: "v1.4" });
      const answer = await post("deploy", body, signWebhookBody(secret, body));
      assert.equal(answer.status, 202, JSON.stringify(answer.body));
      assert.equal(answer.body.number, 1);
      assert.equal(typeof answer.body.runId, "string");
      const [run] = await runsOf(testDb.db, REPO);
      assert.equal(run?.triggerEvent, "webhook");
      assert.deepEqual(run?.trigger.payload, { inputs: { version: "1.4" }, ref: "v1.4" });
      assert.deepEqual(run?.inputs, { version: "1.4" });
      assert.equal(run?.actor, "webhook");
      assert.equal(run?.installationId, 4);
      assert.equal(run?.headSha, SHA);
    });

    test("inputs that do not fit are answered 422 with what is wrong", async () => {
      const body = JSON.stringify({ inputs: { colour: "red" } });
      const answer = await post("deploy", body, signWebhookBody(secret, body));
      assert.equal(answer.status, 422);
      assert.equal(answer.body.error, "invalid_inputs");
      const errors = answer.body.errors as string[];
      assert.ok(
        errors.some((e) => e.includes("version")),
        errors.join("; "),
      );
      assert.ok(
        errors.some((e) => e.includes("colour")),
        errors.join("; "),
      );
      assert.equal((await runsOf(testDb.db, REPO)).length, 1);
    });

    test("unsigned, malformed and wrong signatures are refused and recorded, never the body", async () => {
      const body = JSON.stringify({ inputs: { version: "9" }, secretish: "do-not-keep-me" });
      assert.equal((await post("deploy", body, undefined)).status, 401);
      assert.equal((await post("deploy", body, "sha1=abc")).status, 401);
      const wrong = signWebhookBody("not the secret", body);
      const refused = await post("deploy", body, wrong);
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, "bad_signature");
      // Signed for another body.
      assert.equal((await post("deploy", body, signWebhookBody(secret, "{}"))).status, 401);
      assert.deepEqual(await reasons("deploy"), [
        "no signature",
        "malformed signature",
        "signature does not match",
        "signature does not match",
      ]);
      const everything = JSON.stringify(
        (await testDb.db.query("SELECT * FROM flow_webhook_rejections")).rows,
      );
      assert.ok(!everything.includes("do-not-keep-me"), "no body is recorded");
      assert.ok(!everything.includes(wrong.slice(7)), "no signature is recorded");
      assert.equal((await runsOf(testDb.db, REPO)).length, 1);
    });

    test("an unknown flow, a flow without on.webhook, and one with no secret yet are refused and recorded", async () => {
      const body = "{}";
      const unknown = await post("nope", body, signWebhookBody(secret, body));
      const manual = await post("manual-only", body, signWebhookBody(secret, body));
      assert.equal(unknown.status, 404);
      assert.equal(manual.status, 404);
      assert.deepEqual(unknown.body, manual.body, "the same answer: the URL reveals no flows");
      assert.equal((await post("unsigned", body, signWebhookBody(secret, body))).status, 401);
      assert.deepEqual(await reasons("nope"), ["no live flow at this path"]);
      assert.deepEqual(await reasons("manual-only"), ["the live flow has no on.webhook"]);
      assert.deepEqual(await reasons("unsigned"), ["no secret issued yet"]);
    });

    test("a body over the limit is refused (413) and recorded; a non-object body is a 400", async () => {
      const big = JSON.stringify({ pad: "x".repeat(5000) });
      assert.equal((await post("deploy", big, signWebhookBody(secret, big))).status, 413);
      assert.deepEqual((await reasons("deploy")).at(-1), "body over 4096 bytes");
      const list = "[1, 2]";
      assert.equal((await post("deploy", list, signWebhookBody(secret, list))).status, 400);
    });

    test("rotating the secret retires the old one", async () => {
      const rotated = await webhookSecret(testDb.db, REPO, "deploy", { rotate: true, by: "admin" });
      assert.equal(rotated.generation, 2);
      assert.notEqual(rotated.secret, secret);
      const body = JSON.stringify({ inputs: { version: "2.0" } });
      assert.equal((await post("deploy", body, signWebhookBody(secret, body))).status, 401);
      const answer = await post("deploy", body, signWebhookBody(rotated.secret, body));
      assert.equal(answer.status, 202);
      assert.equal(answer.body.number, 2);
    });
  });
}
