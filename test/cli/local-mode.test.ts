/**
 * The `baton` command as people and agents use it: real processes, the real embedded
 * database in a temporary directory, and a second terminal acting on a run that the first
 * is waiting on.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { baton, SIGNAL_FLOW, startBaton, waitFor } from "./baton-process.js";

interface RunJson {
  id: string;
  flow: string;
  number: number;
  state: {
    status: string;
    steps: Record<
      string,
      { result?: string; status: string; attempt: number; outputs: Record<string, string> }
    >;
    outputs: Record<string, string>;
  };
  events: Array<{ type: string; counted?: boolean; reason?: string }>;
}

const APPROVAL_FLOW = `
name: Gate
on:
  manual:
    inputs:
      version: { type: string, required: true }
steps:
  build:
    run: echo "artifact=app-\${{ inputs.version }}" >> "$BATON_OUTPUT"
  gate:
    needs: build
    approval:
      approvers: { users: [bob, carol] }
  ship:
    needs: gate
    run: echo "shipped \${{ steps.build.outputs.artifact }} approved by \${{ steps.gate.outputs.approvers }}"
`;

const SLOW_FLOW = `
steps:
  long:
    run: sleep 600
    compensate: echo undone
  first:
    run: echo done
    compensate: echo "compensated first" >> "$COMPENSATION_LOG"
`;

/** `baton runs --json`; an empty list while the first process is still opening the database. */
async function listRuns(
  env: NodeJS.ProcessEnv,
  cwd: string,
  filter: string[],
): Promise<Array<{ id: string; flow: string; status: string }>> {
  const list = await baton(["runs", "--json", ...filter], { env, cwd });
  return list.code === 0
    ? (JSON.parse(list.stdout) as Array<{ id: string; flow: string; status: string }>)
    : [];
}

describe("baton in local mode (embedded database)", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-cli-"));
    env = {
      BATON_DATA_DIR: join(dir, ".baton"),
      BATON_USER: "alice",
      DATABASE_URL: "",
      BATON_URL: "",
    };
    await writeFile(join(dir, "gate.yml"), APPROVAL_FLOW);
    await writeFile(join(dir, "signal.yml"), SIGNAL_FLOW);
    // Steps get the minimal environment and what the flow declares, not the shell's.
    await writeFile(
      join(dir, "slow.yml"),
      `env: { COMPENSATION_LOG: ${JSON.stringify(join(dir, "compensation.log"))} }\n${SLOW_FLOW}`,
    );
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("the demo runs end to end with a retry and a wait, and exits 0", async () => {
    const result = await baton(["run", "examples/flows/demo.yml", "--wait", "--json"], { env });
    assert.equal(result.code, 0, result.stderr);
    const run = JSON.parse(result.stdout) as RunJson;
    assert.equal(run.state.status, "success");
    const attempts = Object.values(run.state.steps).map((step) => step.attempt);
    assert.ok(
      attempts.some((attempt) => attempt >= 2),
      "a step was retried",
    );
    assert.ok(run.events.some((event) => event.type === "retry.scheduled"));
    assert.ok(run.events.some((event) => event.type === "step.waiting"));
  });

  test("a second terminal approves a run the first is waiting on; self-approval is refused", async () => {
    const first = startBaton(["run", "gate.yml", "--wait", "--json", "-i", "version=1.2"], {
      env,
      cwd: dir,
    });
    const waiting = await waitFor(async () => {
      const runs = await listRuns(env, dir, ["--status", "running"]);
      const run = runs.find((r) => r.flow === "gate");
      if (!run) return undefined;
      const shown = JSON.parse(
        (await baton(["show", run.id, "--json"], { env, cwd: dir })).stdout,
      ) as RunJson;
      return shown.state.steps.gate?.status === "waiting" ? shown : undefined;
    });

    const self = await baton(["approve", waiting.id, "gate", "--json"], { env, cwd: dir });
    assert.equal(self.code, 1, "alice started the run and may not approve it");
    const selfVerdict = JSON.parse(self.stdout) as { counted: boolean; reason: string };
    assert.equal(selfVerdict.counted, false);
    assert.match(selfVerdict.reason, /alice/);

    const outsider = await baton(["approve", waiting.id, "gate", "--as", "mallory"], {
      env,
      cwd: dir,
    });
    assert.equal(outsider.code, 1);
    assert.match(outsider.stderr, /Refused/);

    const bob = await baton(["approve", waiting.id, "gate", "--as", "bob", "-m", "ship it"], {
      env,
      cwd: dir,
    });
    assert.equal(bob.code, 0, bob.stderr);

    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    const run = JSON.parse(done.stdout) as RunJson;
    assert.equal(run.state.status, "success");
    assert.equal(run.state.steps.gate?.outputs.approvers, "bob");
    const refused = run.events.filter(
      (event) => event.type === "approval.evaluated" && event.counted === false,
    );
    assert.equal(refused.length, 2, "both refused attempts are in the audit trail");

    const logs = await baton(["logs", waiting.id, "ship"], { env, cwd: dir });
    assert.equal(logs.code, 0);
    assert.match(logs.stdout, /shipped app-1\.2 approved by bob/);
  });

  test("a signal with data reaches a waiting step, sent from another terminal", async () => {
    const first = startBaton(["run", "signal.yml", "--wait", "--json"], { env, cwd: dir });
    const run = await waitFor(async () => {
      const list = await listRuns(env, dir, ["--flow", "signal"]);
      return list.find((r) => r.status === "running");
    });
    const sent = await baton(["signal", run.id, "go", "--data", '{"ok":true}'], { env, cwd: dir });
    assert.equal(sent.code, 0, sent.stderr);
    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    const finished = JSON.parse(done.stdout) as RunJson;
    assert.equal(finished.state.steps.after?.outputs.got, '{"ok":true}');
  });

  test("cancel from another terminal stops the run and compensates completed steps", async () => {
    const compensationLog = join(dir, "compensation.log");
    const first = startBaton(["run", "slow.yml", "--wait", "--json"], { env, cwd: dir });
    const run = await waitFor(async () => {
      const found = (await listRuns(env, dir, ["--flow", "slow"]))[0];
      if (!found) return undefined;
      const shown = JSON.parse(
        (await baton(["show", found.id, "--json"], { env, cwd: dir })).stdout,
      ) as RunJson;
      return shown.state.steps.first?.result === "success" &&
        shown.state.steps.long?.status === "running"
        ? shown
        : undefined;
    });
    const cancelled = await baton(["cancel", run.id, "--reason", "changed my mind"], {
      env,
      cwd: dir,
    });
    assert.equal(cancelled.code, 0, cancelled.stderr);
    const done = await first.exited;
    assert.equal(done.code, 1);
    const finished = JSON.parse(done.stdout) as RunJson;
    assert.equal(finished.state.status, "cancelled");
    assert.equal(finished.state.steps.long?.result, "cancelled");
    const { readFile } = await import("node:fs/promises");
    assert.equal(await readFile(compensationLog, "utf8"), "compensated first\n");
  });

  test("wrong usage exits 2 and says what is wrong; an unknown run exits 1", async () => {
    const missing = await baton(["run"], { env, cwd: dir });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing <flow\.yml>/);
    const flag = await baton(["runs", "--bogus"], { env, cwd: dir });
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /bogus/);
    const unknown = await baton(["show", "ffffffff-0000", "--json"], { env, cwd: dir });
    assert.equal(unknown.code, 1, unknown.stderr);
    const error = JSON.parse(unknown.stdout) as { error: { message: string } };
    assert.match(error.error.message, /ffffffff-0000/);
  });

  test("a missing required input is refused before anything runs", async () => {
    const result = await baton(["run", "gate.yml", "--json"], { env, cwd: dir });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /version/);
  });
});
