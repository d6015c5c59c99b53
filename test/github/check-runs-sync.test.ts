/**
 * Check-run run history through the fake GitHub, on both backends: a run's check run
 * follows it (queued/in progress → completed, action_required while it waits on people),
 * updates are coalesced and paced per installation across runtimes, `retry-after` is
 * honoured, the summary stays within GitHub's size limit, and a create whose id was never
 * stored is found again rather than made twice.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getCheckRunRecord } from "../../app/store/check-runs.js";
import { CHECK_RUN_LIMITS } from "../../app/github/check-runs/render.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { CHANNELS } from "../../app/store/database.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import {
  INSTALLATION,
  assertNoCompletedCheckRunChanged,
  checkRunsOf,
  eventually,
  latestCheckRun,
  startHarness,
} from "./check-runs-harness.js";

const STEPS_THEN_DONE = `
name: Release
steps:
  build:
    run: echo "version=1.2.3" >> "$BATON_OUTPUT"
  ship:
    needs: build
    run: echo shipped
`;

const WAIT_FOR_SIGNAL = `
steps:
  gate:
    wait: { signal: go }
  done:
    needs: gate
    run: echo done
`;

for (const backend of BACKENDS) {
  describe(`check-run run history on ${backend}`, () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await createTestDatabase(backend);
    });
    after(async () => {
      await testDb.drop();
    });

    test("a run's check run goes from in progress to success, with a table of steps", async () => {
      const h = await startHarness(testDb.db, { publicUrl: "https://baton.example.com/" });
      try {
        const runId = await h.startRun(STEPS_THEN_DONE);
        h.startRuntime();
        await h.service.waitForRun(runId);
        const done = await latestCheckRun(h.fake, runId, "completed", "success");
        const all = checkRunsOf(h.fake, runId);
        assert.equal(all.length, 1, "one check run for the whole run");
        assert.equal(done.name, "baton / Release");
        assert.equal(done.head_sha, h.head);
        assert.equal(done.details_url, `https://baton.example.com/api/runs/${runId}`);
        assert.match(done.output.summary ?? "", /\| `build` \| ✅ success \|/);
        assert.match(done.output.summary ?? "", /\| `ship` \| ✅ success \|/);
        assert.deepEqual(done.actions, []);
        // It started as queued or in progress (the first write), not completed.
        const first = h.fake.requests.find(
          (r) => r.method === "POST" && r.path.endsWith("/check-runs"),
        );
        assert.ok(
          ["queued", "in_progress"].includes((first?.body as { status: string }).status),
          "created before the run finished",
        );
        const record = await getCheckRunRecord(testDb.db, runId);
        assert.equal(record?.checkRunId, done.id);
        const run = await h.service.getRun(runId);
        // The last sync showed the run's last event (re-enqueued if it came late).
        await eventually("the last event to be shown", async () => {
          const r = await getCheckRunRecord(testDb.db, runId);
          return r?.renderedSeq === run.run.lastSeq ? true : undefined;
        });
        assertNoCompletedCheckRunChanged(h.fake);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a run its concurrency group holds back goes queued → in_progress → completed", async () => {
      const h = await startHarness(testDb.db);
      try {
        const source = `
concurrency: { group: solo, mode: queue }
steps:
  work:
    run: sleep 1
`;
        const first = await h.startRun(source);
        const second = await h.startRun(source);
        assert.equal((await h.service.getRun(second)).run.status, "queued");
        h.startRuntime();
        await h.service.waitForRun(second);
        await latestCheckRun(h.fake, second, "completed", "success");
        await latestCheckRun(h.fake, first, "completed", "success");
        const statuses = h.fake.requests
          .filter((r) => /\/check-runs(\/\d+)?$/.test(r.path) && r.method !== "GET")
          .map((r) => r.body as { external_id?: string; status?: string })
          .filter((body) => body.external_id === second)
          .map((body) => body.status);
        assert.deepEqual(
          statuses.filter((status, i) => status !== statuses[i - 1]),
          ["queued", "in_progress", "completed"],
        );
        assert.equal(checkRunsOf(h.fake, second).length, 1);
        assertNoCompletedCheckRunChanged(h.fake);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a failed run is completed as failure with a Retry button", async () => {
      const h = await startHarness(testDb.db);
      try {
        const runId = await h.startRun(`
steps:
  build:
    run: "echo broken; exit 3"
`);
        h.startRuntime();
        const done = await latestCheckRun(h.fake, runId, "completed", "failure");
        assert.deepEqual(
          done.actions.map((a) => a.label),
          ["Retry"],
        );
        assert.match(done.output.summary ?? "", /❌ failure/);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a busy run makes far fewer writes than changes, paced per installation across two runtimes", async () => {
      const h = await startHarness(testDb.db, { writeIntervalMs: 100 });
      try {
        const steps = Array.from(
          { length: 25 },
          (_, i) => `  s${i}:\n${i > 0 ? `    needs: s${i - 1}\n` : ""}    run: "true"\n`,
        ).join("");
        const source = `steps:\n${steps}`;
        const t0 = Date.now();
        const runs = [await h.startRun(source), await h.startRun(source), await h.startRun(source)];
        h.startRuntime();
        h.startRuntime();
        for (const runId of runs) await h.service.waitForRun(runId);
        for (const runId of runs) await latestCheckRun(h.fake, runId, "completed", "success");
        let changes = 0;
        for (const runId of runs) changes += (await h.service.getRun(runId)).run.lastSeq;
        const writes = h.fake.writes
          .filter((w) => w.installationId === INSTALLATION)
          .map((w) => w.at)
          .sort((a, b) => a - b);
        assert.ok(
          writes.length * 2 < changes,
          `${writes.length} writes for ${changes} changes of 3 runs`,
        );
        // Each write took its own slot, 100 ms after the previous one's, and went no
        // earlier: the k-th write is at least k intervals after the first possible slot.
        writes.forEach((at, k) =>
          assert.ok(at - t0 >= k * 100 - 2, `write ${k} at +${at - t0} ms, before its slot`),
        );
        assert.equal(h.fake.rateLimited.length, 0);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a slot in the future is kept, and the task comes back for it instead of waiting", async () => {
      const h = await startHarness(testDb.db, { writeIntervalMs: 100 });
      try {
        const t0 = Date.now();
        const runs = [
          await h.startRun(STEPS_THEN_DONE),
          await h.startRun(WAIT_FOR_SIGNAL),
          await h.startRun(STEPS_THEN_DONE.replace("Release", "Release again")),
        ];
        h.startRuntime();
        await latestCheckRun(h.fake, runs[0] ?? "", "completed", "success");
        await latestCheckRun(h.fake, runs[1] ?? "", "completed", "action_required");
        await latestCheckRun(h.fake, runs[2] ?? "", "completed", "success");
        const writes = h.fake.writes.map((w) => w.at).sort((a, b) => a - b);
        writes.forEach((at, k) =>
          assert.ok(at - t0 >= k * 100 - 2, `write ${k} at +${at - t0} ms, before its slot`),
        );
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a sync back late for its kept slot uses it at once instead of taking a new one", async () => {
      const h = await startHarness(testDb.db, { writeIntervalMs: 100 });
      try {
        const runId = await h.startRun(WAIT_FOR_SIGNAL);
        // Its slot passed 10 s ago (the runtime was busy), and every slot of the next
        // hour is taken: a new slot would be an hour off, the kept one is used now.
        const nextAt = await testDb.db.transaction(async (tx) => {
          const result = await tx.query<{ next_at: Date }>(
            `INSERT INTO github_write_pacing (installation_id, next_at)
             VALUES ($1, now() + interval '1 hour')
             ON CONFLICT (installation_id) DO UPDATE SET next_at = excluded.next_at
             RETURNING next_at`,
            [INSTALLATION],
          );
          const slotAt = Date.now() - 10_000;
          // Rescheduled at its first claim (attempts 1 then), claimed again as attempt 1.
          await tx.query(
            "UPDATE tasks SET payload = $2::jsonb, run_at = to_timestamp($3 / 1000.0) WHERE key = $1",
            [`${runId}/sync-check-run`, JSON.stringify({ slotAt, slotAttempts: 1 }), slotAt],
          );
          return result.rows[0]?.next_at.getTime() ?? 0;
        });
        h.startRuntime();
        await eventually("the late sync's write", () =>
          h.fake.writes.length > 0 ? true : undefined,
        );
        assert.ok(
          (h.fake.writes[0]?.at ?? Infinity) < nextAt,
          "written in its kept slot, not in a new one",
        );
        assert.equal(checkRunsOf(h.fake, runId).length, 1);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
        // The next tests share the installation: give its hour of slots back.
        await testDb.db.query("DELETE FROM tasks WHERE kind = 'sync-check-run'");
        await testDb.db.query("DELETE FROM github_write_pacing");
      }
    });

    test("a 403 with retry-after holds the installation's writes and the task until then", async () => {
      let offset = 0;
      const h = await startHarness(testDb.db, {
        fake: { secondaryRateLimit: { perMinute: 1 }, now: () => Date.now() + offset },
      });
      try {
        const runId = await h.startRun(WAIT_FOR_SIGNAL);
        h.startRuntime();
        await latestCheckRun(h.fake, runId, "completed", "action_required");
        await h.service.signal(runId, "go", null, "tester");
        await h.service.waitForRun(runId);
        await eventually("a write refused for the rate limit", () =>
          h.fake.rateLimited.length > 0 ? true : undefined,
        );
        const pending = await eventually("the sync task to be rescheduled", async () => {
          const result = await testDb.db.query<{ run_at: Date; locked_by: string | null }>(
            "SELECT run_at, locked_by FROM tasks WHERE key = $1",
            [`${runId}/sync-check-run`],
          );
          const row = result.rows[0];
          return row && row.locked_by === null ? row : undefined;
        });
        // retry-after is up to 60 s here: the task and the installation wait that long.
        assert.ok(pending.run_at.getTime() > Date.now() + 30_000, "the task waits for retry-after");
        const pacing = await testDb.db.query<{ next_at: Date }>(
          "SELECT next_at FROM github_write_pacing WHERE installation_id = $1",
          [INSTALLATION],
        );
        assert.ok((pacing.rows[0]?.next_at.getTime() ?? 0) > Date.now() + 30_000);
        assert.equal(h.fake.rateLimited.length, 1, "no write is tried before then");

        // A minute passes (for the fake, and for the queue).
        offset += 61_000;
        await testDb.db.transaction(async (tx) => {
          await tx.query("UPDATE tasks SET run_at = now() WHERE key = $1", [
            `${runId}/sync-check-run`,
          ]);
          await tx.query("UPDATE github_write_pacing SET next_at = now()");
          await tx.notify(CHANNELS.tasks, String(Date.now()));
        });
        await latestCheckRun(h.fake, runId, "completed", "success");
        assert.equal(h.fake.rateLimited.length, 1);
        assertNoCompletedCheckRunChanged(h.fake);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a summary over 65,535 characters is cut with a note pointing to the CLI", async () => {
      const h = await startHarness(testDb.db);
      try {
        // 20 steps x 20 outputs of 199 characters: over the limit once every step is shown.
        const write = 'for o in $(seq 0 19); do printf "o$o=%0199d\\n" 0 >> "$BATON_OUTPUT"; done';
        const steps = Array.from({ length: 20 }, (_, i) => `  s${i}:\n    run: '${write}'\n`).join(
          "",
        );
        const source = `steps:\n${steps}`;
        const runId = await h.startRun(source);
        h.startRuntime();
        const done = await latestCheckRun(h.fake, runId, "completed", "success");
        const summary = done.output.summary ?? "";
        assert.ok(summary.length <= CHECK_RUN_LIMITS.summaryChars);
        assert.match(summary, new RegExp(`\\*\\*Truncated:\\*\\*.*baton show ${runId}`));
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a create whose id was never stored is found again, not made twice", async () => {
      const h = await startHarness(testDb.db);
      try {
        const runId = await h.startRun(WAIT_FOR_SIGNAL);
        // The first create reaches GitHub, then the process "dies" before storing the id.
        const crashing = createGitHubClient({
          appId: h.fake.appId,
          privateKey: h.fake.privateKey,
          baseUrl: h.fake.url,
          throttle: false,
        });
        let crashed = false;
        crashing.installation(INSTALLATION).hook.after("request", (_response, options) => {
          if (!crashed && options.method === "POST" && options.url.endsWith("/check-runs")) {
            crashed = true;
            throw new Error("the process died after GitHub created the check run");
          }
        });
        h.startRuntime({ github: crashing });
        await eventually("the crash", () => (crashed ? true : undefined));
        const shown = await latestCheckRun(h.fake, runId, "completed", "action_required");
        await eventually(
          "the id to be stored",
          async () => (await getCheckRunRecord(testDb.db, runId))?.checkRunId,
        );
        assert.equal(checkRunsOf(h.fake, runId).length, 1, "one check run, not two");
        assert.equal((await getCheckRunRecord(testDb.db, runId))?.checkRunId, shown.id);
        assert.ok(
          h.fake.requests.some(
            (r) => r.method === "GET" && /\/commits\/[0-9a-f]+\/check-runs$/.test(r.path),
          ),
          "the retry looked for it",
        );
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });
  });
}
