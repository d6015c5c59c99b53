/**
 * The webhook inbox over real HTTP on 127.0.0.1, on real Postgres and on PGlite: real
 * example payloads, signed by @octokit/webhooks-methods; stored, acknowledged, processed.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type { Delivery } from "../../app/store/deliveries.js";
import { getDelivery } from "../../app/store/deliveries.js";
import { PermanentDeliveryError, DeliveryLeaseLostError } from "../../app/github/errors.js";
import type { DeliveryHandlers } from "../../app/github/process-deliveries.js";
import { processDeliveries, startDeliveryWorker } from "../../app/github/process-deliveries.js";
import { createWebhookInbox, WEBHOOK_PATH } from "../../app/github/webhook-inbox.js";
import { signWebhookBody, verifyWebhookSignature } from "../../app/github/webhook-signature.js";
import { silentLogger } from "../../app/runtime/log.js";
import type { Database, Queryable } from "../../app/store/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { patchPayload, sendWebhook, webhookExample } from "../fake-github/webhooks.js";

const SECRET = "It's a Secret to Everybody";

interface Inbox {
  url: string;
  close(): Promise<void>;
}

async function startInbox(
  store: Database,
  options: { onStored?: (id: string) => void; maxBytes?: number; maxUnverifiedBytes?: number } = {},
): Promise<Inbox> {
  const inbox = createWebhookInbox({ store, secret: SECRET, log: silentLogger, ...options });
  const server: Server = createServer((request, response) => {
    if (request.url === WEBHOOK_PATH) {
      void inbox(request, response);
    } else {
      response.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}${WEBHOOK_PATH}`,
    close: () =>
      new Promise<void>((resolve, reject) =>
        server.close((error) => (error ? reject(error) : resolve())),
      ),
  };
}

async function waitFor<T>(
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function countRows(store: Database, sql: string, params: unknown[] = []): Promise<number> {
  const result = await store.query<{ n: number | string }>(sql, params);
  return Number(result.rows[0]?.n ?? 0);
}

test("the signature verifier agrees with @octokit/webhooks-methods and refuses near misses", () => {
  const body = Buffer.from(JSON.stringify(webhookExample("push")));
  const good = signWebhookBody(SECRET, body);
  assert.equal(verifyWebhookSignature(SECRET, body, good), true);
  assert.equal(verifyWebhookSignature("another secret", body, good), false);
  assert.equal(
    verifyWebhookSignature(SECRET, Buffer.concat([body, Buffer.from(" ")]), good),
    false,
  );
  assert.equal(
    verifyWebhookSignature(SECRET, body, good.toUpperCase()),
    false,
    "prefix is case-sensitive",
  );
  assert.equal(verifyWebhookSignature(SECRET, body, good.slice(0, -2)), false, "truncated");
  assert.equal(verifyWebhookSignature(SECRET, body, `sha1=${good.slice(7)}`), false);
  assert.equal(verifyWebhookSignature(SECRET, body, undefined), false);
});

for (const backend of BACKENDS) {
  describe(`webhook inbox on ${backend}`, () => {
    let testDb: TestDatabase;
    let store: Database;

    before(async () => {
      testDb = await createTestDatabase(backend);
      store = testDb.db;
      // A table of the handlers' own writes, to see what committed (test-only).
      await store.query("CREATE TABLE handler_writes (delivery_id text NOT NULL, worker text)");
    });
    after(async () => {
      await testDb.drop();
    });

    test("push, pull_request.opened and issue_comment.created are stored, acknowledged and processed", async () => {
      const seen: Delivery[] = [];
      const record = (delivery: Delivery) => {
        seen.push(delivery);
        return Promise.resolve();
      };
      const worker = startDeliveryWorker({
        store,
        handlers: { push: record, pull_request: record, issue_comment: record },
        log: silentLogger,
      });
      const inbox = await startInbox(store, { onStored: () => worker.kick() });
      try {
        const repository = { id: 4242, owner: "acme", name: "widgets", defaultBranch: "main" };
        const sent = [];
        for (const [event, action] of [
          ["push", undefined],
          ["pull_request", "opened"],
          ["issue_comment", "created"],
        ] as const) {
          const payload = patchPayload(webhookExample(event, action), {
            installationId: 77,
            repository,
          });
          const answer = await sendWebhook({ url: inbox.url, secret: SECRET, event, payload });
          assert.equal(answer.status, 202, JSON.stringify(answer.body));
          assert.deepEqual(answer.body, { id: answer.deliveryId, duplicate: false });
          sent.push({ event, action, id: answer.deliveryId, payload });
        }
        await waitFor("three deliveries handled", () =>
          Promise.resolve(seen.length >= 3 ? true : undefined),
        );
        for (const expected of sent) {
          const handled = seen.find((d) => d.id === expected.id);
          assert.ok(handled, `${expected.event} was handled`);
          assert.equal(handled.event, expected.event);
          assert.equal(handled.action, expected.action);
          assert.equal(handled.installationId, 77);
          assert.deepEqual(
            handled.payload,
            expected.payload,
            "the payload round-trips through jsonb",
          );
          const row = await waitFor("processed", async () => {
            const d = await getDelivery(store, expected.id);
            return d?.status === "processed" ? d : undefined;
          });
          assert.equal(row.attempts, 1);
        }
      } finally {
        await inbox.close();
        await worker.stop();
      }
    });

    test("a redelivered webhook (same X-GitHub-Delivery) is stored and processed once", async () => {
      let calls = 0;
      const handlers: DeliveryHandlers = {
        pull_request: async (delivery, ctx) => {
          calls += 1;
          await ctx.commit((tx) =>
            tx.query("INSERT INTO handler_writes (delivery_id) VALUES ($1)", [delivery.id]),
          );
        },
      };
      const inbox = await startInbox(store);
      try {
        const payload = patchPayload(webhookExample("pull_request", "opened"), {
          installationId: 5,
        });
        const deliveryId = "redelivered-0000-1111";
        // Twice at once (GitHub may overlap a slow delivery with a manual redelivery) …
        const [a, b] = await Promise.all([
          sendWebhook({
            url: inbox.url,
            secret: SECRET,
            event: "pull_request",
            payload,
            deliveryId,
          }),
          sendWebhook({
            url: inbox.url,
            secret: SECRET,
            event: "pull_request",
            payload,
            deliveryId,
          }),
        ]);
        assert.deepEqual([a.status, b.status], [202, 202]);
        assert.deepEqual(
          [a.body, b.body].map((body) => (body as { duplicate: boolean }).duplicate).sort(),
          [false, true],
        );
        const first = await processDeliveries({ store, handlers, log: silentLogger });
        assert.equal(first.processed, 1);
        // … and once more after it was processed.
        const c = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "pull_request",
          payload,
          deliveryId,
        });
        assert.equal(c.status, 202);
        assert.deepEqual(c.body, { id: deliveryId, duplicate: true });
        const second = await processDeliveries({ store, handlers, log: silentLogger });
        assert.equal(second.processed, 0);
        assert.equal(calls, 1);
        assert.equal(
          await countRows(store, "SELECT count(*) AS n FROM github_deliveries WHERE id = $1", [
            deliveryId,
          ]),
          1,
        );
        assert.equal(
          await countRows(
            store,
            "SELECT count(*) AS n FROM handler_writes WHERE delivery_id = $1",
            [deliveryId],
          ),
          1,
        );
      } finally {
        await inbox.close();
      }
    });

    test("unsigned, badly signed and tampered deliveries are refused with 401, recorded, and never processed", async () => {
      let calls = 0;
      const handlers: DeliveryHandlers = {
        push: () => {
          calls += 1;
          return Promise.resolve();
        },
      };
      const inbox = await startInbox(store);
      try {
        const payload = webhookExample("push");
        const body = JSON.stringify(payload);
        const cases = [
          { deliveryId: "unsigned-1", signature: null, reason: /missing/ },
          {
            deliveryId: "wrong-secret-1",
            signature: signWebhookBody("not the secret", body),
            reason: /does not match/,
          },
          {
            // Signed correctly, for another body: the signature must cover these bytes.
            deliveryId: "tampered-1",
            signature: signWebhookBody(SECRET, body.replace('"ref"', '"ref" ')),
            reason: /does not match/,
          },
          { deliveryId: "garbage-1", signature: "sha256=zz", reason: /does not match/ },
        ];
        for (const c of cases) {
          const answer = await sendWebhook({
            url: inbox.url,
            secret: SECRET,
            event: "push",
            payload,
            deliveryId: c.deliveryId,
            signature: c.signature,
          });
          assert.equal(answer.status, 401, c.deliveryId);
          const rejections = await store.query<{
            event: string;
            reason: string;
            remote_address: string;
          }>(
            "SELECT event, reason, remote_address FROM github_delivery_rejections WHERE delivery_id = $1",
            [c.deliveryId],
          );
          assert.equal(rejections.rows.length, 1, `${c.deliveryId} recorded once`);
          assert.equal(rejections.rows[0]?.event, "push");
          assert.match(rejections.rows[0]?.reason ?? "", c.reason);
          assert.equal(rejections.rows[0]?.remote_address, "127.0.0.1");
          assert.equal(
            await getDelivery(store, c.deliveryId),
            undefined,
            `${c.deliveryId} not stored`,
          );
        }
        const result = await processDeliveries({ store, handlers, log: silentLogger });
        assert.equal(result.processed, 0);
        assert.equal(calls, 0);
        // The record says who and why, never what: no column holds the body.
        const columns = await store.query<{ column_name: string }>(
          "SELECT column_name FROM information_schema.columns WHERE table_name = 'github_delivery_rejections'",
        );
        assert.ok(!columns.rows.some((c) => /payload|body/.test(c.column_name)));
      } finally {
        await inbox.close();
      }
    });

    test("unverified bodies share a memory budget: past it, 503 with Retry-After (not recorded), and the budget comes back", async () => {
      const inbox = await startInbox(store, { maxUnverifiedBytes: 10_000 });
      const url = new URL(inbox.url);
      try {
        // A sender that declares 8,000 bytes, sends a few and waits: they are reserved.
        const payload = { zen: "Design for failure.", padding: "p".repeat(7_900) };
        const body = JSON.stringify(payload);
        const slow = connect(Number(url.port), url.hostname);
        await new Promise<void>((resolve) => slow.once("connect", resolve));
        let text = "";
        const answered = new Promise<string>((resolve) => {
          slow.on("data", (chunk: Buffer) => (text += chunk.toString()));
          slow.on("end", () => resolve(text));
        });
        slow.write(
          `POST ${WEBHOOK_PATH} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n` +
            `x-github-delivery: budget-slow\r\nx-github-event: ping\r\n` +
            `x-hub-signature-256: ${signWebhookBody(SECRET, body)}\r\n` +
            `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body.slice(0, 10)}`,
        );
        await sleep(100);
        // 4,000 more would not fit (declared, or chunked: refused as the chunks come).
        const other = { zen: "Speak like a human.", padding: "q".repeat(4_000) };
        const refused = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "ping",
          payload: other,
          deliveryId: "budget-declared",
        });
        assert.equal(refused.status, 503);
        const chunked = await fetch(inbox.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-github-delivery": "budget-chunked",
            "x-github-event": "ping",
            "x-hub-signature-256": signWebhookBody(SECRET, JSON.stringify(other)),
          },
          body: new ReadableStream({
            start(controller) {
              controller.enqueue(new TextEncoder().encode(JSON.stringify(other)));
              controller.close();
            },
          }),
          duplex: "half",
        });
        assert.equal(chunked.status, 503);
        assert.equal(chunked.headers.get("retry-after"), "5");
        slow.write(body.slice(10));
        assert.match(await answered, /^HTTP\/1\.1 202/);
        assert.equal(
          await countRows(
            store,
            "SELECT count(*) AS n FROM github_delivery_rejections WHERE delivery_id LIKE 'budget-%'",
          ),
          0,
          "a busy answer says nothing about the request: not recorded",
        );
        // Verified and stored: its bytes are free again, and the same delivery now fits.
        const later = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "ping",
          payload: other,
          deliveryId: "budget-declared",
        });
        assert.equal(later.status, 202);
        // A body not signed gives its bytes back too.
        for (let i = 0; i < 3; i++) {
          const forged = await sendWebhook({
            url: inbox.url,
            secret: "not the secret",
            event: "ping",
            payload: other,
            deliveryId: `budget-forged-${i}`,
          });
          assert.equal(forged.status, 401);
        }
        const last = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "ping",
          payload: { ...other, zen: "Approachable is better than simple." },
          deliveryId: "budget-last",
        });
        assert.equal(last.status, 202);
      } finally {
        await inbox.close();
      }
    });

    test("malformed and oversized deliveries are refused and recorded", async () => {
      const inbox = await startInbox(store, { maxBytes: 64 * 1024 });
      try {
        // Signed, but not JSON.
        const notJson = await fetch(inbox.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-github-delivery": "not-json-1",
            "x-github-event": "push",
            "x-hub-signature-256": signWebhookBody(SECRET, "{nope"),
          },
          body: "{nope",
        });
        assert.equal(notJson.status, 400);
        // Signed, but no X-GitHub-Delivery: nothing to key it on.
        const body = JSON.stringify({ zen: "Keep it logically awesome." });
        const noId = await fetch(inbox.url, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "x-github-event": "ping",
            "x-hub-signature-256": signWebhookBody(SECRET, body),
          },
          body,
        });
        assert.equal(noId.status, 400);
        // Larger than the limit (here 64 KB; GitHub's 25 MB by default).
        const big = patchPayload(webhookExample("push"), {});
        big.padding = "x".repeat(70 * 1024);
        const tooBig = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "push",
          payload: big,
          deliveryId: "too-big-1",
        });
        assert.equal(tooBig.status, 413);
        const reasons = await store.query<{ delivery_id: string | null; reason: string }>(
          `SELECT delivery_id, reason FROM github_delivery_rejections
            WHERE delivery_id IN ('not-json-1', 'too-big-1') OR (delivery_id IS NULL AND event = 'ping')
            ORDER BY id`,
        );
        assert.deepEqual(
          reasons.rows.map((r) => [r.delivery_id, r.reason.split(" ").slice(0, 3).join(" ")]),
          [
            ["not-json-1", "The body is"],
            [null, "X-GitHub-Delivery is missing"],
            ["too-big-1", "The body exceeds"],
          ],
        );
        for (const id of ["not-json-1", "too-big-1"])
          assert.equal(await getDelivery(store, id), undefined);
      } finally {
        await inbox.close();
      }
    });

    test("a payload with U+0000 in a string is stored, with U+FFFD in its place", async () => {
      const inbox = await startInbox(store);
      try {
        const payload = webhookExample(
          "push",
          undefined,
          (p) => (p.commits as unknown[]).length > 0,
        );
        const commits = payload.commits as { message: string }[];
        assert.ok(commits[0], "the push example has a commit");
        commits[0].message = "fix\u0000bug";
        const answer = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "push",
          payload,
          deliveryId: "nul-1",
        });
        assert.equal(answer.status, 202);
        const stored = await getDelivery(store, "nul-1");
        assert.equal(
          (stored?.payload.commits as { message: string }[])[0]?.message,
          "fix\uFFFDbug",
        );
      } finally {
        await inbox.close();
      }
    });

    test("a burst is stored in a few grouped writes; a bad payload in a group does not fail the others", async () => {
      let inserts = 0;
      // The store as the inbox sees it, counting the statements that write deliveries.
      const lane = store.urgent?.() ?? store;
      const counted = (queryable: Queryable) => (sql: string, params?: readonly unknown[]) => {
        if (sql.includes("INSERT INTO github_deliveries")) inserts += 1;
        return queryable.query(sql, params);
      };
      const counting: Database = Object.assign(Object.create(store) as Database, {
        query: counted(store),
        urgent: () => ({ query: counted(lane) }),
      });
      const inbox = await startInbox(counting);
      try {
        const send = (ids: string[], bad?: string) =>
          Promise.all(
            ids.map((id) => {
              const payload = patchPayload(webhookExample("issues", "labeled"), {
                installationId: 5,
              });
              // jsonb refuses U+0000: this one cannot be stored as sent.
              if (id === bad) (payload.issue as { title: string }).title = "nul\u0000title";
              return sendWebhook({
                url: inbox.url,
                secret: SECRET,
                event: "issues",
                payload,
                deliveryId: id,
              });
            }),
          );
        const good = Array.from({ length: 40 }, (_, i) => `burst-${i}`);
        // The database is busy meanwhile (on PGlite, its one connection is taken): the
        // deliveries that arrive wait together, and go together.
        const busy = store.transaction(() => new Promise((resolve) => setTimeout(resolve, 300)));
        const answers = await send(good);
        await busy;
        assert.deepEqual(
          answers.map((a) => a.status),
          good.map(() => 202),
        );
        assert.ok(inserts < 40, `grouped: ${inserts} insert statements for 40 deliveries`);
        const mixed = Array.from({ length: 20 }, (_, i) => `mixed-${i}`);
        const mixedAnswers = await send(mixed, "mixed-7");
        assert.deepEqual(
          mixedAnswers.map((a) => a.status),
          mixed.map(() => 202),
        );
        assert.equal(
          await countRows(
            store,
            "SELECT count(*) AS n FROM github_deliveries WHERE id LIKE 'burst-%' OR id LIKE 'mixed-%'",
          ),
          60,
        );
        const nul = await getDelivery(store, "mixed-7");
        assert.equal((nul?.payload.issue as { title: string }).title, "nul\uFFFDtitle");
      } finally {
        await inbox.close();
      }
    });

    test("acknowledgement does not wait on a slow handler", async () => {
      const started: string[] = [];
      const finished: string[] = [];
      const worker = startDeliveryWorker({
        store,
        handlers: {
          issue_comment: async (delivery, ctx) => {
            started.push(delivery.id);
            await sleep(2000);
            finished.push(delivery.id);
            await ctx.commit((tx) =>
              tx.query("INSERT INTO handler_writes (delivery_id) VALUES ($1)", [delivery.id]),
            );
          },
        },
        log: silentLogger,
      });
      const inbox = await startInbox(store, { onStored: () => worker.kick() });
      try {
        const payload = patchPayload(webhookExample("issue_comment", "created"), {
          installationId: 9,
        });
        const first = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "issue_comment",
          payload,
        });
        assert.equal(first.status, 202);
        // The handler is now busy for 2 s; the next delivery is still answered at once.
        await waitFor("the slow handler to start", () =>
          Promise.resolve(started.includes(first.deliveryId) ? true : undefined),
        );
        const second = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "issue_comment",
          payload,
        });
        assert.equal(second.status, 202);
        // Far below the handler's 2 s, with room for a loaded machine.
        assert.ok(second.elapsedMs < 1000, `acknowledged in ${second.elapsedMs.toFixed(0)} ms`);
        assert.ok(first.elapsedMs < 1000, `acknowledged in ${first.elapsedMs.toFixed(0)} ms`);
        assert.deepEqual(
          [started, finished],
          [[first.deliveryId], []],
          "the second acknowledgement came while the first handler was still running",
        );
        for (const id of [first.deliveryId, second.deliveryId]) {
          await waitFor(`${id} processed`, async () =>
            (await getDelivery(store, id))?.status === "processed" ? true : undefined,
          );
        }
      } finally {
        await inbox.close();
        await worker.stop();
      }
    });

    test("a failing handler is retried with backoff and then succeeds", async () => {
      let attempts = 0;
      const times: number[] = [];
      const worker = startDeliveryWorker({
        store,
        handlers: {
          push: async (delivery, ctx) => {
            attempts += 1;
            times.push(Date.now());
            if (attempts < 3) throw new Error(`transient failure ${attempts}`);
            await ctx.commit((tx) =>
              tx.query("INSERT INTO handler_writes (delivery_id) VALUES ($1)", [delivery.id]),
            );
          },
        },
        retry: { baseDelayMs: 100, maxDelayMs: 1000 },
        pollMs: 50,
        log: silentLogger,
      });
      const inbox = await startInbox(store, { onStored: () => worker.kick() });
      try {
        const answer = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "push",
          payload: webhookExample("push"),
        });
        assert.equal(answer.status, 202);
        const done = await waitFor("the retried delivery processed", async () => {
          const d = await getDelivery(store, answer.deliveryId);
          return d?.status === "processed" ? d : undefined;
        });
        assert.equal(done.attempts, 3);
        assert.equal(done.lastError, "Error: transient failure 2", "the last failure is kept");
        // Backoff: 100 ms after the first failure, 200 ms after the second.
        assert.ok(times[1]! - times[0]! >= 95, `first retry after ${times[1]! - times[0]!} ms`);
        assert.ok(times[2]! - times[1]! >= 195, `second retry after ${times[2]! - times[1]!} ms`);
        assert.equal(
          await countRows(
            store,
            "SELECT count(*) AS n FROM handler_writes WHERE delivery_id = $1",
            [answer.deliveryId],
          ),
          1,
        );
      } finally {
        await inbox.close();
        await worker.stop();
      }
    });

    test("a permanent error, or too many attempts, marks the delivery failed", async () => {
      const inbox = await startInbox(store);
      try {
        const permanent = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "star",
          payload: webhookExample("star", "created"),
        });
        const transient = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "watch",
          payload: webhookExample("watch", "started"),
        });
        const handlers: DeliveryHandlers = {
          star: () => Promise.reject(new PermanentDeliveryError("not a repository we know")),
          watch: () => Promise.reject(new Error("always down")),
        };
        const retry = { maxAttempts: 2, baseDelayMs: 0 };
        // With no delay, the retry is due at once: one call sees all three attempts.
        const result = await processDeliveries({ store, handlers, retry, log: silentLogger });
        assert.deepEqual([result.failed, result.retried], [2, 1]);
        const star = await getDelivery(store, permanent.deliveryId);
        assert.deepEqual([star?.status, star?.attempts], ["failed", 1]);
        assert.match(star?.lastError ?? "", /PermanentDeliveryError: not a repository/);
        const watch = await getDelivery(store, transient.deliveryId);
        assert.deepEqual([watch?.status, watch?.attempts], ["failed", 2]);
      } finally {
        await inbox.close();
      }
    });

    test("a handler that fails after its commit leaves the delivery processed, and says so", async () => {
      const inbox = await startInbox(store);
      try {
        const answer = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "label",
          payload: webhookExample("label", "created"),
        });
        const errors: string[] = [];
        const log = { ...silentLogger, error: (message: string) => void errors.push(message) };
        const result = await processDeliveries({
          store,
          log,
          handlers: {
            label: async (delivery, ctx) => {
              await ctx.commit((tx) =>
                tx.query("INSERT INTO handler_writes (delivery_id) VALUES ($1)", [delivery.id]),
              );
              throw new Error("GitHub was down for the follow-up call");
            },
          },
        });
        assert.deepEqual([result.processed, result.retried, result.lost], [1, 0, 0]);
        assert.equal((await getDelivery(store, answer.deliveryId))?.status, "processed");
        assert.match(errors.join("\n"), /failed after its commit/);
      } finally {
        await inbox.close();
      }
    });

    test("an event with no handler is marked ignored, not retried", async () => {
      const inbox = await startInbox(store);
      try {
        const answer = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "fork",
          payload: webhookExample("fork"),
        });
        const result = await processDeliveries({ store, handlers: {}, log: silentLogger });
        assert.equal(result.ignored, 1);
        assert.equal((await getDelivery(store, answer.deliveryId))?.status, "ignored");
      } finally {
        await inbox.close();
      }
    });

    test("a worker whose lease expired loses the delivery, and its writes roll back", async () => {
      const inbox = await startInbox(store);
      try {
        const answer = await sendWebhook({
          url: inbox.url,
          secret: SECRET,
          event: "release",
          payload: webhookExample("release", "published"),
        });
        let slowError: unknown;
        let slowStarted!: () => void;
        const slowHasClaimed = new Promise<void>((resolve) => (slowStarted = resolve));
        const slow = processDeliveries({
          store,
          workerId: "slow",
          leaseMs: 100,
          log: silentLogger,
          handlers: {
            release: async (delivery, ctx) => {
              slowStarted();
              await sleep(600);
              try {
                await ctx.commit((tx) =>
                  tx.query("INSERT INTO handler_writes (delivery_id, worker) VALUES ($1, 'slow')", [
                    delivery.id,
                  ]),
                );
              } catch (error: unknown) {
                slowError = error;
                throw error;
              }
            },
          },
        });
        await slowHasClaimed;
        await sleep(150); // past the slow worker's lease
        const fast = await processDeliveries({
          store,
          workerId: "fast",
          log: silentLogger,
          handlers: {
            release: (delivery, ctx) =>
              ctx
                .commit((tx) =>
                  tx.query("INSERT INTO handler_writes (delivery_id, worker) VALUES ($1, 'fast')", [
                    delivery.id,
                  ]),
                )
                .then(() => undefined),
          },
        });
        assert.equal(fast.processed, 1);
        const slowResult = await slow;
        assert.equal(slowResult.lost, 1);
        assert.ok(slowError instanceof DeliveryLeaseLostError, String(slowError));
        const writes = await store.query<{ worker: string }>(
          "SELECT worker FROM handler_writes WHERE delivery_id = $1",
          [answer.deliveryId],
        );
        assert.deepEqual(
          writes.rows.map((r) => r.worker),
          ["fast"],
        );
        const row = await getDelivery(store, answer.deliveryId);
        assert.deepEqual([row?.status, row?.attempts], ["processed", 2]);
      } finally {
        await inbox.close();
      }
    });

    test("a stopped worker finishes the delivery in hand and claims no more", async () => {
      const inbox = await startInbox(store);
      try {
        const ids: string[] = [];
        for (let i = 0; i < 3; i++) {
          const answer = await sendWebhook({
            url: inbox.url,
            secret: SECRET,
            event: "deployment",
            payload: webhookExample("deployment", "created"),
          });
          ids.push(answer.deliveryId);
        }
        let started!: () => void;
        const firstStarted = new Promise<void>((resolve) => (started = resolve));
        const handled: string[] = [];
        const worker = startDeliveryWorker({
          store,
          log: silentLogger,
          handlers: {
            deployment: async (delivery) => {
              started();
              await sleep(300);
              handled.push(delivery.id);
            },
          },
        });
        await firstStarted;
        await worker.stop();
        assert.equal(handled.length, 1, "only the delivery in hand was finished");
        const statuses = await Promise.all(
          ids.map(async (id) => (await getDelivery(store, id))?.status),
        );
        assert.deepEqual(statuses.sort(), ["pending", "pending", "processed"]);
        // Another worker takes the rest.
        const rest = await processDeliveries({
          store,
          handlers: { deployment: () => Promise.resolve() },
          log: silentLogger,
        });
        assert.equal(rest.processed, 2);
      } finally {
        await inbox.close();
      }
    });

    test("two workers draining 40 deliveries at once process each exactly once", async () => {
      const inbox = await startInbox(store);
      try {
        const ids: string[] = [];
        for (let i = 0; i < 40; i++) {
          const answer = await sendWebhook({
            url: inbox.url,
            secret: SECRET,
            event: "status",
            payload: webhookExample("status"),
          });
          assert.equal(answer.status, 202);
          ids.push(answer.deliveryId);
        }
        const handledBy = new Map<string, string[]>();
        const handlersFor = (worker: string): DeliveryHandlers => ({
          status: async (delivery, ctx) => {
            handledBy.set(delivery.id, [...(handledBy.get(delivery.id) ?? []), worker]);
            await ctx.commit((tx) =>
              tx.query("INSERT INTO handler_writes (delivery_id, worker) VALUES ($1, $2)", [
                delivery.id,
                worker,
              ]),
            );
          },
        });
        const [a, b] = await Promise.all([
          processDeliveries({
            store,
            workerId: "a",
            handlers: handlersFor("a"),
            log: silentLogger,
          }),
          processDeliveries({
            store,
            workerId: "b",
            handlers: handlersFor("b"),
            log: silentLogger,
          }),
        ]);
        assert.equal(a.processed + b.processed, 40);
        for (const id of ids) assert.equal(handledBy.get(id)?.length, 1, `${id} handled once`);
        assert.equal(
          await countRows(
            store,
            "SELECT count(DISTINCT delivery_id) AS n FROM handler_writes WHERE delivery_id = ANY($1)",
            [ids],
          ),
          40,
        );
      } finally {
        await inbox.close();
      }
    });
  });
}
