/**
 * Self-hosted runners end to end: real `baton runner` processes (node bin/baton.js runner)
 * against a real Baton server process, on Postgres and on PGlite (where the runner talks
 * HTTP to the process that owns the database).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { startSshd } from "../runner-ssh/sshd.js";
import { waitFor } from "../cli/baton-process.js";
import { BACKENDS } from "../helpers/db.js";
import {
  claimRunnerJobs,
  createRegistrationToken,
  getRunnerJob,
} from "../../app/store/runner-jobs.js";
import { BatonService } from "../../app/runtime/service.js";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import type { Harness } from "./harness.js";
import { FAKE_AGENT, processGone, startHarness } from "./harness.js";

const ended = (run: { state: { status: string } }) =>
  ["success", "failure", "cancelled"].includes(run.state.status);

for (const backend of BACKENDS) {
  describe(`runners (${backend})`, () => {
    let h: Harness;
    let repo: { dir: string; sha: string };
    before(async () => {
      // A repository for `checkout: true` to clone (file://, so no token is needed).
      const { mkdtemp } = await import("node:fs/promises");
      const { tmpdir } = await import("node:os");
      const dir = await mkdtemp(join(tmpdir(), "baton-checkout-src-"));
      const git = (...args: string[]) =>
        execFileSync("git", args, { cwd: dir, encoding: "utf8" }).trim();
      git("init", "-q");
      await import("node:fs/promises").then((fs) =>
        fs.writeFile(join(dir, "README.md"), "hello from the repository\n"),
      );
      git("add", "-A");
      git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "first");
      repo = { dir, sha: git("rev-parse", "HEAD") };
      h = await startHarness(backend, {
        BATON_RUNNERS_LEASE_MS: "2000",
        BATON_RUNNERS_CHECKOUT_URL: `file://${dir}`,
        BATON_RUNNERS_CHECKOUT_SHA: repo.sha,
      });
    });
    after(async () => {
      await h.close();
      const { rm } = await import("node:fs/promises");
      await rm(repo.dir, { recursive: true, force: true });
    });

    test("steps go to the runner with their labels; env, outputs, logs and checkout", async () => {
      const linux = await h.runner({ name: "linux-box", labels: ["linux"] });
      const gpu = await h.runner({ name: "gpu-box", labels: ["gpu", "linux"] });
      const id = await h.startRun(`
name: routed
env: { FLOW_LEVEL: flow }
steps:
  plain:
    runs-on: linux
    env: { GREETING: hello }
    with: { target: moon }
    run: |
      echo "printing $GREETING $target $FLOW_LEVEL"
      echo "who=$WHO" >> "$BATON_OUTPUT"
      echo "env=$GREETING-$target-$FLOW_LEVEL" >> "$BATON_OUTPUT"
  accelerated:
    runs-on: [self-hosted, gpu]
    run: echo "who=$WHO" >> "$BATON_OUTPUT"
  cloned:
    runs-on: gpu
    checkout: true
    run: |
      echo "readme=$(cat README.md)" >> "$BATON_OUTPUT"
      echo "head=$(git rev-parse HEAD)" >> "$BATON_OUTPUT"
`);
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "success", JSON.stringify(run.state.steps));
      // gpu-box has linux too, so `plain` may run on either; `accelerated` only on gpu-box.
      assert.ok(["linux-box", "gpu-box"].includes(run.state.steps.plain?.outputs.who ?? ""));
      assert.equal(run.state.steps.plain?.outputs.env, "hello-moon-flow");
      assert.equal(run.state.steps.accelerated?.outputs.who, "gpu-box");
      assert.equal(run.state.steps.cloned?.outputs.readme, "hello from the repository");
      assert.equal(run.state.steps.cloned?.outputs.head, repo.sha);
      const logs = await h.logs(id);
      assert.match(logs, /printing hello moon flow/);

      // A step whose labels no runner has waits in the queue, and runs when one comes.
      const waiting = await h.startRun(`
name: special
steps:
  only-arm:
    runs-on: [arm]
    run: echo "who=$WHO" >> "$BATON_OUTPUT"
`);
      const queued = await h.run(waiting);
      assert.equal(queued.state.status, "running");
      const arm = await h.runner({ name: "arm-box", labels: ["arm"] });
      const armRun = await h.waitForRun(waiting, ended);
      assert.equal(armRun.state.steps["only-arm"]?.outputs.who, "arm-box");
      for (const runner of [linux, gpu, arm]) runner.kill("SIGTERM");
      for (const runner of [linux, gpu, arm]) assert.equal((await runner.exited).code, 0);
    });

    test("a step with runs-on: { ssh: host } runs on that host of the runner's configuration", async () => {
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
        const id = await h.startRun(`
name: over-ssh
steps:
  remote:
    runs-on: { ssh: vm }
    env: { GREETING: 'it''s $(not run)' }
    run: |
      echo "on the vm: $GREETING"
      echo "shell=$SSH_CONNECTION" >> "$BATON_OUTPUT"
      echo "greeting=$GREETING" >> "$BATON_OUTPUT"
`);
        const run = await h.waitForRun(id, ended);
        assert.equal(run.state.status, "success", JSON.stringify(run.state.steps));
        const outputs = run.state.steps.remote?.outputs ?? {};
        assert.match(outputs.shell ?? "", new RegExp(` ${sshd.port}$`), "ran in an SSH session");
        assert.equal(outputs.greeting, "it's $(not run)");
        assert.match(await h.logs(id), /on the vm: it's/);
        runner.kill("SIGTERM");
        assert.equal((await runner.exited).code, 0);
      } finally {
        await sshd.stop();
      }
    });

    test("a runner step's compensation runs on a runner too", async () => {
      const undone = join(h.dir, "undone");
      const runner = await h.runner({ name: "undoer", labels: ["deploy"] });
      const id = await h.startRun(`
name: compensated
steps:
  deploy:
    runs-on: deploy
    run: echo deployed
    compensate: echo "undone by $WHO" > "${undone}"
  smoke:
    needs: deploy
    runs-on: deploy
    run: exit 3
`);
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "failure");
      assert.equal(run.state.steps.deploy?.compensation, "success");
      assert.equal(readFileSync(undone, "utf8"), "undone by undoer\n");
      runner.kill("SIGTERM");
      await runner.exited;
    });

    test("a runner killed while idle leaves no claim behind that takes the next step", async () => {
      const ghost = await h.runner({ name: "ghost", labels: ["idle"], concurrency: 4 });
      // Its claim is waiting on the server when it dies.
      await new Promise((resolve) => setTimeout(resolve, 300));
      ghost.kill("SIGKILL");
      await ghost.exited;
      const id = await h.startRun(`
name: after-ghost
steps:
  s:
    runs-on: idle
    run: echo "who=$WHO" >> "$BATON_OUTPUT"
`);
      const living = await h.runner({ name: "living", labels: ["idle"] });
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "success");
      assert.equal(run.state.steps.s?.attempt, 1);
      assert.equal(run.state.steps.s?.outputs.who, "living");
      living.kill("SIGTERM");
      await living.exited;
    });

    test("a runner runs at most --concurrency steps at once", async () => {
      const trace = join(h.dir, "concurrency.log");
      const runner = await h.runner({ name: "pair", labels: ["pair"], concurrency: 2 });
      const steps = ["a", "b", "c", "d", "e"]
        .map(
          (name) => `  ${name}:
    runs-on: pair
    run: |
      echo "start $(date +%s%N)" >> "${trace}"
      sleep 0.4
      echo "end $(date +%s%N)" >> "${trace}"`,
        )
        .join("\n");
      const id = await h.startRun(`name: five\nsteps:\n${steps}\n`);
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "success");
      const events = (await readFile(trace, "utf8"))
        .trim()
        .split("\n")
        .map((line) => {
          const [kind = "", at = "0"] = line.split(" ");
          return { delta: kind === "start" ? 1 : -1, at: BigInt(at) };
        })
        // Ends before starts at the same instant: a step that ended frees its slot.
        .sort((a, b) => (a.at === b.at ? a.delta - b.delta : a.at < b.at ? -1 : 1));
      let now = 0;
      let most = 0;
      for (const event of events) {
        now += event.delta;
        most = Math.max(most, now);
      }
      assert.equal(events.length, 10);
      assert.equal(most, 2, "two steps at a time, never more");
      runner.kill("SIGTERM");
      await runner.exited;
    });

    test("cancelling a run kills its step's process tree, even one that ignores SIGTERM", async () => {
      const pids = join(h.dir, "cancel");
      await mkdir(pids, { recursive: true });
      const runner = await h.runner({ name: "stubborn", labels: ["stubborn"] });
      const id = await h.startRun(`
name: stubborn
steps:
  hang:
    runs-on: stubborn
    run: |
      trap '' TERM
      (trap '' TERM; sleep 600) &
      echo $! > "${pids}/child"
      echo $$ > "${pids}/shell"
      wait
`);
      await waitFor(() =>
        Promise.resolve(
          existsSync(join(pids, "shell")) && existsSync(join(pids, "child")) ? true : undefined,
        ),
      );
      const shell = Number(readFileSync(join(pids, "shell"), "utf8"));
      const child = Number(readFileSync(join(pids, "child"), "utf8"));
      assert.equal(await processGone(child), false);
      await h.api("POST", `/api/runs/${id}/cancel`, { reason: "test" });
      await waitFor(
        async () => ((await processGone(shell)) && (await processGone(child)) ? true : undefined),
        30_000,
      );
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "cancelled");
      runner.kill("SIGTERM");
      await runner.exited;
    });

    test("an agent step runs the configured agent command; its message and changed files are outputs", async () => {
      const runner = await h.runner({
        name: "agent-box",
        labels: ["agent"],
        config: `agents:\n  fake: { command: "${process.execPath} ${FAKE_AGENT} {prompt} {max_turns}", default: true }\n`,
      });
      const id = await h.startRun(`
name: agent
steps:
  fix:
    runs-on: [agent]
    agent: { prompt: "Explain it's done", budget: { turns: 3 } }
  branch:
    runs-on: [agent]
    agent: { prompt: "write and commit", use: fake }
`);
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "success", JSON.stringify(run.state.steps.fix));
      const outputs = run.state.steps.fix?.outputs ?? {};
      assert.equal(outputs.message, `Done: I wrote NOTES.md for "Explain it's done".`);
      assert.equal(outputs["changed-files"], "NOTES.md");
      assert.equal(outputs.branch, undefined);
      assert.equal(outputs.commit, undefined);
      const committed = run.state.steps.branch?.outputs ?? {};
      assert.equal(committed.branch, "agent/notes");
      assert.match(committed.commit ?? "", /^[0-9a-f]{40}$/);
      assert.equal(committed["changed-files"], "NOTES.md");
      const logs = await h.logs(id);
      assert.match(logs, /\[fake-agent\] prompt: Explain it's done/);
      assert.match(logs, /\[fake-agent\] turns allowed: 3/);
      runner.kill("SIGTERM");
      await runner.exited;
    });

    test("a revoked runner token is refused, and the runner stops saying so", async () => {
      const runner = await h.runner({ name: "to-revoke", labels: ["revoked"] });
      const identity = JSON.parse(readFileSync(join(runner.stateDir, "runner.json"), "utf8")) as {
        runnerId: string;
        token: string;
      };
      const { baton } = await import("../cli/baton-process.js");
      const listed = await baton(["--url", h.url, "runners", "list", "--json"], {
        env: { BATON_TOKEN: h.token },
      });
      assert.equal(listed.code, 0, listed.stderr);
      const mine = (
        JSON.parse(listed.stdout) as Array<{ id: string; labels: string[]; revokedAt?: string }>
      ).find((runner) => runner.id === identity.runnerId);
      assert.deepEqual(mine?.labels, ["self-hosted", "revoked"]);
      assert.equal(mine?.revokedAt, undefined);
      const revoked = await baton(["--url", h.url, "runners", "revoke", identity.runnerId], {
        env: { BATON_TOKEN: h.token },
      });
      assert.equal(revoked.code, 0, revoked.stderr);
      const finished = await runner.exited;
      assert.equal(finished.code, 4);
      assert.match(finished.stderr, /revoked/);
      const response = await fetch(new URL("/api/runner/claim", h.url), {
        method: "POST",
        headers: { authorization: `Bearer ${identity.token}`, "content-type": "application/json" },
        body: JSON.stringify({ slots: 1 }),
      });
      assert.equal(response.status, 401);
      const body = (await response.json()) as { error: { code: string } };
      assert.equal(body.error.code, "runner_revoked");
      // An unknown registration token registers nothing.
      const bogus = await baton(
        [
          "--url",
          h.url,
          "runner",
          "--token",
          "baton_rr_bogus",
          "--state-dir",
          join(h.dir, "bogus"),
        ],
        { timeoutMs: 30_000 },
      );
      assert.equal(bogus.code, 4);
      assert.match(bogus.stderr, /registration token is unknown, expired or revoked/);
      assert.equal(existsSync(join(h.dir, "bogus", "runner.json")), false);
      // A registration token is not a runner token, and junk is refused too.
      const wrong = await fetch(new URL("/api/runner/claim", h.url), {
        method: "POST",
        headers: { authorization: "Bearer baton_rt_nothing" },
      });
      assert.equal(wrong.status, 401);
    });

    test("a runner cut off mid-step loses its lease: the step runs again elsewhere, and the first runner stops its copy without reporting", async () => {
      const marks = join(h.dir, "frozen");
      await mkdir(marks, { recursive: true });
      const frozen = await h.runner({ name: "frozen", labels: ["cut-off"] });
      const id = await h.startRun(`
name: cut-off
steps:
  work:
    runs-on: cut-off
    retry: { attempts: 2, delay: 1s }
    run: |
      if [ "$BATON_ATTEMPT" = 1 ]; then echo $$ > "${marks}/first"; sleep 600; fi
      echo "who=$WHO" >> "$BATON_OUTPUT"
`);
      await waitFor(() => Promise.resolve(existsSync(join(marks, "first")) ? true : undefined));
      const first = Number(readFileSync(join(marks, "first"), "utf8"));
      // Frozen: no heartbeats, as if the network were gone.
      frozen.kill("SIGSTOP");
      const thawed = await h.runner({ name: "thawed", labels: ["cut-off"] });
      const run = await h.waitForRun(id, ended);
      assert.equal(run.state.status, "success");
      assert.equal(run.state.steps.work?.outputs.who, "thawed");
      frozen.kill("SIGCONT");
      // Its next heartbeat says the lease is gone: it kills the step's process group.
      await waitFor(async () => ((await processGone(first)) ? true : undefined), 30_000);
      const later = await h.run(id);
      assert.equal(later.state.steps.work?.outputs.who, "thawed");
      assert.equal(later.events.filter((e) => e.type === "attempt.finished").length, 2);
      for (const runner of [frozen, thawed]) runner.kill("SIGTERM");
      for (const runner of [frozen, thawed]) assert.equal((await runner.exited).code, 0);
    });

    if (backend === "postgres") {
      test("a runner killed mid-step: the step is retried on another runner; the old lease's late result is ignored", async () => {
        const db = h.database!.db;
        const marks = join(h.dir, "crash");
        await mkdir(marks, { recursive: true });
        const doomed = await h.runner({ name: "doomed", labels: ["crashy"] });
        const id = await h.startRun(`
name: crashy
steps:
  work:
    runs-on: crashy
    retry: { attempts: 2, delay: 1s }
    run: |
      if [ "$BATON_ATTEMPT" = 1 ]; then echo $$ > "${marks}/first"; sleep 600; fi
      echo "who=$WHO" >> "$BATON_OUTPUT"
`);
        await waitFor(() => Promise.resolve(existsSync(join(marks, "first")) ? true : undefined));
        const orphan = Number(readFileSync(join(marks, "first"), "utf8"));
        doomed.kill("SIGKILL");
        await doomed.exited;
        const survivor = await h.runner({ name: "survivor", labels: ["crashy"] });
        const run = await h.waitForRun(id, ended);
        assert.equal(run.state.status, "success");
        assert.equal(run.state.steps.work?.attempt, 2);
        assert.equal(run.state.steps.work?.outputs.who, "survivor");
        const first = run.events.find((e) => e.type === "attempt.finished" && e.attempt === 1);
        assert.match(first?.error ?? "", /lease ran out/);

        // The dead runner's result arrives late, under its old lease: refused and kept.
        const job = await getRunnerJob(db, `${id}/work/1`);
        assert.equal(job?.status, "lost");
        const identity = JSON.parse(readFileSync(join(doomed.stateDir, "runner.json"), "utf8")) as {
          token: string;
        };
        const late = await fetch(new URL("/api/runner/result", h.url), {
          method: "POST",
          headers: {
            authorization: `Bearer ${identity.token}`,
            "content-type": "application/json",
          },
          body: JSON.stringify({
            key: job?.key,
            leaseId: job?.leaseId,
            outcome: "success",
            outputs: { who: "ghost" },
          }),
        });
        assert.equal(late.status, 409);
        const after = await h.run(id);
        assert.equal(after.state.steps.work?.outputs.who, "survivor");
        assert.equal(after.events.filter((e) => e.type === "attempt.finished").length, 2);
        const kept = await db.query<{ late_results: unknown[] }>(
          "SELECT late_results FROM runner_jobs WHERE key = $1",
          [job?.key],
        );
        assert.equal(kept.rows[0]?.late_results.length, 1);
        try {
          process.kill(-orphan, "SIGKILL");
        } catch {
          // Already gone.
        }
        survivor.kill("SIGTERM");
        await survivor.exited;
      });

      test("a runner claims only steps of its own repository and installation", async () => {
        const db = h.database!.db;
        const service = new BatonService({ store: db });
        const source = `name: scoped\nsteps:\n  s:\n    runs-on: scoped\n    run: echo "who=$WHO" >> "$BATON_OUTPUT"\n`;
        const parsed = parseFlow(source, ".github/flows/scoped.yml");
        const startIn = async (repository: string, installationId: number) => {
          const version = await saveFlowVersion(db, {
            sourceKind: "repository",
            repository,
            path: ".github/flows/scoped.yml",
            sha: `${installationId}`.padStart(40, "0"),
            name: "scoped",
            definition: parsed.flow!,
            source,
          });
          return (
            await service.startRun({
              flowFile: { versionId: version.id },
              actor: "octocat",
              github: { installationId, headSha: "f".repeat(40) },
            })
          ).runId;
        };
        const tokenFor = async (scope: {
          kind: "repository" | "organization";
          name: string;
          installationId: number;
        }) =>
          (await createRegistrationToken(db, { scope, createdBy: "admin", expiresInMs: 600_000 }))
            .token;
        const acme = await h.runner({
          name: "acme-runner",
          labels: ["scoped"],
          token: await tokenFor({ kind: "repository", name: "acme/app", installationId: 1 }),
        });
        const acmeRun = await startIn("acme/app", 1);
        const globexRun = await startIn("globex/web", 2);
        const impostorRun = await startIn("acme/app", 3); // same name, another installation
        const done = await h.waitForRun(acmeRun, ended);
        assert.equal(done.state.steps.s?.outputs.who, "acme-runner");
        const acmeId = (
          JSON.parse(readFileSync(join(acme.stateDir, "runner.json"), "utf8")) as {
            runnerId: string;
          }
        ).runnerId;
        await waitFor(async () =>
          (await getRunnerJob(db, `${globexRun}/s/1`)) ? true : undefined,
        );
        await waitFor(async () =>
          (await getRunnerJob(db, `${impostorRun}/s/1`)) ? true : undefined,
        );
        assert.deepEqual(await claimRunnerJobs(db, acmeId, 10, 1000), []);
        assert.equal((await getRunnerJob(db, `${globexRun}/s/1`))?.status, "queued");
        assert.equal((await getRunnerJob(db, `${impostorRun}/s/1`))?.status, "queued");
        const globex = await h.runner({
          name: "globex-runner",
          labels: ["scoped"],
          token: await tokenFor({ kind: "organization", name: "globex", installationId: 2 }),
        });
        const other = await h.waitForRun(globexRun, ended);
        assert.equal(other.state.steps.s?.outputs.who, "globex-runner");
        assert.equal((await getRunnerJob(db, `${impostorRun}/s/1`))?.status, "queued");
        await h.api("POST", `/api/runs/${impostorRun}/cancel`, {});
        for (const runner of [acme, globex]) runner.kill("SIGTERM");
        await Promise.all([acme.exited, globex.exited]);
      });
    }
  });
}
