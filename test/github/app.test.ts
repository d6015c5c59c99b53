/**
 * The app as `npm start` runs it: its configuration from the environment, and missed
 * deliveries recovered at start through GitHub's deliveries API (the fake's), processed
 * once, asked for once.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { readAppConfig } from "../../app/github/app-config.js";
import { getDelivery } from "../../app/store/deliveries.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { recoverDeliveries } from "../../app/github/recover-deliveries.js";
import { startApp } from "../../app/server/start-app.js";
import { silentLogger } from "../../app/runtime/log.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeGitHub } from "../fake-github/server.js";
import { patchPayload, webhookExample } from "../fake-github/webhooks.js";

const KEY = "-----BEGIN RSA PRIVATE KEY-----\\nMIIB\\n-----END RSA PRIVATE KEY-----";

describe("the app's configuration", () => {
  test("a complete environment, with GitHub Enterprise Server", () => {
    const read = readAppConfig(
      {
        APP_ID: "42",
        PRIVATE_KEY: KEY,
        WEBHOOK_SECRET: "s",
        GHE_HOST: "ghe.example.com",
        PORT: "8080",
        BATON_PUBLIC_URL: "https://baton.example.com/",
      },
      "/",
    );
    assert.ok(read.ok);
    assert.equal(read.config.baseUrl, "https://ghe.example.com/api/v3");
    assert.equal(read.config.port, 8080);
    assert.equal(read.config.publicUrl, "https://baton.example.com");
    assert.match(read.config.privateKey, /KEY-----\nMIIB\n-----END/, "literal \\n become newlines");
    const github = readAppConfig({ APP_ID: "42", PRIVATE_KEY: KEY, WEBHOOK_SECRET: "s" }, "/");
    assert.ok(github.ok);
    assert.equal(github.config.baseUrl, "https://api.github.com");
  });

  test("every problem is named at once", () => {
    const read = readAppConfig(
      { APP_ID: "my-app", PRIVATE_KEY_PATH: "missing.pem", PORT: "http" },
      "/nowhere",
    );
    assert.ok(!read.ok);
    assert.deepEqual(read.problems, [
      'APP_ID must be the app\'s numeric id, not "my-app".',
      "PRIVATE_KEY_PATH names /nowhere/missing.pem, which does not exist.",
      "PRIVATE_KEY (or PRIVATE_KEY_PATH) must hold the app's PEM private key.",
      "WEBHOOK_SECRET must be the app's webhook secret (deliveries are verified with it).",
      'PORT must be a port number, not "http".',
    ]);
  });
});

for (const backend of BACKENDS) {
  describe(`missed deliveries on ${backend}`, () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await createTestDatabase(backend);
    });
    after(async () => {
      await testDb.drop();
    });

    test("a delivery that failed while the app was down is redelivered at start, once", async () => {
      const fake = await FakeGitHub.start();
      fake.addInstallation({ id: 5, account: "acme" });
      const repo = fake.addRepository({
        owner: "acme",
        name: "widgets",
        installationId: 5,
        files: { "README.md": "hi\n" },
      });
      const github = createGitHubClient({
        appId: fake.appId,
        privateKey: fake.privateKey,
        baseUrl: fake.url,
        throttle: false,
      });
      const options = {
        store: testDb.db,
        github,
        webhookSecret: "s3",
        parts: () => [],
        log: silentLogger,
        host: "127.0.0.1",
      };
      // Find the app's port, then take the app down.
      const first = await startApp({ ...options, port: 0, recoveryIntervalMs: 0 });
      const port = Number(new URL(first.url).port);
      await first.stop();
      fake.webhook = { url: `${first.url}/api/github/webhooks`, secret: "s3" };
      // Down: GitHub cannot deliver (connection refused), and records a failure.
      const payload = patchPayload(webhookExample("issues", "labeled"), {
        installationId: 5,
        repository: { id: repo.id, owner: "acme", name: "widgets" },
      });
      const missed = await fake.deliverWebhook("issues", payload);
      assert.equal(missed.status, 0);

      const running = await startApp({ ...options, port, recoveryIntervalMs: 60_000 });
      try {
        const deadline = Date.now() + 15_000;
        const redelivered = () =>
          fake.deliveries.some((d) => d.guid === missed.deliveryId && d.redelivery);
        while (
          (await getDelivery(testDb.db, missed.deliveryId))?.status !== "ignored" ||
          !redelivered()
        ) {
          assert.ok(Date.now() < deadline, "recovered and processed within 15 s of the start");
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        const sent = fake.deliveries.filter((d) => d.guid === missed.deliveryId);
        assert.deepEqual(
          sent.map((d) => [d.redelivery, d.status_code]),
          [
            [false, 0],
            [true, 202],
          ],
        );
        // Known now: a later scan asks for nothing.
        const again = await recoverDeliveries({ store: testDb.db, github, log: silentLogger });
        assert.ok(again.ran);
        assert.deepEqual(again.redelivered, []);
        assert.ok(again.listed >= 2, "the original and the redelivery are listed");
        fake.assertNoUnexpectedRequests();
      } finally {
        await running.stop();
        await fake.stop();
      }
    });

    test("a delivery that keeps failing is asked for again with backoff, five times at most", async () => {
      const fake = await FakeGitHub.start({
        webhook: { url: "http://127.0.0.1:9/api/github/webhooks", secret: "s4" },
      });
      fake.addInstallation({ id: 6, account: "acme" });
      const repo = fake.addRepository({
        owner: "acme",
        name: "gadgets",
        installationId: 6,
        files: { "README.md": "hi\n" },
      });
      const github = createGitHubClient({
        appId: fake.appId,
        privateKey: fake.privateKey,
        baseUrl: fake.url,
        throttle: false,
      });
      try {
        const missed = await fake.deliverWebhook(
          "issues",
          patchPayload(webhookExample("issues", "labeled"), {
            installationId: 6,
            repository: { id: repo.id, owner: "acme", name: "gadgets" },
          }),
        );
        // Time passes for Baton's records (GitHub's clock, which signs and lists, stays).
        const scanAfter = async (minutes: number) => {
          await testDb.db.query(
            `UPDATE github_redeliveries SET requested_at = requested_at - make_interval(mins => $1)`,
            [minutes],
          );
          return (await recoverDeliveries({ store: testDb.db, github, log: silentLogger }))
            .redelivered;
        };
        assert.deepEqual(await scanAfter(0), [missed.deliveryId]);
        assert.deepEqual(await scanAfter(1), [], "not again at once");
        assert.deepEqual(await scanAfter(10), [missed.deliveryId], "again after 10 min");
        assert.deepEqual(await scanAfter(19), [], "not before 20 more");
        assert.deepEqual(await scanAfter(1), [missed.deliveryId]);
        assert.deepEqual(await scanAfter(40), [missed.deliveryId]);
        assert.deepEqual(await scanAfter(80), [missed.deliveryId]);
        assert.deepEqual(await scanAfter(10_000), [], "five requests at most");
        assert.equal(fake.deliveries.filter((d) => d.redelivery).length, 5);
        fake.assertNoUnexpectedRequests();
      } finally {
        await fake.stop();
      }
    });
  });
}
