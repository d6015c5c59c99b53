/**
 * `workflow` steps end to end: the app as `npm start` composes it, the fake GitHub's
 * Actions (dispatch, runs, cancel, their webhooks), and the bundled Baton action run as a
 * job would run it (test/action/run-action.ts). The repository holds the example flow and
 * workflows of examples/, so the example is what is tested.
 */
import { startAppAgainst } from "../fake-github/start-app-against.js";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { RunningApp } from "../../app/server/start-app.js";
import {
  signStepToken,
  stepTokenKey,
  verifyStepToken,
} from "../../app/github/workflows/step-token.js";
import type { RunDetails } from "../../app/runtime/service.js";
import { repoRoot, runAction } from "../action/run-action.js";
import { eventually } from "../github/check-runs-harness.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import type { FakeWorkflowRun } from "../fake-github/actions.js";
import { FakeGitHub, type FakeGitHubOptions } from "../fake-github/server.js";
import { freePort } from "../helpers/free-port.js";

const SECRET = "actions end to end";
const REPO = "acme/widgets";
const example = (path: string) => readFileSync(join(repoRoot, "examples", path), "utf8");

/** A flow whose one step may not take long: its timeout cancels the workflow run. */
const SLOW = `on: { manual: {} }
steps:
  build:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
    timeout: 2s
`;

/** One workflow step, no retries: two runs of it race in the 204 scenario. */
const ONCE = `on: { manual: {} }
steps:
  build:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
    outputs: [version]
`;

/**
 * A workflow step with a wait beside it: the workflow's job signals its own run through
 * the action (with its step token) while it runs.
 */
const SIGNALLED = `on: { manual: {} }
steps:
  build:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
  ready:
    wait: { signal: smoke-passed, timeout: 1m }
`;

/** What a workflow's action may start (and wait for): a flow with inputs and outputs. */
const GREET = `on:
  manual:
    inputs:
      who: { type: string, required: true }
outputs:
  greeting: "Hello, \${{ inputs.who }}"
steps:
  pause:
    wait: { for: 1s }
`;

/** A deployment undone by a workflow when a later step fails. */
const UNDONE = `on: { manual: {} }
steps:
  deploy:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
    compensate:
      workflow: rollback.yml
      with: { sha: "\${{ run.sha }}" }
  verify:
    needs: deploy
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
`;

const ROLLBACK = `name: Rollback
on:
  workflow_dispatch:
    inputs:
      sha: { required: true }
      baton: { required: false }
jobs: {}
`;

interface World {
  fake: FakeGitHub;
  app: RunningApp;
  stop(): Promise<void>;
}

async function startWorld(
  testDb: TestDatabase,
  actions: FakeGitHubOptions["actions"],
): Promise<World> {
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 }, actions });
  const port = await freePort();
  const app = await startAppAgainst(fake, testDb.db, {
    secret: SECRET,
    parts: { checkRuns: { writeIntervalMs: 5 }, workflows: { forceCancelAfterMs: 300 } },
    port,
    // Step tokens carry the app's URL: the action finds Baton with no configuration.
    publicUrl: `http://127.0.0.1:${port}`,
  });
  await fake.install({
    installationId: 1,
    account: "acme",
    repositories: [{ name: "widgets", files: { "README.md": "widgets\n" } }],
  });
  fake.setRole(REPO, "ada", "write");
  const pushed = await fake.push(REPO, {
    files: {
      ".github/workflows/build.yml": example("workflows/build.yml"),
      ".github/workflows/ship.yml": example("workflows/ship.yml"),
      ".github/flows/actions-release.yml": example("flows/actions-release.yml"),
      ".github/flows/slow.yml": SLOW,
      ".github/flows/once.yml": ONCE,
      ".github/flows/signalled.yml": SIGNALLED,
      ".github/flows/greet.yml": GREET,
      ".github/flows/undone.yml": UNDONE,
      ".github/workflows/rollback.yml": ROLLBACK,
    },
  });
  await eventually("the flows to be live", () => {
    const check = fake.checkRuns.find(
      (c) => c.name === "baton / flows" && c.head_sha === pushed.sha,
    );
    return check?.status === "completed" ? check : undefined;
  });
  assert.equal(
    fake.checkRuns.find((c) => c.name === "baton / flows" && c.head_sha === pushed.sha)?.conclusion,
    "success",
  );
  return {
    fake,
    app,
    async stop() {
      await app.stop();
      await fake.stop();
    },
  };
}

/** Start a live flow as a writer would, through the run API. */
async function startFlow(
  world: World,
  flow: string,
  inputs: Record<string, string | number> = {},
): Promise<string> {
  const response = await fetch(`${world.app.url}/api/repos/${REPO}/flows/${flow}/runs`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${world.fake.userToken("ada")}`,
      "content-type": "application/json",
    },
    body: JSON.stringify({ inputs }),
  });
  assert.equal(response.status, 201, await response.clone().text());
  return ((await response.json()) as { id: string }).id;
}

async function details(world: World, runId: string): Promise<RunDetails> {
  return world.app.app.service.getRun(runId);
}

async function finished(world: World, runId: string): Promise<RunDetails> {
  return eventually(`run ${runId} to finish`, async () => {
    const run = await details(world, runId);
    const status = run.state?.status;
    return status === "success" || status === "failure" || status === "cancelled" ? run : undefined;
  });
}

/** The job of a dispatched run, as GitHub's runner would play it: the action reports outputs. */
async function playJob(
  fake: FakeGitHub,
  run: FakeWorkflowRun,
  outputs: string,
): Promise<Awaited<ReturnType<typeof runAction>>> {
  await fake.startWorkflowRun(run.id);
  return runAction({
    inputs: { mode: "outputs", outputs },
    event: { inputs: run.inputs },
    env: { GITHUB_REPOSITORY: REPO, GITHUB_RUN_ID: String(run.id) },
  });
}

const byPath =
  (path: string, not: readonly number[] = []) =>
  (run: FakeWorkflowRun) =>
    run.path === `.github/workflows/${path}` && !not.includes(run.id);

for (const backend of BACKENDS) {
  describe(`workflow steps on GitHub Actions, end to end on ${backend}`, () => {
    let testDb: TestDatabase;
    let world: World;
    before(async () => {
      testDb = await createTestDatabase(backend);
      // Cancelled runs do not stop by themselves here: Baton must force-cancel them.
      world = await startWorld(testDb, { onCancel: "ignore" });
    });
    after(async () => {
      await world.stop();
      await testDb.drop();
    });

    test("two workflow steps in sequence: outputs go from the first to the second through the action", async () => {
      const { fake } = world;
      fake.addIssue(REPO, 7);
      const runId = await startFlow(world, "actions-release", { channel: "stable", issue: 7 });
      const build = await fake.waitForWorkflowRun(byPath("build.yml"));
      assert.equal(build.ref, "main", "dispatched on the default branch");
      assert.equal(
        build.inputs.sha,
        (await details(world, runId)).run.github?.headSha,
        "the commit travels as data",
      );
      assert.match(String(build.inputs.baton), /^bst1\./, "the step token is the baton input");
      assert.match(build.displayTitle, /bst1\./, "and the run-name carries it");

      const reported = await playJob(fake, build, "version=1.2.3");
      assert.equal(reported.code, 0, reported.stdout + reported.stderr);
      // A second report with the same token is a replay.
      const replay = await runAction({
        inputs: { mode: "outputs", outputs: "version=6.6.6" },
        event: { inputs: build.inputs },
        env: { GITHUB_REPOSITORY: REPO },
      });
      assert.equal(replay.code, 1);
      assert.match(replay.stdout, /replay/);
      await fake.completeWorkflowRun(build.id, "success");

      const ship = await fake.waitForWorkflowRun(byPath("ship.yml"));
      assert.equal(ship.inputs.version, "1.2.3", "the first step's output is the second's input");
      assert.equal(ship.inputs.channel, "stable");
      await fake.startWorkflowRun(ship.id);
      await fake.waitOnEnvironment(ship.id, "production");
      await eventually("the step to show the environment's approval", async () =>
        /waits for approval of environment production/.test(
          (await details(world, runId)).state?.steps.ship?.reason ?? "",
        )
          ? true
          : undefined,
      );
      const shipped = await runAction({
        inputs: { mode: "outputs", outputs: "url=https://downloads.example.com/1.2.3" },
        event: { inputs: ship.inputs },
        env: { GITHUB_REPOSITORY: REPO },
      });
      assert.equal(shipped.code, 0, shipped.stdout);
      await fake.completeWorkflowRun(ship.id, "success");

      const run = await finished(world, runId);
      assert.equal(run.state?.status, "success");
      assert.deepEqual(
        run.state?.steps.build?.outputs,
        { version: "1.2.3" },
        "the replay changed nothing",
      );
      assert.deepEqual(run.state?.steps.ship?.outputs, {
        url: "https://downloads.example.com/1.2.3",
      });
      const check = await eventually("the check run to complete with links", () => {
        const found = fake.checkRuns.filter((c) => c.name === "baton / Actions release").at(-1);
        return found?.status === "completed" && found.output.summary?.includes(ship.htmlUrl)
          ? found
          : undefined;
      });
      assert.ok(
        check.output.summary?.includes(build.htmlUrl),
        "each step links to its Actions run",
      );
      fake.assertNoUnexpectedRequests();
    });

    test("a failed workflow run fails the attempt and the retry dispatches again", async () => {
      const { fake } = world;
      const before = fake.workflowRuns.map((r) => r.id);
      const runId = await startFlow(world, "actions-release");
      const first = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(first.id);
      await fake.completeWorkflowRun(first.id, "failure");
      const second = await fake.waitForWorkflowRun(byPath("build.yml", [...before, first.id]));
      assert.notEqual(second.inputs.baton, first.inputs.baton, "each attempt has its own token");
      assert.equal((await playJob(fake, second, "version=2.0.0")).code, 0);
      await fake.completeWorkflowRun(second.id, "success");
      const ship = await fake.waitForWorkflowRun(byPath("ship.yml", before));
      assert.equal(ship.inputs.version, "2.0.0");
      await fake.startWorkflowRun(ship.id);
      await fake.completeWorkflowRun(ship.id, "success");
      const run = await finished(world, runId);
      assert.equal(run.state?.status, "success");
      assert.equal(run.state?.steps.build?.attempt, 2);
      const failedAttempt = run.events.find(
        (e) => e.type === "attempt.finished" && e.step === "build" && e.attempt === 1,
      );
      assert.match(
        JSON.stringify(failedAttempt),
        /ended with conclusion failure/,
        "the first attempt says why it failed",
      );
      fake.assertNoUnexpectedRequests();
    });

    test("a step that times out cancels its workflow run, and force-cancels it when it does not stop", async () => {
      const { fake } = world;
      const before = fake.workflowRuns.map((r) => r.id);
      const runId = await startFlow(world, "slow");
      const build = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(build.id);
      const run = await finished(world, runId);
      assert.equal(run.state?.status, "failure");
      assert.match(run.state?.steps.build?.reason ?? "", /timed out/);
      await eventually("the workflow run to be cancelled, then force-cancelled", () =>
        build.cancelRequests >= 1 && build.forceCancelRequests >= 1 && build.status === "completed"
          ? true
          : undefined,
      );
      assert.equal(build.conclusion, "cancelled");
      fake.assertNoUnexpectedRequests();
    });

    test("cancelling the Baton run cancels its Actions run", async () => {
      const { fake, app } = world;
      const before = fake.workflowRuns.map((r) => r.id);
      const runId = await startFlow(world, "actions-release");
      const build = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(build.id);
      const response = await fetch(`${app.url}/api/runs/${runId}/cancel`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${fake.userToken("ada")}`,
          "content-type": "application/json",
        },
        body: JSON.stringify({ reason: "not today" }),
      });
      assert.equal(response.status, 200, await response.text());
      const run = await finished(world, runId);
      assert.equal(run.state?.status, "cancelled");
      await eventually("the Actions run to be cancelled", () =>
        build.cancelRequests >= 1 && build.status === "completed" ? true : undefined,
      );
      fake.assertNoUnexpectedRequests();
    });

    test("the action signals its own run with the step token, and starts a flow and waits for its outputs", async () => {
      const { fake, app } = world;
      const before = fake.workflowRuns.map((r) => r.id);
      const runId = await startFlow(world, "signalled");
      const build = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(build.id);
      const signalled = await runAction({
        inputs: { mode: "signal", signal: "smoke-passed", payload: '{"checks": 12}' },
        event: { inputs: build.inputs },
        env: { GITHUB_REPOSITORY: REPO },
      });
      assert.equal(signalled.code, 0, signalled.stdout);
      await fake.completeWorkflowRun(build.id, "success");
      const run = await finished(world, runId);
      assert.equal(run.state?.status, "success");
      assert.deepEqual(JSON.parse(run.state?.steps.ready?.outputs.payload ?? "null"), {
        checks: 12,
      });

      // Any workflow may start a live flow with a GitHub token of someone who may.
      const started = await runAction({
        inputs: {
          mode: "start",
          flow: "greet",
          inputs: '{"who": "Ada"}',
          wait: "true",
          "poll-interval": "200ms",
          url: app.url,
          "github-token": fake.userToken("ada"),
        },
        env: { GITHUB_REPOSITORY: REPO },
      });
      assert.equal(started.code, 0, started.stdout);
      assert.equal(started.outputs.status, "success");
      assert.equal(started.outputs.greeting, "Hello, Ada");
      // A reader may not.
      fake.setRole(REPO, "rita", "read");
      const refused = await runAction({
        inputs: {
          mode: "start",
          flow: "greet",
          inputs: '{"who": "Rita"}',
          url: app.url,
          "github-token": fake.userToken("rita"),
        },
        env: { GITHUB_REPOSITORY: REPO },
      });
      assert.equal(refused.code, 1);
      assert.match(refused.stdout, /::error::.*403/);
      fake.assertNoUnexpectedRequests();
    });

    test("a workflow starts a flow of its own repository with its Actions OIDC token, and nothing more", async () => {
      const { fake, app } = world;
      // A job of a workflow run of acme/widgets (here one Baton dispatched; any would do).
      const before = fake.workflowRuns.map((r) => r.id);
      const once = await startFlow(world, "once");
      const job = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(job.id);
      const started = await runAction({
        inputs: { mode: "start", flow: "greet", inputs: '{"who": "Actions"}', wait: "true" },
        env: {
          GITHUB_REPOSITORY: REPO,
          BATON_URL: app.url,
          ...fake.oidc.jobEnvironment(job),
        },
      });
      assert.equal(started.code, 0, started.stdout);
      assert.equal(started.outputs.greeting, "Hello, Actions");
      const run = await details(world, started.outputs["run-id"] ?? "");
      assert.equal(run.run.actor, `workflow:${REPO}/.github/workflows/build.yml@refs/heads/main`);

      const start = (token: string, repository = REPO) =>
        fetch(`${app.url}/api/repos/${repository}/flows/greet/runs`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ inputs: { who: "Mallory" } }),
        });
      const elsewhere = await start(fake.oidc.mint(job, "https://another-service.example"));
      assert.equal(elsewhere.status, 401, "a token for another audience");
      assert.match(await elsewhere.text(), /audience is not Baton's/);
      const expired = await start(
        fake.oidc.mint(job, app.url, { exp: Math.floor(Date.now() / 1000) - 120 }),
      );
      assert.equal(expired.status, 401);
      const otherRepository = await start(
        fake.oidc.mint(job, app.url, { repository: "acme/gadgets" }),
      );
      assert.equal(otherRepository.status, 404, "another repository's workflow finds nothing here");
      const approve = await fetch(
        `${app.url}/api/runs/${started.outputs["run-id"] ?? ""}/steps/pause/approve`,
        {
          method: "POST",
          headers: {
            authorization: `Bearer ${fake.oidc.mint(job, app.url)}`,
            "content-type": "application/json",
          },
          body: "{}",
        },
      );
      assert.equal(approve.status, 403, "a workflow never approves");
      await fake.completeWorkflowRun(job.id, "success");
      assert.equal((await finished(world, once)).state?.status, "success");
      fake.assertNoUnexpectedRequests();
    });

    test("a workflow compensates a step when a later one fails", async () => {
      const { fake } = world;
      const before = fake.workflowRuns.map((r) => r.id);
      const runId = await startFlow(world, "undone");
      const deploy = await fake.waitForWorkflowRun(byPath("build.yml", before));
      await fake.startWorkflowRun(deploy.id);
      await fake.completeWorkflowRun(deploy.id, "success");
      const verify = await fake.waitForWorkflowRun(byPath("build.yml", [...before, deploy.id]));
      await fake.startWorkflowRun(verify.id);
      await fake.completeWorkflowRun(verify.id, "failure");
      const rollback = await fake.waitForWorkflowRun(byPath("rollback.yml", before));
      assert.equal(rollback.inputs.sha, deploy.inputs.sha);
      // The compensating workflow may report outputs like any step's workflow; they are kept.
      assert.equal((await playJob(fake, rollback, "restored=yes")).code, 0);
      await fake.completeWorkflowRun(rollback.id, "success");
      const run = await finished(world, runId);
      assert.equal(run.state?.status, "failure");
      await eventually("the compensation to succeed", async () =>
        (await details(world, runId)).state?.steps.deploy?.compensation === "success"
          ? true
          : undefined,
      );
      fake.assertNoUnexpectedRequests();
    });

    test("a forged, an expired or a replayed step token is refused and recorded", async () => {
      const { app } = world;
      const post = (token: string) =>
        fetch(`${app.url}/api/steps/outputs`, {
          method: "POST",
          headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
          body: JSON.stringify({ outputs: { version: "evil" } }),
        });
      const [{ id: runId } = { id: "" }] = (
        await testDb.db.query<{ id: string }>(
          "SELECT run_id AS id FROM workflow_dispatches LIMIT 1",
        )
      ).rows;
      const claims = {
        run: runId,
        step: "build",
        attempt: 1,
        exp: Math.floor(Date.now() / 1000) + 600,
      };
      const forged = await post(signStepToken(randomBytes(32), claims));
      assert.equal(forged.status, 401);
      assert.match(await forged.text(), /not issued by this Baton/);
      const key = await stepTokenKey(testDb.db);
      const expired = await post(
        signStepToken(key, { ...claims, exp: Math.floor(Date.now() / 1000) - 1 }),
      );
      assert.equal(expired.status, 401);
      assert.match(await expired.text(), /expired/);
      const finishedAttempt = await post(signStepToken(key, claims));
      assert.equal(finishedAttempt.status, 409, "the attempt is over");
      const garbage = await post("bst1.nonsense");
      assert.equal(garbage.status, 401);
      const reasons = (
        await testDb.db.query<{ reason: string }>(
          "SELECT reason FROM step_token_rejections ORDER BY id",
        )
      ).rows.map((r) => r.reason);
      for (const reason of ["replayed", "forged", "expired", "not-running", "malformed"])
        assert.ok(reasons.includes(reason), `${reason} is recorded (got ${reasons.join(", ")})`);
      const tokens = await testDb.db.query("SELECT * FROM step_token_rejections");
      assert.ok(
        !JSON.stringify(tokens.rows).includes("bst1."),
        "only hashes of refused tokens are kept",
      );
    });
  });

  describe(`workflow steps on GitHub Enterprise Server (no run details: 422, then 204), on ${backend}`, () => {
    let testDb: TestDatabase;
    let world: World;
    before(async () => {
      testDb = await createTestDatabase(backend);
      // As GitHub Enterprise Server ≤ 3.20: `return_run_details` is refused, and dispatches
      // without it answer 204.
      world = await startWorld(testDb, { returnRunDetails: "rejected" });
    });
    after(async () => {
      await world.stop();
      await testDb.drop();
    });

    test("two dispatches of the same workflow race, and each run is found by the token in its title", async () => {
      const { fake } = world;
      const runA = await startFlow(world, "once");
      const runB = await startFlow(world, "once");
      await eventually("both dispatches", () =>
        fake.workflowRuns.filter(byPath("build.yml")).length === 2 ? true : undefined,
      );
      const dispatches = fake.requests.filter(
        (r) => r.method === "POST" && /\/actions\/workflows\/[^/]+\/dispatches$/.test(r.path),
      );
      assert.deepEqual(
        dispatches.map((r) => r.status).sort(),
        [204, 204, 422, 422],
        "each dispatch asked for run details, was refused, and was sent again without",
      );
      const key = await stepTokenKey(testDb.db);
      const owner = (run: FakeWorkflowRun) => {
        const check = verifyStepToken(key, String(run.inputs.baton), Date.now());
        assert.ok(check.ok);
        return check.claims.run;
      };
      const runs = fake.workflowRuns.filter(byPath("build.yml"));
      const ofA = runs.find((r) => owner(r) === runA);
      const ofB = runs.find((r) => owner(r) === runB);
      assert.ok(ofA && ofB);
      // GitHub tells of B's run first, then A's; A succeeds and B fails.
      await fake.workflowRunRequested(ofB.id);
      await fake.workflowRunRequested(ofA.id);
      assert.equal((await playJob(fake, ofB, "version=B")).code, 0);
      assert.equal((await playJob(fake, ofA, "version=A")).code, 0);
      await fake.completeWorkflowRun(ofB.id, "failure");
      await fake.completeWorkflowRun(ofA.id, "success");
      const a = await finished(world, runA);
      const b = await finished(world, runB);
      assert.equal(a.state?.status, "success");
      assert.deepEqual(a.state?.steps.build?.outputs, { version: "A" });
      assert.equal(b.state?.status, "failure");
      const tied = await testDb.db.query<{ run_id: string; workflow_run_id: string }>(
        "SELECT run_id, workflow_run_id FROM workflow_dispatches ORDER BY run_id",
      );
      assert.deepEqual(
        new Map(tied.rows.map((r) => [r.run_id, Number(r.workflow_run_id)])),
        new Map([
          [runA, ofA.id],
          [runB, ofB.id],
        ]),
      );
      fake.assertNoUnexpectedRequests();
    });
  });
}
