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
