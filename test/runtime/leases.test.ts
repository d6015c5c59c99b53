/**
 * Leases on Postgres: a step that runs longer than the lease keeps it (heartbeat) while a
 * second runtime watches; a runtime stopped with SIGTERM gives its tasks back at once, so
 * another process continues without waiting for the lease to expire.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import type { TestDatabase } from "../helpers/db.js";
import { createTestDatabase } from "../helpers/db.js";
import { startChildRuntime, stopChildRuntime } from "../helpers/child-runtime.js";
import { flowFile, testLogger, writeFlows } from "../helpers/flows.js";

let t: TestDatabase;
before(async () => {
  t = await createTestDatabase("postgres");
});
after(async () => {
  await t.drop();
});

it("keeps the lease of a step that runs longer than it, and runs the step once", async () => {
  const dir = await writeFlows({});
  const flows = await writeFlows({
    "slow.yml": `steps:\n  slow:\n    run: echo "$BATON_IDEMPOTENCY_KEY" >> "${join(dir, "log")}"; sleep 2\n`,
  });
  const log = testLogger();
  const runtimes = [1, 2].map(() =>
    startRuntime({ store: t.db, leaseMs: 600, maxIdleMs: 300, log }),
  );
  try {
    const service = new BatonService({ store: t.db });
    const started = await service.startRun({
      flowFile: await flowFile(flows, "slow.yml"),
      actor: "test",
    });
    const done = await service.waitForRun(started.runId);
    assert.equal(done.run.status, "success");
    assert.equal(await readFile(join(dir, "log"), "utf8"), `${started.runId}/slow/1\n`);
    assert.deepEqual(log.problems, []);
  } finally {
    await Promise.all(runtimes.map((runtime) => runtime.stop()));
  }
});

it("gives a running step's task back on SIGTERM; another process runs it again with the same key", async () => {
  const dir = await writeFlows({});
  const flows = await writeFlows({
    // The first execution outlasts the child's grace period; the second ends at once.
    "long.yml": `steps:\n  long:\n    run: echo "$BATON_IDEMPOTENCY_KEY" >> "${join(dir, "log")}"; [ "$(wc -l < "${join(dir, "log")}")" -gt 1 ] || sleep 30\n`,
  });
  const url = t.url ?? "";
  const first = await startChildRuntime(url, { leaseMs: 60_000 });
  const service = new BatonService({ store: t.db });
  const started = await service.startRun({
    flowFile: await flowFile(flows, "long.yml"),
    actor: "test",
  });
  for (let i = 0; i < 100; i++) {
    if ((await readFile(join(dir, "log"), "utf8").catch(() => "")) !== "") break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const stopping = Date.now();
  await stopChildRuntime(first, "SIGTERM");
  // The child waits for up to 5 s (its grace period), then stops the step and releases it.
  assert.ok(Date.now() - stopping < 8000);
  const second = await startChildRuntime(url, { leaseMs: 60_000 });
  try {
    const done = await service.waitForRun(started.runId);
    assert.equal(done.run.status, "success");
    // Well before the first lease (60 s) would have expired.
    assert.ok(Date.now() - stopping < 20_000);
    const key = `${started.runId}/long/1`;
    assert.equal(await readFile(join(dir, "log"), "utf8"), `${key}\n${key}\n`);
  } finally {
    await stopChildRuntime(second);
  }
});

it("stops a step running in another process when its run is cancelled (a notification, not the lease)", async () => {
  const dir = await writeFlows({});
  const pidFile = join(dir, "pid");
  const flows = await writeFlows({
    "sleepy.yml": `steps:\n  sleepy:\n    run: echo $$ > "${pidFile}"; sleep 30\n`,
  });
  const url = t.url ?? "";
  // With one slot, busy with the step, the child cannot take the cancel task itself.
  const child = await startChildRuntime(url, { concurrency: 1, leaseMs: 30_000 });
  const log = testLogger();
  let local: ReturnType<typeof startRuntime> | undefined;
  try {
    const service = new BatonService({ store: t.db });
    const started = await service.startRun({
      flowFile: await flowFile(flows, "sleepy.yml"),
      actor: "test",
    });
    let pid = 0;
    for (let i = 0; i < 100 && !pid; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      pid = Number(await readFile(pidFile, "utf8").catch(() => "0"));
    }
    assert.ok(pid > 0, "the step started in the child");
    local = startRuntime({ store: t.db, log, maxIdleMs: 500 });
    const cancelling = Date.now();
    await service.cancel(started.runId, "stop", "test");
    assert.equal((await service.waitForRun(started.runId)).run.status, "cancelled");
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 100 && alive(); i++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(alive(), false, "the step's process is gone");
    assert.ok(Date.now() - cancelling < 5000, "well before a lease renewal would have noticed");
  } finally {
    await local?.stop();
    await stopChildRuntime(child);
  }
  assert.deepEqual(log.problems, []);
});
