/**
 * A value never becomes syntax, on the local shell: `baton run` (a real process, the
 * embedded database) with an input, a step output, a signal payload and a compensation
 * that each try every way of becoming shell. They arrive byte for byte; nothing runs.
 */
import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { baton, startBaton, waitFor } from "../cli/baton-process.js";
import { assertArrivedLiterally, injectionFlow, injectionValue } from "./injection-cases.js";

describe("no value becomes syntax on the local shell (baton run)", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-injection-"));
    env = {
      BATON_DATA_DIR: join(dir, ".baton"),
      BATON_USER: "alice",
      DATABASE_URL: "",
      BATON_URL: "",
    };
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test("inputs, outputs, signal payloads and compensations arrive literally", async () => {
    const out = join(dir, "out");
    await mkdir(out);
    const canary = join(dir, "canary");
    const value = injectionValue(canary);
    await writeFile(join(dir, "injection.yml"), injectionFlow({ dir: out }));
    const first = startBaton(["run", "injection.yml", "--wait", "--json", "-i", `v=${value}`], {
      env,
      cwd: dir,
    });
    const run = await waitFor(async () => {
      const list = await baton(["runs", "--json", "--flow", "injection"], { env, cwd: dir });
      if (list.code !== 0) return undefined;
      return (JSON.parse(list.stdout) as Array<{ id: string; status: string }>)[0];
    });
    const sent = await baton(["signal", run.id, "go", "--data", JSON.stringify(value)], {
      env,
      cwd: dir,
    });
    assert.equal(sent.code, 0, sent.stderr);
    const done = await first.exited;
    const finished = JSON.parse(done.stdout) as {
      state: { status: string; steps: Record<string, { result?: string; compensation?: string }> };
    };
    // `later` fails on purpose, so that `direct` is compensated.
    assert.equal(finished.state.status, "failure", done.stderr);
    assert.equal(finished.state.steps.direct?.compensation, "success");
    await assertArrivedLiterally(out, canary, value);
  });
});
