/**
 * `baton retry` reruns a failed run from its failed step, keeping what succeeded; and the
 * CLI on a shared Postgres, where every process opens the database itself.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createPgliteDataDir, createPostgresDatabase } from "../helpers/db.js";
import { baton, SIGNAL_FLOW, startBaton, waitFor } from "./baton-process.js";

interface RunJson {
  id: string;
  state: {
    status: string;
    runAttempt: number;
    steps: Record<string, { result?: string; attempt: number; outputs: Record<string, string> }>;
  };
}

/**
 * `prepare` succeeds once; `deploy` fails until the marker file exists. The marker's path is
 * declared in the flow: a step inherits nothing else from the shell that started it.
 */
const flakyFlow = (marker: string) => `
steps:
  prepare:
    run: echo "build=$(date +%s%N)" >> "$BATON_OUTPUT"
    outputs: [build]
  deploy:
    needs: prepare
    env: { BUILD: "\${{ steps.prepare.outputs.build }}", MARKER: ${JSON.stringify(marker)} }
    run: |
      test -e "$MARKER" || { echo "not yet" >&2; exit 1; }
      echo "deployed=$BUILD" >> "$BATON_OUTPUT"
    outputs: [deployed]
`;

describe("baton retry", () => {
  let dir: string;
  let env: NodeJS.ProcessEnv;
  let marker: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-retry-"));
    env = { BATON_DATA_DIR: await createPgliteDataDir(), BATON_USER: "alice", DATABASE_URL: "" };
    marker = join(dir, "ready");
    await writeFile(join(dir, "flaky.yml"), flakyFlow(marker));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
    if (env.BATON_DATA_DIR) await rm(env.BATON_DATA_DIR, { recursive: true, force: true });
  });

  test("reruns the failed step as a new attempt of the run, keeping the outputs of what succeeded", async () => {
    const failed = await baton(["run", "flaky.yml", "--wait", "--json"], { env, cwd: dir });
    assert.equal(failed.code, 1, failed.stderr);
    const first = JSON.parse(failed.stdout) as RunJson;
    assert.equal(first.state.status, "failure");
    assert.equal(first.state.steps.deploy?.result, "failure");
    const build = first.state.steps.prepare?.outputs.build;
    assert.ok(build);

    await writeFile(marker, "");
    const retried = await baton(["retry", first.id, "--wait", "--json"], { env, cwd: dir });
    assert.equal(retried.code, 0, retried.stderr);
    const second = JSON.parse(retried.stdout) as RunJson;
    assert.equal(second.id, first.id, "a rerun is the same run");
    assert.equal(second.state.status, "success");
    assert.equal(second.state.runAttempt, 2);
    assert.equal(
      second.state.steps.prepare?.attempt,
      1,
      "the step that succeeded did not run again",
    );
    assert.equal(second.state.steps.deploy?.attempt, 2);
    assert.equal(
      second.state.steps.deploy?.outputs.deployed,
      build,
      "the kept output reached the rerun step",
    );
  });

  test("a rerun of a run that has not finished is refused", async () => {
    const holdFile = join(dir, "hold.yml");
    await writeFile(holdFile, "steps:\n  hold:\n    wait: { signal: never }\n");
    const first = startBaton(["run", "hold.yml", "--wait", "--json"], { env, cwd: dir });
    const run = await waitFor(async () => {
      const list = await baton(["runs", "--json", "--flow", "hold"], { env, cwd: dir });
      return list.code === 0 ? (JSON.parse(list.stdout) as Array<{ id: string }>)[0] : undefined;
    });
    const refused = await baton(["retry", run.id], { env, cwd: dir });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not finished|running/);
    const cancelled = await baton(["cancel", run.id], { env, cwd: dir });
    assert.equal(cancelled.code, 0, cancelled.stderr);
    assert.equal((await first.exited).code, 1);
  });
});

describe("baton on a shared Postgres", () => {
  let dir: string;
  let database: { url: string; drop(): Promise<void> };
  let env: NodeJS.ProcessEnv;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-pg-cli-"));
    database = await createPostgresDatabase();
    env = { DATABASE_URL: database.url, BATON_USER: "alice" };
    await writeFile(join(dir, "signal.yml"), SIGNAL_FLOW);
  });
  after(async () => {
    await database.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test("one process runs the flow while another signals it through the database", async () => {
    const first = startBaton(["run", "signal.yml", "--wait", "--json"], { env, cwd: dir });
    const run = await waitFor(async () => {
      const list = await baton(["runs", "--json", "--status", "running"], { env, cwd: dir });
      return list.code === 0 ? (JSON.parse(list.stdout) as Array<{ id: string }>)[0] : undefined;
    });
    const sent = await baton(["signal", run.id, "go", "--data", "[1,2]"], { env, cwd: dir });
    assert.equal(sent.code, 0, sent.stderr);
    const done = await first.exited;
    assert.equal(done.code, 0, done.stderr);
    const finished = JSON.parse(done.stdout) as RunJson;
    assert.equal(finished.state.steps.after?.outputs.got, "[1,2]");
  });

  test("without --wait, a run is only recorded; `baton serve` executes it", async () => {
    const started = await baton(["run", "signal.yml", "--json"], { env, cwd: dir });
    assert.equal(started.code, 0, started.stderr);
    const { id } = JSON.parse(started.stdout) as { id: string };
    const server = startBaton(["serve"], { env, cwd: dir });
    try {
      await waitFor(async () => {
        const shown = await baton(["show", id, "--json"], { env, cwd: dir });
        const run = JSON.parse(shown.stdout) as RunJson;
        return run.state.steps.hold?.attempt === 1 ? run : undefined;
      });
      assert.equal((await baton(["signal", id, "go"], { env, cwd: dir })).code, 0);
      const finished = await waitFor(async () => {
        const run = JSON.parse(
          (await baton(["show", id, "--json"], { env, cwd: dir })).stdout,
        ) as RunJson;
        return run.state.status === "success" ? run : undefined;
      });
      assert.equal(finished.state.steps.after?.outputs.got, "null");
    } finally {
      server.kill("SIGTERM");
      assert.equal((await server.exited).code, 0);
    }
  });
});
