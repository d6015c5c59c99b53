/**
 * Acceptance: crash recovery. A runtime child process works through 200 runs of a flow
 * with parallel steps, a retry and a wait, and is killed with SIGKILL at random moments
 * (at least 20 times), then restarted. At the end every run has succeeded, and the
 * effects log holds each step attempt exactly once, although an attempt cut short by a
 * kill is executed again: with the SAME idempotency key, which the step honours (it
 * records its key under flock only if the key is not there yet, as an external system
 * honouring idempotency keys would).
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, it } from "node:test";
import type { RunEvent } from "../../app/engine/types.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { openPostgres } from "../../app/store/postgres.js";
import type { ChildRuntime } from "../helpers/child-runtime.js";
import { startChildRuntime, stopChildRuntime } from "../helpers/child-runtime.js";
import { createPostgresDatabase } from "../helpers/db.js";
import { flowFile, writeFlows } from "../helpers/flows.js";

const RUNS = 200;
const MIN_KILLS = 20;
const LEASE_MS = 1500;

let database: { url: string; drop(): Promise<void> };
let store: Database;
let child: ChildRuntime | undefined;

before(async () => {
  database = await createPostgresDatabase();
  store = openPostgres({ connectionString: database.url });
});
after(async () => {
  if (child) await stopChildRuntime(child, "SIGKILL");
  await store.close();
  await database.drop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it(`finishes ${RUNS} runs correctly although the runtime is killed at random ${MIN_KILLS}+ times`, async () => {
  const dir = await writeFlows({});
  const effects = join(dir, "effects.log");
  const executions = join(dir, "executions.log");
  // Every execution is logged; the effect itself happens once per key.
  const record = `echo "$BATON_IDEMPOTENCY_KEY" >> "${executions}"; flock "${effects}.lock" sh -c 'grep -qxF "$BATON_IDEMPOTENCY_KEY" "${effects}" 2>/dev/null || echo "$BATON_IDEMPOTENCY_KEY" >> "${effects}"'`;
  const flowsDir = await writeFlows({
    "crashy.yml": `
steps:
  a:
    run: sleep 0.$((RANDOM % 3)); ${record}
  b:
    run: ${record}; sleep 0.$((RANDOM % 3))
  flaky:
    retry: { attempts: 3, delay: 1s, backoff: 1 }
    run: |
      ${record}
      if [ "$BATON_ATTEMPT" = 1 ]; then exit 1; fi
  pause:
    needs: [a, b]
    wait: { for: 1s }
  last:
    needs: [pause, flaky]
    run: ${record}
`,
  });
  const service = new BatonService({ store });
  const file = await flowFile(flowsDir, "crashy.yml");
  const ids: string[] = [];
  for (let i = 0; i < RUNS; i++)
    ids.push((await service.startRun({ flowFile: file, actor: "test" })).runId);

  const began = Date.now();
  let kills = 0;
  const finished = async () => {
    const result = await store.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM runs WHERE status IN ('success', 'failure', 'cancelled')",
    );
    return result.rows[0]?.n ?? 0;
  };
  child = await startChildRuntime(database.url, { concurrency: 8, leaseMs: LEASE_MS });
  // Kill at random moments while the runs are in progress, then let it finish.
  while (kills < MIN_KILLS || (await finished()) < RUNS) {
    assert.ok(
      Date.now() - began < 150_000,
      `runs did not finish in time (${await finished()} of ${RUNS})`,
    );
    if (kills < MIN_KILLS) {
      await sleep(200 + Math.random() * 1500);
      await stopChildRuntime(child, "SIGKILL");
      kills += 1;
      child = await startChildRuntime(database.url, { concurrency: 8, leaseMs: LEASE_MS });
    } else {
      await sleep(250);
    }
  }
  const seconds = (Date.now() - began) / 1000;

  const runs = await store.query<{ status: string; n: number }>(
    "SELECT status, count(*)::int AS n FROM runs GROUP BY status",
  );
  assert.deepEqual(runs.rows, [{ status: "success", n: RUNS }]);

  const expected = ids.flatMap((id) => [
    `${id}/a/1`,
    `${id}/b/1`,
    `${id}/flaky/1`,
    `${id}/flaky/2`,
    `${id}/last/1`,
  ]);
  const recorded = (await readFile(effects, "utf8")).split("\n").filter(Boolean);
  assert.equal(recorded.length, new Set(recorded).size, "no effect happened twice");
  assert.deepEqual(
    [...recorded].sort(),
    [...expected].sort(),
    "every attempt's effect happened, with its own key",
  );

  // The history agrees: each attempt started once, and finished once.
  const events = await store.query<{ run_id: string; data: RunEvent }>(
    "SELECT run_id, data FROM run_events WHERE type IN ('attempt.started', 'attempt.finished')",
  );
  const started = events.rows.filter((row) => row.data.type === "attempt.started");
  const keyOf = (row: { run_id: string; data: RunEvent }) =>
    "step" in row.data && "attempt" in row.data
      ? `${row.run_id}/${row.data.step}/${row.data.attempt}`
      : "";
  const waits = ids.map((id) => `${id}/pause/1`);
  assert.deepEqual(started.map(keyOf).sort(), [...expected, ...waits].sort());
  const reported = events.rows.filter((row) => row.data.type === "attempt.finished").map(keyOf);
  assert.equal(reported.length, new Set(reported).size);

  const executed = (await readFile(executions, "utf8")).split("\n").filter(Boolean);
  process.stderr.write(
    `crash: ${RUNS} runs, ${kills} kills, ${executed.length} executions for ${expected.length} attempts ` +
      `(${executed.length - expected.length} repeated after a kill, all recognised) in ${seconds.toFixed(1)} s\n`,
  );
});
