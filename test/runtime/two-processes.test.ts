/**
 * Acceptance: two runtime processes against one Postgres finish 500 runs of a flow with
 * parallel steps, and no step attempt is executed twice (every step appends its
 * BATON_IDEMPOTENCY_KEY to an effects log; the log must hold each expected key once).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, it } from "node:test";
import { BatonService } from "../../app/runtime/service.js";
import { openPostgres } from "../../app/store/postgres.js";
import type { Database } from "../../app/store/database.js";
import type { ChildRuntime } from "../helpers/child-runtime.js";
import { startChildRuntime, stopChildRuntime } from "../helpers/child-runtime.js";
import { createPostgresDatabase } from "../helpers/db.js";
import { flowFile, writeFlows } from "../helpers/flows.js";

const RUNS = 500;
const STEPS = ["a", "b", "c"];

let database: { url: string; drop(): Promise<void> };
let store: Database;
let children: ChildRuntime[] = [];

before(async () => {
  database = await createPostgresDatabase();
  store = openPostgres({ connectionString: database.url });
});
after(async () => {
  for (const child of children) await stopChildRuntime(child, "SIGKILL");
  await store.close();
  await database.drop();
});

it(`two runtime processes finish ${RUNS} runs, executing every step attempt exactly once`, async () => {
  const dir = await writeFlows({});
  const effects = join(dir, "effects.log");
  const step = `run: echo "$BATON_IDEMPOTENCY_KEY $PPID" >> "${effects}"`;
  const flowsDir = await writeFlows({
    "fan.yml": `steps:\n${STEPS.map((id) => `  ${id}:\n    ${step}\n`).join("")}`,
  });
  children = await Promise.all([
    startChildRuntime(database.url, { concurrency: 4 }),
    startChildRuntime(database.url, { concurrency: 4 }),
  ]);
  const service = new BatonService({ store });
  const file = await flowFile(flowsDir, "fan.yml");
  const began = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++)
    ids.push((await service.startRun({ flowFile: file, actor: "test" })).runId);
  for (;;) {
    const counts = await store.query<{ status: string; n: number }>(
      "SELECT status, count(*)::int AS n FROM runs GROUP BY status",
    );
    const byStatus = Object.fromEntries(counts.rows.map((row) => [row.status, row.n]));
    if ((byStatus.success ?? 0) + (byStatus.failure ?? 0) + (byStatus.cancelled ?? 0) === RUNS) {
      assert.deepEqual(byStatus, { success: RUNS });
      break;
    }
    assert.ok(
      Date.now() - began < 110_000,
      `runs did not finish in time: ${JSON.stringify(byStatus)}`,
    );
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  const seconds = (Date.now() - began) / 1000;
  const lines = (await readFile(effects, "utf8")).split("\n").filter(Boolean);
  const keys = lines.map((line) => line.split(" ")[0] ?? "");
  const expected = ids.flatMap((id) => STEPS.map((s) => `${id}/${s}/1`));
  assert.equal(keys.length, expected.length, "each attempt executed once");
  assert.deepEqual([...new Set(keys)].sort(), expected.sort());
  const processes = new Set(lines.map((line) => line.split(" ")[1]));
  assert.equal(processes.size, 2, "both processes executed steps");
  // The last runs' `run-ended` tasks may still be in hand; then nothing may be left.
  let left: { kind: string; n: number }[] = [];
  for (let i = 0; i < 100; i++) {
    left = (
      await store.query<{ kind: string; n: number }>(
        "SELECT kind, count(*)::int AS n FROM tasks GROUP BY kind",
      )
    ).rows;
    if (left.length === 0) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  assert.deepEqual(left, [], "no task is left behind");
  process.stderr.write(
    `two-processes: ${RUNS} runs (${expected.length} steps) in ${seconds.toFixed(1)} s\n`,
  );
});
