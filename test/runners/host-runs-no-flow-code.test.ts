/**
 * DESIGN.md rule 10, end to end: the app as `npm start` composes it (every part) against
 * the fake GitHub, and real `baton runner` processes. In the app every `run` step goes to
 * a runner, even without `runs-on`; on the runner it sees only the minimal inherited set
 * (PATH, HOME, LANG, TZ, TMPDIR, USER, SHELL), the runner configuration's `env` and
 * `secrets` and the flow's own, never the app's or the runner's environment; the
 * configuration's secrets are `***` in its log, outputs and error; a step no runner takes
 * says so (check run, `baton show`, the API) and ends at its timeout. Locally, `baton run`
 * runs steps in the user's shell with the same minimal set.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { RunningApp } from "../../app/server/start-app.js";
import { startAppAgainst } from "../fake-github/start-app-against.js";
import { FakeGitHub } from "../fake-github/server.js";
import type { Running } from "../cli/baton-process.js";
import { baton, startBaton, waitFor } from "../cli/baton-process.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";

const SECRET = "host runs no flow code";
const WIDGETS = "acme/widgets";
/** A repository no runner is registered for. */
const LONELY = "acme/lonely";
/** The runner configuration's secret: printed by steps, it must come out as ***. */
const DEPLOY_TOKEN = "dpl_9f8e7d6c5b4a";

/** What a step may see: the minimal set, what the shell sets itself, Baton's, the declared. */
const INHERITED = ["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"];
const SHELL_OWN = ["PWD", "SHLVL", "_", "OLDPWD"];

const LEAK = `on: { manual: {} }
env: { FLOW_LEVEL: from-the-flow }
steps:
  leak:
    env: { DECLARED: by-the-step }
    run: |
      echo "$PRIVATE_KEY" >> "$BATON_OUTPUT"
      echo "key=\${PRIVATE_KEY-unset}" >> "$BATON_OUTPUT"
      echo "names=$(env | cut -d= -f1 | grep -E '^[A-Za-z_][A-Za-z0-9_]*$' | sort | tr '\\n' ' ')" >> "$BATON_OUTPUT"
      echo "parent=$(tr '\\0' ' ' < /proc/$PPID/cmdline)" >> "$BATON_OUTPUT"
      echo "ppid=$PPID" >> "$BATON_OUTPUT"
      echo "path=$PATH" >> "$BATON_OUTPUT"
      echo "home=$HOME" >> "$BATON_OUTPUT"
      echo "plain=$PLAIN_SETTING $FLOW_LEVEL $DECLARED" >> "$BATON_OUTPUT"
      env
      printenv
`;

const TELL = `on: { manual: {} }
steps:
  tell:
    run: |
      echo "the deploy token is $DEPLOY_TOKEN"
      # Cut in two pieces that reach the runner apart: still masked.
      printf 'in pieces: %s' "\${DEPLOY_TOKEN:0:6}"; sleep 0.4; printf '%s done\\n' "\${DEPLOY_TOKEN:6}"
      echo "token=$DEPLOY_TOKEN" >> "$BATON_OUTPUT"
      echo "sentence=it is $DEPLOY_TOKEN, really" >> "$BATON_OUTPUT"
  fail:
    needs: tell
    run: |
      echo "giving up on $DEPLOY_TOKEN" >&2
      exit 3
`;

const ORPHAN = `on: { manual: {} }
steps:
  orphan:
    timeout: 4s
    run: echo "never runs"
`;

const RUN_TIMEOUT = `on: { manual: {} }
timeout: 3s
steps:
  orphan:
    run: echo "never runs"
`;

const LATE = `on: { manual: {} }
steps:
  late:
    timeout: 2m
    # Long enough for the notice to look again while it runs.
    run: sleep 8; echo "ran=yes" >> "$BATON_OUTPUT"
`;

interface RunJson {
  id: string;
  state: {
    status: string;
    reason?: string;
    steps: Record<
      string,
      {
        status: string;
        result?: string;
        reason?: string;
        outputs: Record<string, string>;
        startedAt?: number;
        finishedAt?: number;
      }
    >;
  };
  events: Array<{ type: string; step?: string; detail?: string; error?: string; at: number }>;
}

for (const backend of BACKENDS) {
  describe(`the app's host runs no flow code (${backend})`, () => {
    let testDb: TestDatabase;
    let fake: FakeGitHub;
    let app: RunningApp;
    let dir: string;
    const runners: Running[] = [];
    const saved: Record<string, string | undefined> = {};

    /** `baton` as a GitHub user, against the app. */
    const as = (login: string) => ({
      env: {
        BATON_URL: app.url,
        GITHUB_TOKEN: fake.userToken(login),
        BATON_TOKEN: "",
        DATABASE_URL: "",
      },
    });
    const api = async (path: string): Promise<RunJson> => {
      const response = await fetch(new URL(path, app.url), {
        headers: { authorization: `Bearer ${fake.userToken("reader")}` },
      });
      assert.equal(response.status, 200, `GET ${path}`);
      return (await response.json()) as RunJson;
    };
    const start = async (flow: string, repository: string): Promise<string> => {
      const started = await baton(["run", flow, "--repo", repository, "--json"], as("writer"));
      assert.equal(started.code, 0, started.stderr);
      return (JSON.parse(started.stdout) as { id: string }).id;
    };
    const ended = (id: string, timeoutMs = 60_000) =>
      waitFor(async () => {
        const run = await api(`/api/runs/${id}`);
        return ["success", "failure", "cancelled"].includes(run.state.status) ? run : undefined;
      }, timeoutMs);
    const logs = async (id: string): Promise<string> => {
      const response = await fetch(new URL(`/api/runs/${id}/logs`, app.url), {
        headers: { authorization: `Bearer ${fake.userToken("reader")}` },
      });
      const body = (await response.json()) as
        Array<{ text: string }> | { lines: Array<{ text: string }> };
      return (Array.isArray(body) ? body : body.lines).map((line) => line.text).join("");
    };
    /** A real `baton runner` for a repository, with this configuration and process env. */
    const startRunner = async (
      repository: string,
      name: string,
      config: string,
      env: Record<string, string> = {},
    ): Promise<Running> => {
      const created = await baton(
        ["--url", app.url, "runner-token", "create", "--repo", repository, "--json"],
        { env: { BATON_TOKEN: fake.userToken("admin") } },
      );
      assert.equal(created.code, 0, created.stderr);
      const token = (JSON.parse(created.stdout) as { token: string }).token;
      const stateDir = await mkdtemp(join(dir, `runner-${name}-`));
      const configFile = join(stateDir, "config.yml");
      await writeFile(configFile, config);
      const runner = startBaton(
        [
          ...["--url", app.url, "runner", "--name", name, "--token", token],
          ...["--state-dir", stateDir, "--config", configFile],
        ],
        { env, timeoutMs: 300_000 },
      );
      runners.push(runner);
      await waitFor(
        () => Promise.resolve(existsSync(join(stateDir, "runner.json")) ? true : undefined),
        30_000,
      );
      return runner;
    };

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), "baton-host-no-code-"));
      testDb = await createTestDatabase(backend);
      fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 } });
      // The app's own environment, as `npm start` has it: its private key, its webhook
      // secret, its database. The runner processes inherit it too (started from here),
      // as a runner started on the app's machine would.
      for (const [name, value] of Object.entries({
        PRIVATE_KEY: fake.privateKey,
        WEBHOOK_SECRET: SECRET,
        APP_CANARY: "the-app-canary",
      })) {
        saved[name] = process.env[name];
        process.env[name] = value;
      }
      app = await startAppAgainst(fake, testDb.db, {
        secret: SECRET,
        parts: { checkRuns: { writeIntervalMs: 5 } },
      });
      await fake.install({
        installationId: 1,
        account: "acme",
        repositories: [
          {
            name: "widgets",
            files: { ".github/flows/leak.yml": LEAK, ".github/flows/tell.yml": TELL },
          },
          {
            name: "lonely",
            files: {
              ".github/flows/orphan.yml": ORPHAN,
              ".github/flows/run-timeout.yml": RUN_TIMEOUT,
              ".github/flows/late.yml": LATE,
            },
          },
        ],
      });
      for (const repository of [WIDGETS, LONELY]) {
        fake.setRole(repository, "admin", "admin");
        fake.setRole(repository, "writer", "write");
        fake.setRole(repository, "reader", "read");
      }
      await waitFor(async () => {
        const live = await testDb.db.query<{ n: number | string }>(
          "SELECT count(*) AS n FROM live_flows WHERE version_id IS NOT NULL",
        );
        return Number(live.rows[0]?.n) === 5 ? true : undefined;
      }, 30_000);
      await startRunner(
        WIDGETS,
        "widgets-box",
        `env: { PLAIN_SETTING: configured }\nsecrets: { DEPLOY_TOKEN: "${DEPLOY_TOKEN}" }\nkill-grace-ms: 500\n`,
        { RUNNER_CANARY: "the-runner-canary" },
      );
    });
    after(async () => {
      for (const runner of runners) runner.kill("SIGTERM");
      await Promise.all(runners.map((runner) => runner.exited));
      await app.stop();
      await fake.stop();
      await testDb.drop();
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
      await rm(dir, { recursive: true, force: true });
    });

    test("a run step without runs-on runs on a runner, never in the app's process, and sees neither the app's nor the runner's environment", async () => {
      const id = await start("leak", WIDGETS);
      const run = await ended(id);
      assert.equal(run.state.status, "success", JSON.stringify(run.state));
      const outputs = run.state.steps.leak?.outputs ?? {};
      // The runner's process started the step's shell, not the app's.
      assert.notEqual(outputs.ppid, String(process.pid));
      assert.match(outputs.parent ?? "", /bin\/baton\.js .*\brunner\b.*--name widgets-box/);
      assert.equal(outputs.key, "unset");
      const names = (outputs.names ?? "").trim().split(" ");
      const declared = ["FLOW_LEVEL", "DECLARED", "PLAIN_SETTING", "DEPLOY_TOKEN", "GITHUB_OUTPUT"];
      const unexpected = names.filter(
        (name) =>
          !INHERITED.includes(name) &&
          !SHELL_OWN.includes(name) &&
          !declared.includes(name) &&
          !name.startsWith("BATON_"),
      );
      assert.deepEqual(unexpected, [], `the step's environment: ${names.join(" ")}`);
      for (const name of ["PRIVATE_KEY", "WEBHOOK_SECRET", "APP_CANARY", "RUNNER_CANARY"])
        assert.ok(!names.includes(name), `${name} does not reach the step`);
      assert.ok(!names.includes("BATON_TOKEN"), "nor the runner's own settings");
      assert.equal(outputs.path, process.env.PATH);
      assert.equal(outputs.home, process.env.HOME);
      assert.equal(outputs.plain, "configured from-the-flow by-the-step");
      // Not in its outputs, not in its log (env and printenv printed everything it had).
      const log = await logs(id);
      assert.match(log, /PLAIN_SETTING=configured/, "the dump is in the log");
      const keyLines = fake.privateKey.split("\n").filter((line) => line.length > 20);
      for (const text of [log, JSON.stringify(outputs)]) {
        for (const line of keyLines) assert.ok(!text.includes(line), "no line of the app's key");
        assert.ok(!text.includes("the-app-canary") && !text.includes("the-runner-canary"));
      }
      fake.assertNoUnexpectedRequests();
    });

    test("a secret of the runner's configuration is *** in the step's log, outputs and error", async () => {
      const id = await start("tell", WIDGETS);
      const run = await ended(id);
      assert.equal(run.state.status, "failure");
      assert.deepEqual(run.state.steps.tell?.outputs, {
        token: "***",
        sentence: "it is ***, really",
      });
      const failed = run.events.find((e) => e.type === "attempt.finished" && e.step === "fail");
      assert.match(failed?.error ?? "", /exit code 3\ngiving up on \*\*\*$/);
      const log = await logs(id);
      assert.match(log, /the deploy token is \*\*\*\n/);
      assert.match(log, /in pieces: \*\*\* done\n/);
      assert.ok(!log.includes(DEPLOY_TOKEN) && !log.includes(DEPLOY_TOKEN.slice(6)), log);
      const shown = await baton(["show", id], as("reader"));
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(!shown.stdout.includes(DEPLOY_TOKEN), shown.stdout);
      const check = fake.checkRuns.filter((c) => c.external_id === id).at(-1);
      assert.ok(!(check?.output.summary ?? "").includes(DEPLOY_TOKEN));
    });

    test("a step no runner can take says so on its check run, in baton show and the API, and fails at its timeout", async () => {
      const began = Date.now();
      const id = await start("orphan", LONELY);
      const waiting =
        "waiting for a runner with labels [self-hosted]; register one with " +
        "`baton runner-token create --repo acme/lonely` then `baton runner --token …`";
      const seen = await waitFor(async () => {
        const run = await api(`/api/runs/${id}`);
        return run.state.steps.orphan?.reason === waiting ? run : undefined;
      }, 10_000);
      assert.equal(seen.state.steps.orphan?.status, "running");
      const shown = await baton(["show", id], as("reader"));
      assert.equal(shown.code, 0, shown.stderr);
      assert.ok(shown.stdout.includes(waiting), shown.stdout);
      const checkRun = () => fake.checkRuns.filter((c) => c.external_id === id).at(-1);
      await waitFor(() => {
        const check = checkRun();
        // The check run's table escapes Markdown.
        const summary = (check?.output.summary ?? "").replace(/\\(.)/g, "$1");
        const shows = check?.status === "in_progress" && summary.includes(`running: ${waiting}`);
        return Promise.resolve(shows ? true : undefined);
      }, 10_000);

      const run = await ended(id, 20_000);
      const took = Date.now() - began;
      assert.equal(run.state.status, "failure");
      assert.equal(run.state.steps.orphan?.result, "failure");
      assert.equal(run.state.steps.orphan?.reason, "timed out after 4s");
      assert.ok(took >= 4000 && took < 15_000, `ended after ${took} ms`);
      assert.ok(run.events.some((e) => e.type === "attempt.timed-out" && e.step === "orphan"));
      await waitFor(
        () => Promise.resolve(checkRun()?.conclusion === "failure" ? true : undefined),
        10_000,
      );
      // The step's log says that nobody took it (the notice looks again within seconds).
      await waitFor(
        async () =>
          (await logs(id)).includes(
            "No runner with labels [self-hosted] took this step before it ended (timed out after 4s)",
          )
            ? true
            : undefined,
        20_000,
      );
      // Nothing ran it: the job was never claimed.
      const jobs = await testDb.db.query<{ status: string; claims: number }>(
        "SELECT status, claims FROM runner_jobs WHERE run_id = $1",
        [id],
      );
      assert.deepEqual(jobs.rows, [{ status: "dropped", claims: 0 }]);
    });

    test("the run's timeout ends a step no runner takes", async () => {
      const id = await start("run-timeout", LONELY);
      const run = await ended(id, 20_000);
      assert.notEqual(run.state.status, "success");
      assert.equal(run.state.steps.orphan?.result, "cancelled");
      assert.match(run.state.reason ?? "", /timed out after 3s/);
    });

    test("a runner registered while a step waits takes it, and the step says which runner runs it", async () => {
      const id = await start("late", LONELY);
      await waitFor(async () => {
        const run = await api(`/api/runs/${id}`);
        return run.state.steps.late?.reason?.startsWith("waiting for a runner") ? true : undefined;
      }, 10_000);
      await startRunner(LONELY, "late-box", "kill-grace-ms: 500\n");
      const run = await ended(id);
      assert.equal(run.state.status, "success", JSON.stringify(run.state));
      assert.equal(run.state.steps.late?.outputs.ran, "yes");
      const progress = run.events
        .filter((e) => e.type === "attempt.progress" && e.step === "late")
        .map((e) => e.detail);
      assert.equal(progress.length, 2, JSON.stringify(progress));
      assert.equal(progress[0]?.startsWith("waiting for a runner"), true);
      assert.equal(progress[1], "running on runner late-box");
    });
  });
}

describe("baton run on the user's machine", () => {
  test("runs a step in the local shell with the minimal set and the declared env, not the rest of the user's environment", async () => {
    const dir = await mkdtemp(join(tmpdir(), "baton-local-env-"));
    try {
      await writeFile(
        join(dir, "env.yml"),
        `env: { FLOW_LEVEL: from-the-flow }
steps:
  dump:
    env: { DECLARED: by-the-step }
    run: |
      echo "canary=\${USER_CLOUD_TOKEN-unset}" >> "$BATON_OUTPUT"
      echo "home=$HOME" >> "$BATON_OUTPUT"
      echo "path=$PATH" >> "$BATON_OUTPUT"
      echo "declared=$FLOW_LEVEL $DECLARED" >> "$BATON_OUTPUT"
`,
      );
      const result = await baton(["run", "env.yml", "--wait", "--json"], {
        cwd: dir,
        env: {
          BATON_DATA_DIR: join(dir, ".baton"),
          DATABASE_URL: "",
          BATON_URL: "",
          USER_CLOUD_TOKEN: "a-token-in-the-users-shell",
        },
      });
      assert.equal(result.code, 0, result.stderr);
      const run = JSON.parse(result.stdout) as RunJson;
      assert.deepEqual(run.state.steps.dump?.outputs, {
        canary: "unset",
        home: process.env.HOME,
        path: process.env.PATH,
        declared: "from-the-flow by-the-step",
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
