/**
 * The runtime with the real engine and real shell processes, on Postgres and on PGlite:
 * parallel steps, outputs, retries, waits, signals, approvals, cancellation of a process
 * tree, concurrency groups, sub-flows, and steps that need the GitHub App.
 */
import assert from "node:assert/strict";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConcurrencyRejectedError, StepNotWaitingError } from "../../app/runtime/errors.js";
import type { Runtime } from "../../app/runtime/runtime.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import { localShell } from "../../app/runner/local-shell.js";
import type { TestDatabase } from "../helpers/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/db.js";
import { flowFile, testLogger, writeFlows } from "../helpers/flows.js";

const FLOWS: Record<string, string> = {
  "outputs.yml": `
outputs:
  got: \${{ steps.c.outputs.got }}
steps:
  a:
    run: |
      sleep 0.3
      echo "x=1" >> "$BATON_OUTPUT"
  b:
    run: |
      sleep 0.3
      echo "hello from b"
      {
        echo "multi<<EOF"
        echo "line1"
        echo "line2"
        echo "EOF"
      } >> "$BATON_OUTPUT"
  c:
    needs: [a, b]
    run: echo "got=\${{ steps.a.outputs.x }}-\${{ contains(steps.b.outputs.multi, 'line2') }}" >> "$BATON_OUTPUT"
`,
  "retry.yml": `
steps:
  flaky:
    retry: { attempts: 3, delay: 1s, backoff: 1 }
    run: |
      echo "attempt $BATON_ATTEMPT key $BATON_IDEMPOTENCY_KEY" >&2
      if [ "$BATON_ATTEMPT" = 1 ]; then exit 3; fi
      echo "attempt=$BATON_ATTEMPT" >> "$BATON_OUTPUT"
`,
  "waits.yml": `
steps:
  pause:
    wait: { for: 1s }
  go:
    needs: pause
    wait: { signal: go }
  use:
    needs: go
    # The payload's quotes arrive as data: double quotes are enough (single quotes would
    # keep the variable that carries it from expanding).
    run: echo "payload=\${{ steps.go.outputs.payload }}" >> "$BATON_OUTPUT"
`,
  "approve.yml": `
steps:
  ok:
    approval: { required: 1 }
  after:
    needs: ok
    run: "true"
`,
  "cancel.yml": `
on:
  manual:
    inputs:
      dir: { type: string, required: true }
steps:
  stubborn:
    run: |
      trap '' TERM
      bash -c 'trap "" TERM; echo $$ >> "\${{ inputs.dir }}/pids"; sleep 60' &
      echo $$ >> "\${{ inputs.dir }}/pids"
      sleep 60
`,
  "queued.yml": `
concurrency: { group: "q-\${{ inputs.g }}", mode: queue }
on: { manual: { inputs: { g: { type: string, default: one } } } }
steps:
  hold:
    wait: { signal: release }
`,
  "superseded.yml": `
concurrency: { group: sup, mode: cancel-in-progress }
steps:
  hold:
    wait: { signal: release }
`,
  "exclusive.yml": `
concurrency: { group: excl, mode: reject }
steps:
  hold:
    wait: { signal: release }
`,
  "parent.yml": `
outputs:
  doubled: \${{ steps.call.outputs.doubled }}
steps:
  call:
    flow: child
    with: { n: 21 }
  report:
    needs: call
    run: echo "saw=\${{ steps.call.outputs.doubled }}" >> "$BATON_OUTPUT"
`,
  "child.yml": `
on: { manual: { inputs: { n: { type: number, required: true } } } }
outputs:
  doubled: \${{ steps.double.outputs.value }}
steps:
  double:
    run: echo "value=$(( \${{ inputs.n }} * 2 ))" >> "$BATON_OUTPUT"
`,
  "holding-parent.yml": `
steps:
  call:
    flow: holding-child
`,
  "holding-child.yml": `
steps:
  hold:
    wait: { signal: release }
`,
  "fragile.yml": `
on: { manual: { inputs: { dir: { type: string, required: true } } } }
steps:
  setup:
    run: echo setup >> "\${{ inputs.dir }}/journal"
    compensate: echo undo-setup >> "\${{ inputs.dir }}/journal"
  check:
    needs: setup
    run: test -f "\${{ inputs.dir }}/marker"
`,
  "remote.yml": `
steps:
  build:
    workflow: build.yml
`,
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

for (const backend of BACKENDS) {
  describe(`runtime on ${backend}`, () => {
    let t: TestDatabase;
    let runtime: Runtime;
    let service: BatonService;
    let dir: string;
    const log = testLogger();

    before(async () => {
      t = await createTestDatabase(backend);
      dir = await writeFlows(FLOWS);
      runtime = startRuntime({
        store: t.db,
        concurrency: 6,
        log,
        leaseMs: 5000,
        maxIdleMs: 2000,
        executors: { run: localShell({ killGraceMs: 500 }) },
      });
      service = new BatonService({ store: t.db });
    });
    after(async () => {
      await runtime.stop({ graceMs: 2000 });
      await t.drop();
      assert.deepEqual(log.problems, []);
    });

    const start = async (file: string, inputs: Record<string, string> = {}) =>
      service.startRun({ flowFile: await flowFile(dir, file), inputs, actor: "alice" });

    it("runs parallel steps and passes outputs (BATON_OUTPUT, multi-line) between them", async () => {
      const started = await start("outputs.yml");
      assert.equal(started.number, 1);
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "success", JSON.stringify(done.state?.steps));
      assert.deepEqual(done.state?.outputs, { got: "1-true" });
      const byId = Object.fromEntries(done.steps.map((s) => [s.step, s]));
      const a = byId.a;
      const b = byId.b;
      assert.ok(a?.startedAt && a.finishedAt && b?.startedAt && b.finishedAt);
      assert.ok(a.startedAt < b.finishedAt && b.startedAt < a.finishedAt, "a and b overlap");
      assert.deepEqual(b.outputs, { multi: "line1\nline2" });
      const logs = await service.getLogs(started.runId, { step: "b" });
      assert.match(logs.map((l) => l.chunk).join(""), /hello from b/);
      // The same run by its number and by a prefix of its id.
      assert.equal((await service.getRun("outputs#1")).run.id, started.runId);
      assert.equal((await service.getRun(started.runId.slice(0, 13))).run.id, started.runId);
    });

    it("retries a failed attempt with the next attempt number and a new idempotency key", async () => {
      const started = await start("retry.yml");
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "success");
      const step = done.steps.find((s) => s.step === "flaky");
      assert.equal(step?.attempt, 2);
      assert.deepEqual(step?.outputs, { attempt: "2" });
      const stderr = (await service.getLogs(started.runId, { step: "flaky" }))
        .filter((l) => l.stream === "stderr")
        .map((l) => l.chunk)
        .join("");
      assert.match(stderr, new RegExp(`attempt 1 key ${started.runId}/flaky/1`));
      assert.match(stderr, new RegExp(`attempt 2 key ${started.runId}/flaky/2`));
    });

    it("waits for a time, then for a signal, and passes the signal's payload on", async () => {
      const began = Date.now();
      const started = await start("waits.yml");
      const waiting = await service.waitForRun(started.runId, { untilWaiting: true });
      assert.ok(Date.now() - began >= 1000, "waited at least 1s");
      assert.equal(waiting.state?.steps.go?.status, "waiting");
      await service.signal(started.runId, "go", { ok: 1 }, "bob");
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "success");
      assert.deepEqual(done.state?.steps.use?.outputs, { payload: '{"ok":1}' });
    });

    it("takes an approval through the service, and refuses one for a step that is not waiting", async () => {
      const started = await start("approve.yml");
      await service.waitForRun(started.runId, { untilWaiting: true });
      await assert.rejects(
        service.approve(started.runId, "after", {
          user: "bob",
          facts: { permission: "write", teams: [], codeowner: false },
        }),
        StepNotWaitingError,
      );
      const self = await service.approve(started.runId, "ok", {
        user: "alice",
        facts: { permission: "admin", teams: [], codeowner: false },
      });
      assert.equal(self?.counted, false, "the run's actor may not approve it");
      const evaluated = await service.approve(started.runId, "ok", {
        user: "bob",
        comment: "ship it",
        facts: { permission: "write", teams: [], codeowner: false },
      });
      assert.equal(evaluated?.counted, true);
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "success");
    });

    it("cancels a run and kills its step's whole process tree, even processes that ignore SIGTERM", async () => {
      const started = await start("cancel.yml", { dir });
      const pidsFile = join(dir, "pids");
      let pids: number[] = [];
      for (let i = 0; i < 100 && pids.length < 2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        pids = (await readFile(pidsFile, "utf8").catch(() => ""))
          .split("\n")
          .filter(Boolean)
          .map(Number);
      }
      assert.equal(pids.length, 2, "both processes started");
      assert.ok(pids.every(alive));
      assert.equal(await service.cancel(started.runId, "changed my mind", "alice"), "cancelled");
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "cancelled");
      for (let i = 0; i < 60 && pids.some(alive); i++)
        await new Promise((resolve) => setTimeout(resolve, 50));
      assert.deepEqual(pids.filter(alive), [], "every process of the step is gone");
    });

    it("queues runs of a busy concurrency group and admits them in order", async () => {
      const first = await start("queued.yml");
      const second = await start("queued.yml");
      const other = await start("queued.yml", { g: "two" });
      assert.equal(first.status, "running");
      assert.equal(second.status, "queued");
      assert.equal(other.status, "running", "another group is independent");
      await service.signal(first.runId, "release", null, "alice");
      await service.waitForRun(first.runId);
      const admitted = await service.waitForRun(second.runId, { untilWaiting: true });
      assert.equal(admitted.run.status, "running");
      await service.signal(second.runId, "release", null, "alice");
      await service.signal(other.runId, "release", null, "alice");
      assert.equal((await service.waitForRun(second.runId)).run.status, "success");
      assert.equal((await service.waitForRun(other.runId)).run.status, "success");
    });

    it("cancels the active run of a cancel-in-progress group", async () => {
      const first = await start("superseded.yml");
      const second = await start("superseded.yml");
      assert.equal(second.status, "running");
      assert.equal((await service.waitForRun(first.runId)).run.status, "cancelled");
      await service.signal(second.runId, "release", null, "alice");
      assert.equal((await service.waitForRun(second.runId)).run.status, "success");
    });

    it("rejects a run of a busy reject group, storing nothing", async () => {
      const first = await start("exclusive.yml");
      const before = (await service.listRuns({ flow: "exclusive" })).length;
      await assert.rejects(start("exclusive.yml"), ConcurrencyRejectedError);
      assert.equal((await service.listRuns({ flow: "exclusive" })).length, before);
      await service.signal(first.runId, "release", null, "alice");
      assert.equal((await service.waitForRun(first.runId)).run.status, "success");
      const next = await start("exclusive.yml");
      assert.equal(next.number, 2, "the rejected run took no number");
      await service.cancel(next.runId, "done", "alice");
    });

    it("runs a sub-flow from the file beside the parent and returns its outputs", async () => {
      const started = await start("parent.yml");
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "success", JSON.stringify(done.state));
      assert.deepEqual(done.state?.outputs, { doubled: "42" });
      const [child] = await service.listRuns({ flow: "child" });
      assert.equal(child?.parent?.runId, started.runId);
      assert.equal(child?.status, "success");
    });

    it("cancels the child run when its parent is cancelled", async () => {
      const started = await start("holding-parent.yml");
      let child = (await service.listRuns({ flow: "holding-child" }))[0];
      for (let i = 0; i < 100 && !child; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        child = (await service.listRuns({ flow: "holding-child" }))[0];
      }
      assert.ok(child, "the child run started");
      await service.waitForRun(child.id, { untilWaiting: true });
      await service.cancel(started.runId, "stop everything", "alice");
      assert.equal((await service.waitForRun(started.runId)).run.status, "cancelled");
      assert.equal((await service.waitForRun(child.id)).run.status, "cancelled");
    });

    it("compensates a finished step when the run fails, and reruns the failed part on retry", async () => {
      const work = await writeFlows({});
      const started = await start("fragile.yml", { dir: work });
      const failed = await service.waitForRun(started.runId);
      assert.equal(failed.run.status, "failure");
      assert.equal(failed.state?.steps.setup?.compensation, "success");
      assert.equal(await readFile(join(work, "journal"), "utf8"), "setup\nundo-setup\n");
      await writeFile(join(work, "marker"), "");
      await service.retry(started.runId, { by: "alice" });
      const retried = await service.waitForRun(started.runId);
      assert.equal(retried.run.status, "success", JSON.stringify(retried.state?.steps));
      assert.equal(retried.state?.runAttempt, 2);
    });

    it("fails steps that need the GitHub App at once, without retrying, saying what to do", async () => {
      const started = await start("remote.yml");
      const done = await service.waitForRun(started.runId);
      assert.equal(done.run.status, "failure");
      const build = done.steps.find((s) => s.step === "build");
      assert.equal(build?.attempt, 1);
      assert.match(
        build?.reason ?? "",
        /`workflow` steps need the GitHub App; run `baton` against an app \(BATON_URL\)/,
      );
    });
  });
}
