/**
 * The store suite, run on Postgres and on PGlite: migrations, event history, the task
 * queue (SKIP LOCKED claims, leases, timers) and notifications.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { after, before, beforeEach, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { Database } from "../../app/store/database.js";
import { CHANNELS, pgErrorCode, StoreLockedError } from "../../app/store/database.js";
import { lockFileOf } from "../../app/store/data-dir-lock.js";
import { appendEvents, loadEvents } from "../../app/store/events.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import { migrate } from "../../app/store/migrate.js";
import { MIGRATIONS } from "../../app/store/migrations/index.js";
import { openPglite } from "../../app/store/pglite.js";
import { openPostgres } from "../../app/store/postgres.js";
import { allocateRunNumber, insertRun } from "../../app/store/runs.js";
import {
  claimDueTasks,
  completeTask,
  enqueueAndClaimTasks,
  enqueueTasks,
  releaseTasks,
  renewLease,
} from "../../app/store/tasks.js";
import { flowDefinition } from "../../flows-schema/schema.js";
import type { RunEvent } from "../../app/engine/types.js";
import type { Backend, TestDatabase } from "../helpers/db.js";
import { BACKENDS, createEmptyPostgresDatabase, createTestDatabase } from "../helpers/db.js";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function makeRun(db: Database, id: string): Promise<void> {
  await db.transaction(async (tx) => {
    const version = await saveFlowVersion(tx, {
      sourceKind: "local",
      repository: "local",
      path: "/tmp/x.yml",
      sha: "abc",
      name: "x",
      definition: flowDefinition.parse({ steps: { a: { run: "true" } } }),
      source: "steps: { a: { run: 'true' } }",
    });
    const number = await allocateRunNumber(tx, "local", "x");
    await insertRun(tx, {
      id,
      flowVersionId: version.id,
      repository: "local",
      flow: "x",
      number,
      actor: "me",
      triggerEvent: "manual",
      inputs: {},
      createdAt: new Date(),
    });
  });
}

for (const backend of BACKENDS) {
  describe(`store on ${backend}`, () => {
    let t: TestDatabase;
    before(async () => {
      t = await createTestDatabase(backend);
    });
    after(async () => {
      await t.drop();
    });
    beforeEach(async () => {
      await t.db.query("DELETE FROM tasks");
    });

    it("applies migrations once: a second migrate does nothing", async () => {
      assert.deepEqual(await migrate(t.db), []);
      const rows = await t.db.query<{ id: number }>("SELECT id FROM baton_migrations ORDER BY id");
      assert.deepEqual(
        rows.rows.map((r) => r.id),
        MIGRATIONS.map((m) => m.id),
      );
    });

    it("numbers runs per flow and keeps events in order, each seq once", async () => {
      await makeRun(t.db, "run-events");
      const events = [1, 2, 3].map((seq): RunEvent => ({
        type: "run.admitted",
        seq,
        at: 1_700_000_000_000 + seq,
      }));
      await t.db.transaction((tx) => appendEvents(tx, "run-events", events));
      const loaded = await loadEvents(t.db, "run-events");
      assert.deepEqual(
        loaded.map((e) => e.seq),
        [1, 2, 3],
      );
      await assert.rejects(
        t.db.transaction((tx) =>
          appendEvents(tx, "run-events", [{ type: "run.admitted", seq: 2, at: 1 }]),
        ),
        (error: unknown) => pgErrorCode(error) === "23505",
      );
      // The failed transaction left nothing behind.
      assert.equal((await loadEvents(t.db, "run-events")).length, 3);
      const second = await t.db.transaction((tx) => allocateRunNumber(tx, "local", "x"));
      assert.equal(second, 2);
    });

    it("records an attempt's outcome once (unique per run, step, attempt)", async () => {
      await makeRun(t.db, "run-attempts");
      const finished = (seq: number): RunEvent => ({
        type: "attempt.finished",
        seq,
        at: 1,
        step: "a",
        attempt: 1,
        outcome: "success",
        outputs: {},
      });
      await t.db.transaction((tx) => appendEvents(tx, "run-attempts", [finished(1)]));
      await assert.rejects(
        t.db.transaction((tx) => appendEvents(tx, "run-attempts", [finished(2)])),
        (error: unknown) => pgErrorCode(error) === "23505",
      );
    });

    it("skips a task whose key is pending", async () => {
      const inserted = await t.db.transaction((tx) =>
        enqueueTasks(tx, [
          { kind: "advance", key: "k1" },
          { kind: "advance", key: "k1" },
          { kind: "advance", key: "k2" },
        ]),
      );
      assert.equal(inserted, 2);
      assert.equal(
        await t.db.transaction((tx) => enqueueTasks(tx, [{ kind: "advance", key: "k1" }])),
        0,
      );
    });

    it("never gives one task to two concurrent claimers (SKIP LOCKED)", async () => {
      const count = 120;
      await t.db.transaction((tx) =>
        enqueueTasks(
          tx,
          Array.from({ length: count }, (_, i) => ({ kind: "advance", payload: { i } })),
        ),
      );
      const claimed: number[] = [];
      const claimer = async (workerId: string) => {
        for (;;) {
          const tasks = (await claimDueTasks(t.db, { workerId, limit: 7, leaseMs: 60_000 })).tasks;
          if (tasks.length === 0) return;
          claimed.push(...tasks.map((task) => task.id));
        }
      };
      await Promise.all(["w1", "w2", "w3", "w4", "w5", "w6"].map(claimer));
      assert.equal(claimed.length, count);
      assert.equal(new Set(claimed).size, count);
    });

    it("lets another worker take over a task whose lease expired, and not before", async () => {
      await t.db.transaction((tx) => enqueueTasks(tx, [{ kind: "execute", key: "lease" }]));
      const [task] = (await claimDueTasks(t.db, { workerId: "dead", limit: 1, leaseMs: 300 }))
        .tasks;
      assert.ok(task);
      assert.equal(task.attempts, 1);
      assert.equal(
        (await claimDueTasks(t.db, { workerId: "alive", limit: 1, leaseMs: 300 })).tasks.length,
        0,
      );
      assert.ok(await renewLease(t.db, task.id, "dead", 300));
      await sleep(450);
      const [takenOver] = (
        await claimDueTasks(t.db, { workerId: "alive", limit: 1, leaseMs: 60_000 })
      ).tasks;
      assert.equal(takenOver?.id, task.id);
      assert.equal(takenOver.attempts, 2);
      // The old holder can neither renew nor complete it any more.
      assert.equal(await renewLease(t.db, task.id, "dead", 300), false);
      assert.equal(await t.db.transaction((tx) => completeTask(tx, task.id, "dead")), false);
      assert.equal(await t.db.transaction((tx) => completeTask(tx, task.id, "alive")), true);
    });

    it("does not claim a timer before its run_at, and reports when it is due", async () => {
      const runAt = new Date(Date.now() + 600);
      await t.db.transaction((tx) => enqueueTasks(tx, [{ kind: "advance", key: "timer", runAt }]));
      const early = await claimDueTasks(t.db, { workerId: "w", limit: 10, leaseMs: 1000 });
      assert.equal(early.tasks.length, 0);
      assert.equal(early.nextAt?.getTime(), runAt.getTime());
      await sleep(runAt.getTime() - Date.now() + 50);
      assert.equal(
        (await claimDueTasks(t.db, { workerId: "w", limit: 10, leaseMs: 1000 })).tasks.length,
        1,
      );
    });

    it("gives released tasks back at once", async () => {
      await t.db.transaction((tx) => enqueueTasks(tx, [{ kind: "advance", key: "release" }]));
      const [task] = (
        await claimDueTasks(t.db, { workerId: "stopping", limit: 1, leaseMs: 60_000 })
      ).tasks;
      assert.ok(task);
      assert.equal(await t.db.transaction((tx) => releaseTasks(tx, [task.id], "stopping")), 1);
      const [again] = (await claimDueTasks(t.db, { workerId: "other", limit: 1, leaseMs: 60_000 }))
        .tasks;
      assert.equal(again?.id, task.id);
      assert.equal(again.attempts, 1);
    });

    it("claims tasks on enqueue for their worker; another takes them over when the lease expires", async () => {
      const heard: string[] = [];
      const unlisten = await t.db.listen(CHANNELS.tasks, (payload) => heard.push(payload));
      try {
        const { inserted, claimed } = await t.db.transaction((tx) =>
          enqueueAndClaimTasks(
            tx,
            [
              { kind: "execute", key: "follow-up-1" },
              { kind: "execute", key: "follow-up-2" },
              { kind: "advance", key: "later", runAt: new Date(Date.now() + 3_600_000) },
            ],
            { claim: { workerId: "finisher", leaseMs: 300, limit: 1 }, announceWithinMs: 30_000 },
          ),
        );
        assert.equal(inserted, 3);
        assert.deepEqual(
          claimed.map((task) => [task.key, task.lockedBy, task.attempts]),
          [["follow-up-1", "finisher", 1]],
        );
        // The unclaimed, due task is announced; the one claimed and the far timer are not.
        for (let i = 0; i < 50 && heard.length === 0; i++) await sleep(20);
        assert.equal(heard.length, 1);
        const other = await claimDueTasks(t.db, { workerId: "other", limit: 5, leaseMs: 60_000 });
        assert.deepEqual(
          other.tasks.map((task) => task.key),
          ["follow-up-2"],
        );
        // The next claimable moment: the claimed task's lease end, well before the timer.
        assert.ok(other.nextAt && other.nextAt.getTime() < Date.now() + 1000);
        await sleep(450);
        // The finisher died: its lease expired, and another worker takes the task over.
        const [takenOver] = (
          await claimDueTasks(t.db, { workerId: "other", limit: 5, leaseMs: 60_000 })
        ).tasks;
        assert.ok(takenOver);
        assert.equal(takenOver.id, claimed[0]?.id);
        assert.equal(takenOver.attempts, 2);
        assert.equal(
          await t.db.transaction((tx) => completeTask(tx, takenOver.id, "finisher")),
          false,
        );
        assert.equal(await t.db.transaction((tx) => completeTask(tx, takenOver.id, "other")), true);
      } finally {
        await unlisten();
      }
    });

    it("claims and says when the next task is due, in one statement", async () => {
      const runAt = new Date(Date.now() + 60_000);
      await t.db.transaction((tx) =>
        enqueueTasks(tx, [
          { kind: "advance", key: "now" },
          { kind: "advance", key: "soon", runAt },
        ]),
      );
      const first = await claimDueTasks(t.db, { workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.deepEqual(
        first.tasks.map((task) => task.key),
        ["now"],
      );
      // It filled its limit: there may be more, and it does not look further.
      assert.equal(first.nextAt, undefined);
      const second = await claimDueTasks(t.db, { workerId: "w", limit: 1, leaseMs: 60_000 });
      assert.equal(second.tasks.length, 0);
      assert.equal(second.nextAt?.getTime(), runAt.getTime());
    });

    it("notifies listeners when an enqueuing transaction commits, not when it rolls back", async () => {
      const heard: string[] = [];
      const unlisten = await t.db.listen(CHANNELS.tasks, (payload) => heard.push(payload));
      try {
        await assert.rejects(
          t.db.transaction(async (tx) => {
            await enqueueTasks(tx, [{ kind: "advance", key: "rolled-back" }]);
            throw new Error("roll back");
          }),
        );
        const runAt = new Date(Date.now() + 5000);
        await t.db.transaction((tx) =>
          enqueueTasks(tx, [{ kind: "advance", key: "committed", runAt }]),
        );
        for (let i = 0; i < 50 && heard.length === 0; i++) await sleep(20);
        assert.deepEqual(heard, [String(runAt.getTime())]);
      } finally {
        await unlisten();
      }
    });
  });
}

describe("migrations on Postgres, several processes at once", () => {
  it("two migrators on an empty database both succeed and apply each migration once", async () => {
    const empty = await createEmptyPostgresDatabase();
    const a = openPostgres({ connectionString: empty.url });
    const b = openPostgres({ connectionString: empty.url });
    try {
      const [fromA, fromB] = await Promise.all([migrate(a), migrate(b)]);
      assert.deepEqual(
        [...fromA, ...fromB].sort((x, y) => x - y),
        MIGRATIONS.map((m) => m.id),
      );
      const tables = await a.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name IN ('runs', 'tasks', 'run_events', 'steps', 'step_logs', 'flow_versions')",
      );
      assert.equal(tables.rows[0]?.n, 6);
    } finally {
      await a.close();
      await b.close();
      await empty.drop();
    }
  });
});

describe("the PGlite data directory lock", () => {
  const backend: Backend = "pglite";
  it("refuses a second process with StoreLockedError naming the owner, and takes over a stale lock", async () => {
    const t = await createTestDatabase(backend);
    const dataDir = t.dataDir ?? "";
    try {
      const probe = fileURLToPath(new URL("./open-pglite-probe.js", import.meta.url));
      const output = await new Promise<string>((resolve, reject) => {
        const child = spawn(process.execPath, [probe, dataDir], {
          stdio: ["ignore", "pipe", "inherit"],
        });
        let text = "";
        child.stdout.on("data", (chunk: Buffer) => (text += chunk.toString()));
        child.on("error", reject);
        child.on("close", () => resolve(text));
      });
      const result = JSON.parse(output) as { name: string; pid: number; message: string };
      assert.equal(result.name, "StoreLockedError");
      assert.equal(result.pid, process.pid);
      assert.match(result.message, new RegExp(`in use by process ${process.pid}`));
    } finally {
      await t.db.close();
    }
    // A lock left by a process that no longer exists is stale: the next open takes it over.
    writeFileSync(
      lockFileOf(dataDir),
      JSON.stringify({
        pid: 2 ** 22 + 12345,
        hostname: (await import("node:os")).hostname(),
        startedAt: "",
      }),
    );
    const reopened = await openPglite(dataDir);
    await reopened.close();
    await t.drop();
    assert.ok(StoreLockedError);
  });
});
