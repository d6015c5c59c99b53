/**
 * `on.schedule`: two tickers on one database (Postgres: two connection pools, as two app
 * processes have; PGlite: one process, two tickers) start exactly one run per tick, and
 * after a downtime one catch-up run for the latest missed tick. The clock is injected;
 * the tickers poll every few milliseconds.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { GitHubApp } from "../../app/github/github-app.js";
import type { ScheduleTicker } from "../../app/github/triggers/schedule-ticker.js";
import { startScheduleTicker } from "../../app/github/triggers/schedule-ticker.js";
import type { Database } from "../../app/store/database.js";
import { openPostgres } from "../../app/store/postgres.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { testLogger } from "../helpers/flows.js";
import { addRepository, createTestApp, makeLive, runsOf } from "./triggers-setup.js";

const REPO = "acme/clock";
const FLOW = `on:\n  schedule:\n    - cron: "* * * * *"\nsteps:\n  hold: { wait: { signal: go } }\n`;

async function until(what: string, condition: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    assert.ok(Date.now() < deadline, `hang guard: ${what} within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Room for a wrong extra run: several polls of both tickers. */
const settle = () => new Promise((resolve) => setTimeout(resolve, 150));

for (const backend of BACKENDS) {
  describe(`the schedule ticker on ${backend}`, () => {
    let testDb: TestDatabase;
    let secondStore: Database;
    let clock = Date.parse("2026-03-02T10:00:30Z");
    const log = testLogger();
    let apps: GitHubApp[];

    before(async () => {
      testDb = await createTestDatabase(backend);
      // Postgres: a second process has its own pool. PGlite has one process.
      secondStore =
        backend === "postgres" && testDb.url
          ? openPostgres({ connectionString: testDb.url, max: 5 })
          : testDb.db;
      apps = [testDb.db, secondStore].map((store) =>
        createTestApp(store, { now: () => clock, log }),
      );
      await addRepository(testDb.db, { name: REPO, installationId: 3, liveSha: "a".repeat(40) });
      await makeLive(testDb.db, REPO, "every-minute", FLOW, {
        sha: "a".repeat(40),
        now: new Date(clock),
      });
    });
    after(async () => {
      if (secondStore !== testDb.db) await secondStore.close();
      await testDb.drop();
    });

    const startTickers = (): ScheduleTicker[] =>
      apps.map((app) => startScheduleTicker(app, { pollMs: 5, actor: "baton[bot]" }));
    const ticks = async () =>
      (await runsOf(testDb.db, REPO)).map((run) => run.trigger.payload.tick as string);
    const nextAt = async () =>
      (
        await testDb.db.query<{ next_at: Date }>(
          "SELECT next_at FROM flow_schedules WHERE repository = $1",
          [REPO],
        )
      ).rows[0]?.next_at.toISOString();

    test("each tick starts exactly one run, with two tickers; after downtime one catch-up run", async () => {
      let tickers = startTickers();
      try {
        // Nothing is due before the first tick.
        await settle();
        assert.deepEqual(await ticks(), []);

        clock = Date.parse("2026-03-02T10:01:05Z");
        await until("the first tick's run", async () => (await ticks()).length > 0);
        await settle();
        assert.deepEqual(await ticks(), ["2026-03-02T10:01:00.000Z"]);
        assert.equal(await nextAt(), "2026-03-02T10:02:00.000Z");

        clock = Date.parse("2026-03-02T10:02:01Z");
        await until("the second tick's run", async () => (await ticks()).length > 1);
        await settle();
        assert.deepEqual(await ticks(), ["2026-03-02T10:01:00.000Z", "2026-03-02T10:02:00.000Z"]);
      } finally {
        await Promise.all(tickers.map((ticker) => ticker.stop()));
      }

      // Downtime: no ticker runs from 10:02:01 to 10:09:30; seven ticks are missed.
      clock = Date.parse("2026-03-02T10:09:30Z");
      tickers = startTickers();
      try {
        await until("the catch-up run", async () => (await ticks()).length > 2);
        await settle();
        assert.deepEqual(await ticks(), [
          "2026-03-02T10:01:00.000Z",
          "2026-03-02T10:02:00.000Z",
          "2026-03-02T10:09:00.000Z",
        ]);
        assert.equal(await nextAt(), "2026-03-02T10:10:00.000Z");
      } finally {
        await Promise.all(tickers.map((ticker) => ticker.stop()));
      }

      const runs = await runsOf(testDb.db, REPO);
      assert.deepEqual(
        runs.map((run) => [
          run.number,
          run.actor,
          run.triggerEvent,
          run.installationId,
          run.headSha,
        ]),
        [1, 2, 3].map((n) => [n, "baton[bot]", "schedule", 3, "a".repeat(40)]),
      );
      assert.deepEqual(runs[0]?.trigger.payload, {
        schedule: "* * * * *",
        timezone: "UTC",
        tick: "2026-03-02T10:01:00.000Z",
      });
      assert.deepEqual(log.problems, []);
    });

    test("a removed repository's schedules start nothing", async () => {
      await testDb.db.query(
        "UPDATE github_repositories SET removed_at = now() WHERE repository = $1",
        [REPO],
      );
      clock = Date.parse("2026-03-02T10:30:00Z");
      const tickers = startTickers();
      try {
        await settle();
        assert.equal((await ticks()).length, 3);
      } finally {
        await Promise.all(tickers.map((ticker) => ticker.stop()));
      }
    });
  });
}
