/**
 * Wake-ups, on Postgres and PGlite: an idle runtime does not poll; a notification wakes it
 * for new work at once, and it wakes by itself when a timer is due, although its fallback
 * poll interval (maxIdleMs) is a minute.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Runtime } from "../../app/runtime/runtime.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { CHANNELS } from "../../app/store/database.js";
import type { TestDatabase } from "../helpers/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/db.js";
import { flowFile, testLogger, writeFlows } from "../helpers/flows.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The database, counting the claims made through it. */
function counting(db: Database): { db: Database; claims: () => number } {
  let claims = 0;
  const wrapped: Database = Object.create(db) as Database;
  wrapped.query = (sql, params) => {
    if (sql.includes("SKIP LOCKED")) claims += 1;
    return db.query(sql, params);
  };
  return { db: wrapped, claims: () => claims };
}

for (const backend of BACKENDS) {
  describe(`wake-ups on ${backend}`, () => {
    let t: TestDatabase;
    let runtime: Runtime;
    let claims: () => number;
    let service: BatonService;
    let dir: string;
    const log = testLogger();

    before(async () => {
      t = await createTestDatabase(backend);
      const wrapped = counting(t.db);
      claims = wrapped.claims;
      runtime = startRuntime({ store: wrapped.db, maxIdleMs: 60_000, log });
      service = new BatonService({ store: t.db });
      dir = await writeFlows({
        "quick.yml": "steps:\n  hello:\n    run: echo hello\n",
        "timer.yml": "steps:\n  pause:\n    wait: { for: 1s }\n",
      });
      await sleep(300);
    });
    after(async () => {
      await runtime.stop();
      await t.drop();
      assert.deepEqual(log.problems, []);
    });

    it("does not poll while idle", async () => {
      const before = claims();
      await sleep(1500);
      assert.ok(claims() - before <= 1, `claimed ${claims() - before} times while idle`);
    });

    it("starts new work as soon as it is enqueued", async () => {
      const began = Date.now();
      const started = await service.startRun({
        flowFile: await flowFile(dir, "quick.yml"),
        actor: "test",
      });
      const done = await service.waitForRun(started.runId, { pollMs: 60_000 });
      assert.equal(done.run.status, "success");
      assert.ok(Date.now() - began < 3000, `took ${Date.now() - began} ms`);
    });

    it("announces a run's changes to its watchers; on Postgres to nobody else", async () => {
      const heard: string[] = [];
      const unlisten = await t.db.listen(CHANNELS.runs, (payload) => heard.push(payload));
      try {
        const unwatched = await service.startRun({
          flowFile: await flowFile(dir, "quick.yml"),
          actor: "test",
        });
        for (let i = 0; i < 150; i++) {
          if ((await service.getRun(unwatched.runId)).run.status === "success") break;
          await sleep(20);
        }
        await sleep(100);
        // PGlite's notifications are in-process and free: it sends them all.
        assert.equal(heard.includes(unwatched.runId), backend === "pglite");
        const watched = await service.startRun({
          flowFile: await flowFile(dir, "quick.yml"),
          actor: "test",
        });
        const done = await service.waitForRun(watched.runId, { pollMs: 60_000 });
        assert.equal(done.run.status, "success");
        assert.ok(heard.includes(watched.runId));
      } finally {
        await unlisten();
      }
    });

    it("wakes up for a timer when it is due", async () => {
      const began = Date.now();
      const started = await service.startRun({
        flowFile: await flowFile(dir, "timer.yml"),
        actor: "test",
      });
      const done = await service.waitForRun(started.runId, { pollMs: 60_000 });
      assert.equal(done.run.status, "success");
      const took = Date.now() - began;
      assert.ok(took >= 1000 && took < 3000, `took ${took} ms`);
    });
  });
}
