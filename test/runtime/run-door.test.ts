/**
 * The runtime's one door into a run, on Postgres and PGlite, without workers: reports
 * addressed by idempotency key are recorded once and only while their attempt is
 * current, withdrawals change only what they match, and calls commit with the caller's
 * transaction or on their own.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  BatonService,
  InvalidAttemptKeyError,
  RunFinishedError,
  type RunDoor,
} from "../../app/runtime/index.js";
import { loadEvents } from "../../app/store/events.js";
import type { TestDatabase } from "../helpers/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/db.js";

const WORK = `on: { manual: {} }
steps:
  build:
    run: make
    retry: { attempts: 2, delay: 0s }
`;

const GATED = `on: { manual: {} }
steps:
  gate:
    approval: { required: 2 }
`;

const NOW = Date.UTC(2026, 0, 1);

for (const backend of BACKENDS) {
  describe(`the run door on ${backend}`, () => {
    let t: TestDatabase;
    let service: BatonService;
    let door: RunDoor;

    before(async () => {
      t = await createTestDatabase(backend);
      service = new BatonService({ store: t.db, now: () => NOW });
      door = service.door;
    });
    after(async () => {
      await t.drop();
    });

    const start = async (name: string, source: string) =>
      (
        await service.startRun({
          flowFile: { path: `/flows/${name}.yml`, source },
          actor: "alice",
        })
      ).runId;
    const finished = async (runId: string) =>
      (await loadEvents(t.db, runId)).filter((e) => e.type === "attempt.finished");

    it("records an outcome by its idempotency key once; a repeat changes nothing", async () => {
      const runId = await start("once", WORK);
      const key = `${runId}/build/1`;
      const outcome = { outcome: "success" as const, outputs: { v: "1" } };
      assert.deepEqual(await door.reportOutcome(t.db, key, outcome, { now: NOW + 1 }), {
        current: true,
        recorded: true,
      });
      const lastSeq = (await service.getRun(runId)).run.lastSeq;
      assert.deepEqual(await door.reportOutcome(t.db, key, outcome, { now: NOW + 2 }), {
        current: false,
        recorded: false,
      });
      assert.equal((await finished(runId)).length, 1);
      const details = await service.getRun(runId);
      assert.equal(details.run.lastSeq, lastSeq, "nothing appended by the repeat");
      assert.equal(details.run.status, "success");
      assert.deepEqual(details.state?.steps.build?.outputs, { v: "1" });
    });

    it("ignores a stale attempt's report once a retry runs, and records the current one", async () => {
      const runId = await start("stale", WORK);
      const failed = { outcome: "failure" as const, outputs: {}, error: "boom" };
      await door.reportOutcome(t.db, `${runId}/build/1`, failed, { now: NOW + 1 });
      // The retry's delay is 0 s: deciding again starts attempt 2.
      await door.advance(t.db, runId, { now: NOW + 2 });
      assert.equal((await service.getRun(runId)).state?.steps.build?.attempt, 2);
      const late = await door.reportOutcome(
        t.db,
        `${runId}/build/1`,
        { outcome: "success", outputs: {} },
        { now: NOW + 3 },
      );
      assert.deepEqual(late, { current: false, recorded: false });
      const progress = await door.reportProgress(
        t.db,
        `${runId}/build/1`,
        { detail: "late news" },
        { now: NOW + 3 },
      );
      assert.equal(progress.current, false);
      const shown = await door.reportProgress(
        t.db,
        `${runId}/build/2`,
        { detail: "compiling" },
        { now: NOW + 4 },
      );
      assert.deepEqual(shown, { current: true, recorded: true });
      assert.equal((await service.getRun(runId)).state?.steps.build?.reason, "compiling");
      await door.reportOutcome(
        t.db,
        `${runId}/build/2`,
        { outcome: "success", outputs: {} },
        { now: NOW + 5 },
      );
      assert.equal((await finished(runId)).length, 2, "attempts 1 and 2, not the late one");
      assert.equal((await service.getRun(runId)).run.status, "success");
    });

    it("commits with the caller's transaction, and not when it rolls back", async () => {
      const runId = await start("in-tx", WORK);
      const key = `${runId}/build/1`;
      await assert.rejects(
        t.db.transaction(async (tx) => {
          await door.reportOutcome(tx, key, { outcome: "success", outputs: {} }, { now: NOW });
          throw new Error("the caller's other write failed");
        }),
        /other write failed/,
      );
      assert.equal((await finished(runId)).length, 0);
      assert.equal((await service.getRun(runId)).state?.steps.build?.status, "running");
    });

    it("refuses a key that is not an attempt's", async () => {
      await assert.rejects(
        door.reportOutcome(t.db, "not-a-key", { outcome: "success", outputs: {} }, { now: NOW }),
        InvalidAttemptKeyError,
      );
    });

    it("withdraws only the counted approvals a withdrawal matches, and appends nothing otherwise", async () => {
      const runId = await start("gated", GATED);
      const facts = (commit: string) => ({
        permission: "write" as const,
        teams: [],
        codeowner: false,
        commit,
      });
      await door.submitApproval(
        t.db,
        runId,
        "gate",
        "approve",
        { user: "Bob", via: "comment", facts: facts("c1") },
        NOW,
      );
      await door.submitApproval(
        t.db,
        runId,
        "gate",
        "approve",
        { user: "carol", via: "comment", facts: facts("c2") },
        NOW,
      );
      // Both count: the gate (2 required) is done. A second run, with one approval, waits.
      const waiting = await start("gated", GATED);
      await door.submitApproval(
        t.db,
        waiting,
        "gate",
        "approve",
        { user: "Bob", via: "comment", facts: facts("c1") },
        NOW,
      );
      const lastSeq = (await service.getRun(waiting)).run.lastSeq;
      const noMatch = await door.withdrawApprovals(
        t.db,
        waiting,
        { step: "gate", reason: "dismissed", by: "dave", user: "carol" },
        NOW,
      );
      assert.equal(noMatch, false, "carol approved nothing here");
      const kept = await door.withdrawApprovals(
        t.db,
        waiting,
        { step: "gate", reason: "new commits", by: "bob", keepCommit: "c1" },
        NOW,
      );
      assert.equal(kept, false, "an approval at the kept commit stays");
      assert.equal((await service.getRun(waiting)).run.lastSeq, lastSeq, "nothing appended");
      const withdrawn = await door.withdrawApprovals(
        t.db,
        waiting,
        { step: "gate", reason: "review dismissed", by: "dave", user: "bob", via: "comment" },
        NOW,
      );
      assert.equal(withdrawn, true, "user names match case-insensitively");
      const approvals = (await service.getRun(waiting)).state?.steps.gate?.approvals ?? [];
      assert.equal(approvals[0]?.withdrawn, "review dismissed");
      // The finished gate's approvals are beyond withdrawal.
      assert.equal((await service.getRun(runId)).state?.steps.gate?.status, "done");
      assert.equal(
        await door.withdrawApprovals(t.db, runId, { step: "gate", reason: "x", by: "y" }, NOW),
        false,
      );
    });

    it("refuses signals and cancels to a finished run", async () => {
      const runId = await start("done", WORK);
      await door.reportOutcome(
        t.db,
        `${runId}/build/1`,
        { outcome: "success", outputs: {} },
        { now: NOW },
      );
      await assert.rejects(
        door.signal(t.db, runId, { name: "go", payload: null, by: "alice" }, NOW),
        RunFinishedError,
      );
      await assert.rejects(
        door.cancel(t.db, runId, { reason: "r", by: "alice" }, NOW),
        RunFinishedError,
      );
      assert.equal(
        await door.retry(t.db, runId, { by: "alice", fromStep: "build" }, NOW),
        "running",
      );
      assert.equal((await service.getRun(runId)).state?.steps.build?.attempt, 2);
    });
  });
}
