/**
 * Lanes, on Postgres and PGlite: a lane's tasks (the GitHub app's writes) have their own
 * slots. While every slot of the lane is held, a step's task is still claimed and its run
 * finishes, and the lane's waiting task is not handed into the main lane's slot; while the
 * main lane is full, the lane's tasks still run.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { Runtime, TaskHandler } from "../../app/runtime/runtime.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import { finishTask } from "../../app/runtime/task-context.js";
import { enqueueTasks } from "../../app/store/tasks.js";
import type { TestDatabase } from "../helpers/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/db.js";
import { flowFile, testLogger, writeFlows } from "../helpers/flows.js";

/** A gate that tests open; handlers wait on it. */
function gate(): { wait: Promise<void>; open: () => void } {
  let open = () => {};
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function until(what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 20_000; // a hang guard
  while (!(await check())) {
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

for (const backend of BACKENDS) {
  describe(`runtime lanes on ${backend}`, () => {
    let t: TestDatabase;
    let dir: string;
    const log = testLogger();
    before(async () => {
      t = await createTestDatabase(backend);
      dir = await writeFlows({ "quick.yml": "steps:\n  hello:\n    run: echo hello\n" });
    });
    after(async () => {
      await t.drop();
      assert.deepEqual(log.problems, []);
    });

    it("claims a step's task while the github lane is saturated, and keeps lane tasks out of step slots", async () => {
      const held = gate();
      const started: number[] = [];
      const write: TaskHandler = async (ctx, task) => {
        started.push(task.id);
        await held.wait;
        await finishTask(ctx, task, async () => {});
      };
      const runtime: Runtime = startRuntime({
        store: t.db,
        log,
        concurrency: 1,
        handlers: { "test-write": write },
        lanes: [{ name: "github", kinds: ["test-write"], concurrency: 2 }],
      });
      try {
        await t.db.transaction((tx) =>
          enqueueTasks(
            tx,
            [1, 2, 3].map((i) => ({ kind: "test-write", key: `write/${i}`, payload: {} })),
          ),
        );
        await until("the lane's two slots to be held", () => started.length === 2);
        const service = new BatonService({ store: t.db });
        const { runId } = await service.startRun({
          flowFile: await flowFile(dir, "quick.yml"),
          actor: "tester",
        });
        const run = await service.waitForRun(runId);
        assert.equal(run.run.status, "success");
        // The third write waited for its own lane: no step's slot (nor a handoff) took it.
        assert.equal(started.length, 2);
        const waiting = await t.db.query<{ locked_by: string | null }>(
          "SELECT locked_by FROM tasks WHERE kind = 'test-write' AND key = 'write/3'",
        );
        assert.equal(waiting.rows[0]?.locked_by, null);
        held.open();
        await until("every write to finish", async () => {
          const left = await t.db.query("SELECT 1 FROM tasks WHERE kind = 'test-write'");
          return left.rows.length === 0;
        });
        assert.equal(started.length, 3);
      } finally {
        held.open();
        await runtime.stop({ graceMs: 2000 });
      }
    });

    it("runs the lane's tasks while every step slot is held", async () => {
      const held = gate();
      let holding = false;
      const written: number[] = [];
      const runtime: Runtime = startRuntime({
        store: t.db,
        log,
        concurrency: 1,
        handlers: {
          "test-hold": async (ctx, task) => {
            holding = true;
            await held.wait;
            await finishTask(ctx, task, async () => {});
          },
          "test-write": async (ctx, task) => {
            await finishTask(ctx, task, async () => {});
            written.push(task.id);
          },
        },
        lanes: [{ name: "github", kinds: ["test-write"], concurrency: 1 }],
      });
      try {
        await t.db.transaction((tx) =>
          enqueueTasks(tx, [{ kind: "test-hold", key: "hold", payload: {} }]),
        );
        await until("the step slot to be held", () => holding);
        await t.db.transaction((tx) =>
          enqueueTasks(
            tx,
            [1, 2, 3].map((i) => ({ kind: "test-write", key: `write/${i}`, payload: {} })),
          ),
        );
        await until("the writes to run", () => written.length === 3);
        const hold = await t.db.query("SELECT 1 FROM tasks WHERE kind = 'test-hold'");
        assert.equal(hold.rows.length, 1, "the step slot was held all along");
      } finally {
        held.open();
        await runtime.stop({ graceMs: 2000 });
      }
    });

    it("refuses a kind given to two lanes", () => {
      assert.throws(
        () =>
          startRuntime({
            store: t.db,
            log,
            lanes: [
              { name: "a", kinds: ["x"], concurrency: 1 },
              { name: "b", kinds: ["x"], concurrency: 1 },
            ],
          }),
        /two lanes: x/,
      );
    });
  });
}
