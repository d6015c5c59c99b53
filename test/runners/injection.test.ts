/**
 * A value never becomes syntax on self-hosted runners: real `baton runner` processes
 * against a real server, running the injection flow (test/runtime/injection-cases.ts) on
 * the runner's local shell and on an SSH host (a real sshd), and an agent step whose
 * prompt holds the same value. Everything arrives byte for byte; nothing runs.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startSshd } from "../runner-ssh/sshd.js";
import { BACKENDS } from "../helpers/db.js";
import {
  assertArrivedLiterally,
  injectionFlow,
  injectionValue,
} from "../runtime/injection-cases.js";
import type { Harness, RunJson } from "./harness.js";
import { FAKE_AGENT, startHarness } from "./harness.js";

const ended = (run: { state: { status: string } }) =>
  ["success", "failure", "cancelled"].includes(run.state.status);

// One backend is enough: the database plays no part in how a value reaches a shell.
const backend = BACKENDS[0] ?? "pglite";

describe(`no value becomes syntax on runners (${backend})`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(backend, { BATON_RUNNERS_LEASE_MS: "2000" });
  });
  after(async () => {
    await h.close();
  });

  /** Starts the injection flow with the value as its input, and signals it the value. */
  async function runInjection(source: string, value: string): Promise<RunJson> {
    const { id } = await h.api<{ id: string }>("POST", "/api/runs", {
      flowFile: { path: join(h.dir, "injection.yml"), source },
      inputs: { v: value },
    });
    await h.api("POST", `/api/runs/${id}/signals/go`, { payload: value });
    return h.waitForRun(id, ended);
  }

  test("on a runner's local shell", async () => {
    const runner = await h.runner({ name: "plain", labels: ["plain"] });
    const out = join(h.dir, "local");
    await mkdir(out);
    const canary = join(h.dir, "canary-local");
    const value = injectionValue(canary);
    const run = await runInjection(injectionFlow({ dir: out, runsOn: "[plain]" }), value);
    assert.equal(run.state.status, "failure", JSON.stringify(run.state.steps));
    assert.equal(run.state.steps.direct?.compensation, "success");
    await assertArrivedLiterally(out, canary, value);
    runner.kill("SIGTERM");
    await runner.exited;
  });

  test("on an SSH host", async () => {
    const sshd = await startSshd();
    try {
      const runner = await h.runner({
        name: "ssh-box",
        config: [
          "ssh:",
          "  vm:",
          "    host: 127.0.0.1",
          `    port: ${sshd.port}`,
          `    user: ${sshd.username}`,
          `    key: ${sshd.userKeyPath}`,
          `    host-key: "${sshd.hostKeyFingerprint}"`,
          "",
        ].join("\n"),
      });
      // The "host" is this machine, so the test reads what the steps wrote there.
      const out = join(sshd.dir, "ssh-out");
      await mkdir(out);
      const canary = join(sshd.dir, "canary-ssh");
      const value = injectionValue(canary);
      const run = await runInjection(injectionFlow({ dir: out, runsOn: "{ ssh: vm }" }), value);
      assert.equal(run.state.status, "failure", JSON.stringify(run.state.steps));
      assert.equal(run.state.steps.direct?.compensation, "success");
      await assertArrivedLiterally(out, canary, value);
      runner.kill("SIGTERM");
      await runner.exited;
    } finally {
      await sshd.stop();
    }
  });

  test("in an agent's prompt", async () => {
    const runner = await h.runner({
      name: "agent-box",
      labels: ["agent"],
      config: `agents:\n  fake: { command: "${process.execPath} ${FAKE_AGENT} {prompt} {max_turns}", default: true }\n`,
    });
    const canary = join(h.dir, "canary-agent");
    const value = injectionValue(canary);
    const { id } = await h.api<{ id: string }>("POST", "/api/runs", {
      flowFile: {
        path: join(h.dir, "agent.yml"),
        source: `name: agent
on: { manual: { inputs: { v: { type: string } } } }
steps:
  fix:
    runs-on: [agent]
    agent: { prompt: "Fix ${"${{ inputs.v }}"}", budget: { turns: 3 } }
`,
      },
      inputs: { v: value },
    });
    const run = await h.waitForRun(id, ended);
    assert.equal(run.state.status, "success", JSON.stringify(run.state.steps));
    assert.equal(existsSync(canary), false, "an injection ran: the canary exists");
    // The fake agent got the prompt as one argument, and the turns as the next.
    assert.equal(
      run.state.steps.fix?.outputs.message,
      `Done: I wrote NOTES.md for "Fix ${value}".`,
    );
    assert.match(await h.logs(id), /\[fake-agent\] turns allowed: 3/);
    runner.kill("SIGTERM");
    await runner.exited;
  });
});
