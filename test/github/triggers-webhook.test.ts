/**
 * `on.webhook`: `POST /api/flows/{owner}/{repo}/{flow}/webhook` over real HTTP. A good
 * signature (over timestamp, delivery id and body) starts a run (202); a missing or bad
 * one, a stale timestamp, a replayed delivery id, an unknown flow or one without
 * `on.webhook` is refused and recorded (never the body); inputs that do not fit are
 * answered 422 with what is wrong; rotating the secret retires the old one; a secret
 * belongs to the repository id it was issued to; unverified bodies are bounded.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { GitHubApp } from "../../app/github/github-app.js";
import { createHmac, randomUUID } from "node:crypto";
import { connect } from "node:net";
import {
  listWebhookRejections,
  signWebhookPayload,
  signWebhookRequest,
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

    /** POST with these headers (`signWebhookRequest`'s, or made by hand). */
    const postWith = async (
      flow: string,
      body: string,
      headers: Record<string, string>,
      repository = "acme/hooks",
    ): Promise<{ status: number; body: Record<string, unknown> }> => {
      const response = await fetch(`${base}/api/flows/${repository}/${flow}/webhook`, {
        method: "POST",
        headers: { "content-type": "application/json", ...headers },
        body,
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };
    /** POST signed now with a new delivery id (`signing` secret), or with only this signature. */
    const post = (flow: string, body: string, signature: string | undefined) =>
      postWith(flow, body, {
        "x-baton-timestamp": String(Math.floor(Date.now() / 1000)),
        "x-baton-delivery": randomUUID(),
        ...(signature !== undefined ? { "x-baton-signature-256": signature } : {}),
      });
    /** A request signed properly with `key`, now, with a new delivery id. */
    const signed = (flow: string, body: string, key: string) =>
      postWith(flow, body, signWebhookRequest(key, body));
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
      const answer = await signed("deploy", body, secret);
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
      const answer = await signed("deploy", body, secret);
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
      const wrong = signWebhookRequest("not the secret", body);
      const refused = await postWith("deploy", body, wrong);
      assert.equal(refused.status, 401);
      assert.equal(refused.body.error, "bad_signature");
      // Signed for another body.
      const other = signWebhookRequest(secret, "{}");
      assert.equal((await postWith("deploy", body, other)).status, 401);
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
      assert.ok(
        !everything.includes(wrong["x-baton-signature-256"]?.slice(7) ?? "?"),
        "no signature is recorded",
      );
      assert.equal((await runsOf(testDb.db, REPO)).length, 1);
    });

    test("an unknown flow, a flow without on.webhook, and one with no secret yet are refused and recorded", async () => {
      const body = "{}";
      const unknown = await signed("nope", body, secret);
      const manual = await signed("manual-only", body, secret);
      assert.equal(unknown.status, 404);
      assert.equal(manual.status, 404);
      assert.deepEqual(unknown.body, manual.body, "the same answer: the URL reveals no flows");
      assert.equal((await signed("unsigned", body, secret)).status, 401);
      assert.deepEqual(await reasons("nope"), ["no live flow at this path"]);
      assert.deepEqual(await reasons("manual-only"), ["the live flow has no on.webhook"]);
      assert.deepEqual(await reasons("unsigned"), ["no secret issued yet"]);
    });

    test("a body over the limit is refused (413) and recorded; a non-object body is a 400", async () => {
      const big = JSON.stringify({ pad: "x".repeat(5000) });
      assert.equal((await signed("deploy", big, secret)).status, 413);
      assert.deepEqual((await reasons("deploy")).at(-1), "body over 4096 bytes");
      const list = "[1, 2]";
      assert.equal((await signed("deploy", list, secret)).status, 400);
    });

    test("rotating the secret retires the old one", async () => {
      const rotated = await webhookSecret(testDb.db, REPO, "deploy", { rotate: true, by: "admin" });
      assert.equal(rotated.generation, 2);
      assert.notEqual(rotated.secret, secret);
      const body = JSON.stringify({ inputs: { version: "2.0" } });
      assert.equal((await signed("deploy", body, secret)).status, 401);
      const answer = await signed("deploy", body, rotated.secret);
      assert.equal(answer.status, 202);
      assert.equal(answer.body.number, 2);
      secret = rotated.secret;
    });

    test("a delivery posted again is a replay: refused (409) and recorded, whether in turn or at once", async () => {
      const before = (await runsOf(testDb.db, REPO)).length;
      const body = JSON.stringify({ inputs: { version: "3.0" } });
      const headers = signWebhookRequest(secret, body);
      assert.equal((await postWith("deploy", body, headers)).status, 202);
      const again = await postWith("deploy", body, headers);
      assert.equal(again.status, 409);
      assert.equal(again.body.error, "replayed");
      const at = signWebhookRequest(secret, body);
      const together = await Promise.all([1, 2, 3].map(() => postWith("deploy", body, at)));
      assert.deepEqual(together.map((answer) => answer.status).sort(), [202, 409, 409]);
      assert.equal((await runsOf(testDb.db, REPO)).length, before + 2, "one run per delivery");
      const delivery = headers["x-baton-delivery"] ?? "";
      assert.ok((await reasons("deploy")).includes(`replayed delivery ${delivery}`));
      const kept = await testDb.db.query<{ run_id: string | null }>(
        "SELECT run_id FROM flow_webhook_deliveries WHERE delivery_id = $1",
        [delivery],
      );
      assert.equal(typeof kept.rows[0]?.run_id, "string", "the delivery names its run");
    });

    test("stale and future timestamps, missing or malformed headers, and the old body-only signature are refused (401) and recorded", async () => {
      const body = JSON.stringify({ inputs: { version: "4.0" } });
      const now = Math.floor(Date.now() / 1000);
      const stale = await postWith(
        "deploy",
        body,
        signWebhookRequest(secret, body, { timestamp: now - 301 }),
      );
      assert.equal(stale.status, 401);
      assert.equal(stale.body.error, "stale_timestamp");
      const staleMessage = typeof stale.body.message === "string" ? stale.body.message : "";
      assert.match(staleMessage, /^X-Baton-Timestamp is 30\d s old/i);
      const future = signWebhookRequest(secret, body, { timestamp: now + 400 });
      assert.equal((await postWith("deploy", body, future)).status, 401);
      const good = signWebhookRequest(secret, body);
      const { "x-baton-timestamp": _t, ...noTimestamp } = good;
      assert.equal((await postWith("deploy", body, noTimestamp)).status, 401);
      const { "x-baton-delivery": _d, ...noDelivery } = signWebhookRequest(secret, body);
      assert.equal((await postWith("deploy", body, noDelivery)).status, 401);
      const badDelivery = signWebhookRequest(secret, body, { delivery: "a:b" });
      assert.equal((await postWith("deploy", body, badDelivery)).status, 401);
      // What senders signed before: the body alone.
      const bodyOnly = `sha256=${createHmac("sha256", secret).update(body).digest("hex")}`;
      const old = await post("deploy", body, bodyOnly);
      assert.equal(old.status, 401);
      assert.equal(old.body.error, "bad_signature");
      // The skew is measured against the app's clock to the second: 301-302 s, 399-400 s.
      const recorded = (await reasons("deploy")).slice(-6);
      assert.match(recorded[0] ?? "", /^timestamp -30[12] s from now$/);
      assert.match(recorded[1] ?? "", /^timestamp (399|400) s from now$/);
      assert.deepEqual(recorded.slice(2), [
        "no timestamp",
        "no delivery id",
        "malformed delivery id",
        "signature does not match",
      ]);
      // The signature is over the timestamp and the delivery id too.
      const moved = { ...good, "x-baton-timestamp": String(now - 1) };
      assert.equal((await postWith("deploy", body, moved)).status, 401);
      assert.equal(
        good["x-baton-signature-256"],
        signWebhookPayload(
          secret,
          good["x-baton-timestamp"] ?? "",
          good["x-baton-delivery"] ?? "",
          body,
        ),
      );
    });

    test("a secret belongs to the repository id it was issued to, not to the name", async () => {
      await testDb.db.query("UPDATE github_repositories SET github_id = 77 WHERE repository = $1", [
        REPO,
      ]);
      // A secret issued by name before (migration 12 keeps it) still works for this repository.
      const body = JSON.stringify({ inputs: { version: "5.0" } });
      assert.equal((await signed("deploy", body, secret)).status, 202);
      const rotated = await webhookSecret(testDb.db, REPO, "deploy", { rotate: true, by: "admin" });
      const row = await testDb.db.query<{ derivation: string; repository_id: string }>(
        "SELECT derivation, repository_id::text FROM flow_webhook_secrets WHERE repository = $1 AND flow = 'deploy'",
        [REPO],
      );
      assert.deepEqual(row.rows[0], { derivation: "repository-id", repository_id: "77" });
      assert.equal((await signed("deploy", body, rotated.secret)).status, 202);
      // Another repository takes the name (the first was renamed or transferred away).
      await testDb.db.query("UPDATE github_repositories SET github_id = 78 WHERE repository = $1", [
        REPO,
      ]);
      const inherited = await signed("deploy", body, rotated.secret);
      assert.equal(inherited.status, 401);
      assert.equal((await reasons("deploy")).at(-1), "secret issued to another repository");
      // Its admin asks for the secret: a new one, bound to the new repository.
      const own = await webhookSecret(testDb.db, REPO, "deploy", { by: "new-admin" });
      assert.equal(own.generation, rotated.generation + 1);
      assert.notEqual(own.secret, rotated.secret);
      assert.equal((await signed("deploy", body, own.secret)).status, 202);
      assert.equal((await signed("deploy", body, rotated.secret)).status, 401);
      secret = own.secret;
    });

    test("bodies read before their signature is known are bounded: past the bound, 503 with Retry-After", async () => {
      const bounded = webhookTriggerRoute(app, { maxBodyBytes: 4096, maxUnverified: 1 });
      const small = createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://localhost");
        void bounded(request, response, url);
      });
      await new Promise<void>((resolve) => small.listen(0, "127.0.0.1", resolve));
      const port = (small.address() as AddressInfo).port;
      try {
        const body = JSON.stringify({ inputs: { version: "6.0" } });
        const headers = signWebhookRequest(secret, body);
        // A sender that sends its headers and then half its body, and waits.
        const slow = connect(port, "127.0.0.1");
        await new Promise<void>((resolve) => slow.once("connect", resolve));
        const answer = new Promise<string>((resolve) => {
          let text = "";
          slow.on("data", (chunk: Buffer) => (text += chunk.toString()));
          slow.on("end", () => resolve(text));
        });
        slow.write(
          `POST /api/flows/acme/hooks/deploy/webhook HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
            Object.entries(headers)
              .map(([name, value]) => `${name}: ${value}\r\n`)
              .join("") +
            `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 5)}`,
        );
        await new Promise((resolve) => setTimeout(resolve, 200));
        const other = JSON.stringify({ inputs: { version: "6.1" } });
        const busy = await fetch(`http://127.0.0.1:${port}/api/flows/acme/hooks/deploy/webhook`, {
          method: "POST",
          headers: { "content-type": "application/json", ...signWebhookRequest(secret, other) },
          body: other,
        });
        assert.equal(busy.status, 503);
        assert.equal(busy.headers.get("retry-after"), "1");
        slow.write(body.slice(5));
        assert.match(await answer, /^HTTP\/1\.1 202/);
        // The slot is free again.
        const later = await fetch(`http://127.0.0.1:${port}/api/flows/acme/hooks/deploy/webhook`, {
          method: "POST",
          headers: { "content-type": "application/json", ...signWebhookRequest(secret, other) },
          body: other,
        });
        assert.equal(later.status, 202);
      } finally {
        await new Promise<void>((resolve) => small.close(() => resolve()));
      }
    });
  });
}
