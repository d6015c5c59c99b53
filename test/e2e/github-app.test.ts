/**
 * Baton as a GitHub App, end to end: the app as `npm start` composes it (every part, the
 * inbox, the runtime, the run API) against the fake GitHub, driven only by webhooks and
 * GitHub users' actions, judged only by what GitHub would show (check runs, comments)
 * and what Baton stored. The schedule scenario runs two real `npm start` processes.
 */
import { startAppAgainst } from "../fake-github/start-app-against.js";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { createGitHubClient } from "../../app/github/github-client.js";
import type { RunningApp } from "../../app/server/start-app.js";
import { baton, startBaton } from "../cli/baton-process.js";
import { eventually } from "../github/check-runs-harness.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeGitHub, type FakeCheckRun } from "../fake-github/server.js";
import { patchPayload, sendWebhook, webhookExample } from "../fake-github/webhooks.js";
import { startAppRunner } from "../runners/app-runner.js";

const SECRET = "end to end";
const REPO = "acme/widgets";

const HELLO = `name: Hello
on:
  manual:
    inputs:
      who: { type: string, default: world }
  github:
    issues: { types: [labeled], labels: [hello] }
permissions: { issues: write }
steps:
  greet:
    env: { WHO: "\${{ inputs.who }}" }
    run: echo "greeting=Hello, $WHO" >> "$BATON_OUTPUT"
    outputs: [greeting]
  reply:
    needs: greet
    github:
      request: POST /repos/{owner}/{repo}/issues/{issue_number}/comments
      with:
        issue_number: \${{ trigger.payload.issue.number }}
        body: "\${{ steps.greet.outputs.greeting }} (from Baton)"
`;

const DRAFTED = `on:
  manual:
    inputs:
      who: { type: string, default: draft }
steps:
  hi:
    run: echo "hi from the draft"
`;

/** A broken flow: line 4 names a step that does not exist. */
const BROKEN = `on: { manual: {} }
steps:
  build:
    needs: compile
    run: make
`;

interface World {
  fake: FakeGitHub;
  app: RunningApp;
  stop(): Promise<void>;
}

/** The installation's id in startWorld. */
const INSTALLATION = 1;

async function startWorld(testDb: TestDatabase): Promise<World> {
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 } });
  const app = await startAppAgainst(fake, testDb.db, {
    secret: SECRET,
    parts: { checkRuns: { writeIntervalMs: 5 } },
  });
  await fake.install({
    installationId: INSTALLATION,
    account: "acme",
    repositories: [{ name: "widgets", files: { "README.md": "widgets\n" } }],
  });
  // In the app every `run` step goes to a self-hosted runner (none runs on the app's host).
  const runner = await startAppRunner({
    url: app.url,
    store: testDb.db,
    repository: REPO,
    installationId: INSTALLATION,
  });
  return {
    fake,
    app,
    async stop() {
      await runner.stop();
      await app.stop();
      await fake.stop();
    },
  };
}

function checkRunNamed(fake: FakeGitHub, name: string, sha?: string): FakeCheckRun | undefined {
  return fake.checkRuns
    .filter((c) => c.name === name && (sha === undefined || c.head_sha === sha))
    .at(-1);
}

async function countRuns(testDb: TestDatabase, flow: string): Promise<number> {
  const result = await testDb.db.query<{ n: number | string }>(
    "SELECT count(*) AS n FROM runs WHERE repository = $1 AND flow = $2",
    [REPO, flow],
  );
  return Number(result.rows[0]?.n ?? 0);
}

function labeledIssue(fake: FakeGitHub, issue: number, label: string): Record<string, unknown> {
  const repository = fake.repository(REPO);
  const payload = patchPayload(webhookExample("issues", "labeled"), {
    installationId: 1,
    repository: { id: repository.id, owner: "acme", name: "widgets" },
  });
  const labelObject = { ...(payload.label as Record<string, unknown>), name: label };
  payload.label = labelObject;
  const issueObject = payload.issue as Record<string, unknown>;
  issueObject.number = issue;
  issueObject.labels = [labelObject];
  return payload;
}

for (const backend of BACKENDS) {
  describe(`the GitHub app end to end on ${backend}`, () => {
    let testDb: TestDatabase;
    let world: World;
    before(async () => {
      testDb = await createTestDatabase(backend);
      world = await startWorld(testDb);
    });
    after(async () => {
      await world.stop();
      await testDb.drop();
    });

    test("a flow pushed to main goes live, starts on its trigger, and its check run tells its story", async () => {
      const { fake } = world;
      const pushed = await fake.push(REPO, { files: { ".github/flows/hello.yml": HELLO } });
      assert.equal(pushed.delivery.status, 202);
      const flowsCheck = await eventually("the baton / flows check on the pushed commit", () => {
        const check = checkRunNamed(fake, "baton / flows", pushed.sha);
        return check?.status === "completed" ? check : undefined;
      });
      assert.equal(flowsCheck.conclusion, "success");

      fake.addIssue(REPO, 7);
      const sent = await fake.deliverWebhook("issues", labeledIssue(fake, 7, "hello"));
      assert.equal(sent.status, 202);
      const check = await eventually("the run's check run to complete", () => {
        const run = checkRunNamed(fake, "baton / Hello");
        return run?.status === "completed" ? run : undefined;
      });
      assert.equal(check.conclusion, "success");
      assert.equal(check.head_sha, pushed.sha, "on the commit the flow is live at");
      assert.match(check.output.summary ?? "", /greet/);
      assert.match(check.output.summary ?? "", /reply/);
      assert.match(check.output.summary ?? "", /Hello, world/, "the output is shown");
      assert.deepEqual(
        fake.issueComments(REPO, 7).map((c) => c.body),
        ["Hello, world (from Baton)"],
        "the github step commented on the issue that started the run",
      );
      // An issue labeled otherwise starts nothing.
      await fake.deliverWebhook("issues", labeledIssue(fake, 7, "bug"));
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await countRuns(testDb, "hello"), 1);
      fake.assertNoUnexpectedRequests();
    });

    test("a /baton run comment starts a live flow for a writer, with inputs", async () => {
      const { fake } = world;
      fake.setRole(REPO, "ada", "write");
      await fake.comment(REPO, 7, { user: "ada", body: "/baton run hello who=Ada" });
      await eventually("the github step's comment", () =>
        fake.issueComments(REPO, 7).find((c) => c.body === "Hello, Ada (from Baton)"),
      );
      const reply = fake.issueComments(REPO, 7).find((c) => c.body.startsWith("@ada Started"));
      assert.ok(reply, "the request is answered");
      fake.assertNoUnexpectedRequests();
    });

    test("a step with runs-on runs on a self-hosted runner a repository admin registered, in a checkout of the run's commit", async () => {
      const { fake, app } = world;
      fake.setRole(REPO, "admin", "admin");
      fake.setRole(REPO, "ada", "write");
      const pushed = await fake.push(REPO, {
        files: {
          ".github/flows/remote.yml": `on: { manual: {} }
steps:
  build:
    runs-on: [e2e]
    checkout: true
    run: |
      echo "readme=$(cat README.md)" >> "$BATON_OUTPUT"
      echo "head=$(git rev-parse HEAD)" >> "$BATON_OUTPUT"
    outputs: [readme, head]
`,
        },
      });
      await eventually("the flow to be live", () =>
        checkRunNamed(fake, "baton / flows", pushed.sha)?.conclusion === "success"
          ? true
          : undefined,
      );
      const created = await baton(
        ["--url", app.url, "runner-token", "create", "--repo", REPO, "--json"],
        { env: { BATON_TOKEN: fake.userToken("admin") } },
      );
      assert.equal(created.code, 0, created.stderr);
      const registration = (JSON.parse(created.stdout) as { token: string }).token;
      const stateDir = await mkdtemp(join(tmpdir(), "baton-e2e-runner-"));
      const runner = startBaton([
        "--url",
        app.url,
        "runner",
        "--name",
        "e2e",
        "--label",
        "e2e",
        "--token",
        registration,
        "--state-dir",
        stateDir,
      ]);
      try {
        fake.addIssue(REPO, 8);
        await fake.comment(REPO, 8, { user: "ada", body: "/baton run remote" });
        const check = await eventually("the remote run's check run", () => {
          const run = checkRunNamed(fake, "baton / remote");
          return run?.status === "completed" ? run : undefined;
        });
        assert.equal(check.conclusion, "success", check.output.summary ?? "");
        const steps = await testDb.db.query<{ outputs: Record<string, string> }>(
          `SELECT s.outputs FROM steps AS s JOIN runs AS r ON r.id = s.run_id
            WHERE r.flow = 'remote' AND s.step = 'build'`,
        );
        // Cloned from GitHub (git over HTTP, with a token minted for the step) at the commit.
        assert.deepEqual(steps.rows[0]?.outputs, { readme: "widgets", head: pushed.sha });
        // That token: the run's repository only, read-only contents (DESIGN.md rule 12).
        const checkoutToken = fake.issuedTokens.filter((t) => t.repositoryIds !== undefined).at(-1);
        assert.deepEqual(checkoutToken?.repositoryIds, [fake.repository(REPO).id]);
        assert.deepEqual(checkoutToken?.permissions, { contents: "read", metadata: "read" });
        fake.assertNoUnexpectedRequests();
      } finally {
        runner.kill("SIGTERM");
        await runner.exited;
        await rm(stateDir, { recursive: true, force: true });
      }
    });

    test("a redelivered webhook is processed once", async () => {
      const { fake } = world;
      const before = await countRuns(testDb, "hello");
      const sent = await fake.deliverWebhook("issues", labeledIssue(fake, 7, "hello"));
      await eventually("the second run", async () =>
        (await countRuns(testDb, "hello")) === before + 1 ? true : undefined,
      );
      const octokit = createGitHubClient({
        appId: fake.appId,
        privateKey: fake.privateKey,
        baseUrl: fake.url,
        throttle: false,
      }).app();
      const original = fake.deliveries.find((d) => d.guid === sent.deliveryId && !d.redelivery);
      assert.ok(original);
      await octokit.request("POST /app/hook/deliveries/{delivery_id}/attempts", {
        delivery_id: original.id,
      });
      await eventually("GitHub to record the redelivery", () =>
        fake.deliveries.some(
          (d) => d.guid === sent.deliveryId && d.redelivery && d.status_code === 202,
        )
          ? true
          : undefined,
      );
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(await countRuns(testDb, "hello"), before + 1, "one run for one delivery");
      fake.assertNoUnexpectedRequests();
    });

    test("a badly signed webhook is rejected, recorded, and starts nothing", async () => {
      const { fake, app } = world;
      const before = await countRuns(testDb, "hello");
      const forged = await sendWebhook({
        url: `${app.url}/api/github/webhooks`,
        secret: "not the app's secret",
        event: "issues",
        payload: labeledIssue(fake, 7, "hello"),
      });
      assert.equal(forged.status, 401);
      const rejections = await testDb.db.query<{ reason: string }>(
        "SELECT reason FROM github_delivery_rejections WHERE delivery_id = $1",
        [forged.deliveryId],
      );
      assert.deepEqual(
        rejections.rows.map((r) => r.reason),
        ["X-Hub-Signature-256 does not match the body under the webhook secret"],
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(await countRuns(testDb, "hello"), before);
    });

    test("a pull request with a broken flow gets annotations on the exact lines", async () => {
      const { fake } = world;
      await fake.openPullRequest(REPO, {
        number: 21,
        headBranch: "broken",
        user: "mallory",
        files: { ".github/flows/broken.yml": BROKEN },
      });
      const head = fake.pullRequest(REPO, 21).head.sha;
      const check = await eventually("the draft check on the head", () => {
        const run = checkRunNamed(fake, "baton / flows", head);
        return run?.status === "completed" ? run : undefined;
      });
      assert.equal(check.conclusion, "failure");
      const annotation = check.annotations.find((a) => a.path === ".github/flows/broken.yml");
      assert.ok(annotation, "an annotation on the broken file");
      assert.equal(annotation.start_line, 4);
      assert.equal(annotation.annotation_level, "failure");
      assert.match(String(annotation.message), /compile/);
      fake.assertNoUnexpectedRequests();
    });

    test("a draft runs for a user with write permission, and is refused to a reader", async () => {
      const { fake } = world;
      fake.setRole(REPO, "writer", "write");
      fake.setRole(REPO, "reader", "read");
      await fake.openPullRequest(REPO, {
        number: 22,
        headBranch: "drafted",
        user: "writer",
        files: { ".github/flows/drafted.yml": DRAFTED },
      });
      const head = fake.pullRequest(REPO, 22).head.sha;
      await eventually("the draft check", () =>
        checkRunNamed(fake, "baton / flows", head)?.status === "completed" ? true : undefined,
      );

      await fake.comment(REPO, 22, { user: "reader", body: "/baton run drafted --draft" });
      const refusal = await eventually("a reply to the reader", () =>
        fake.issueComments(REPO, 22).find((c) => /reader/.test(c.body) && c.user !== "reader"),
      );
      assert.match(refusal.body, /write/, "says which permission is needed");
      assert.equal(await countRuns(testDb, "drafted"), 0);

      await fake.comment(REPO, 22, { user: "writer", body: "/baton run drafted who=Ada --draft" });
      const check = await eventually("the draft run's check run on the PR head", () => {
        const run = checkRunNamed(fake, "baton / drafted", head);
        return run?.status === "completed" ? run : undefined;
      });
      assert.equal(check.conclusion, "success");
      const runs = await testDb.db.query<{ actor: string; sha: string; pull_request: number }>(
        `SELECT r.actor, v.sha, r.pull_request FROM runs AS r
           JOIN flow_versions AS v ON v.id = r.flow_version_id WHERE r.flow = 'drafted'`,
      );
      assert.deepEqual(runs.rows, [{ actor: "writer", sha: head, pull_request: 22 }]);
      fake.assertNoUnexpectedRequests();
    });
  });
}

describe("schedules with two app processes (npm start) on one Postgres", () => {
  let testDb: TestDatabase;
  before(async () => {
    testDb = await createTestDatabase("postgres");
  });
  after(async () => {
    await testDb.drop();
  });

  test("each tick starts exactly one run", { timeout: 120_000 }, async () => {
    const fake = await FakeGitHub.start();
    const cwd = await mkdtemp(join(tmpdir(), "baton-e2e-"));
    const processes: ChildProcess[] = [];
    try {
      const env = {
        ...process.env,
        APP_ID: String(fake.appId),
        PRIVATE_KEY: fake.privateKey,
        WEBHOOK_SECRET: SECRET,
        GHE_HOST: new URL(fake.url).host,
        GHE_PROTOCOL: "http",
        DATABASE_URL: testDb.url ?? "",
        PORT: "0",
        HOST: "127.0.0.1",
      };
      const urls: string[] = [];
      for (let i = 0; i < 2; i++) {
        const child = spawn(process.execPath, [join(process.cwd(), "dist/app/server/main.js")], {
          cwd,
          env,
          stdio: ["ignore", "ignore", "pipe"],
        });
        processes.push(child);
        urls.push(await startedUrl(child));
      }
      fake.webhook = { url: `${urls[0]}/api/github/webhooks`, secret: SECRET };
      await fake.install({
        installationId: 3,
        account: "acme",
        repositories: [
          {
            name: "widgets",
            files: {
              // No `run` step: these `npm start` processes have no runner to send it to.
              ".github/flows/tick.yml": `on:\n  schedule:\n    - cron: "* * * * *"\nsteps:\n  hi:\n    wait: { for: 1s }\n`,
            },
          },
        ],
      });
      const scheduled = await eventually("the schedule to be live", async () => {
        const rows = await testDb.db.query<{ next_at: Date }>(
          "SELECT next_at FROM flow_schedules WHERE flow = 'tick'",
        );
        return rows.rows[0]?.next_at;
      });
      // Wait for the tick (within a minute), then a little longer for a wrong second run.
      const waitMs = scheduled.getTime() - Date.now();
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs) + 3000));
      const runs = await testDb.db.query<{ trigger_event: string; tick: string }>(
        `SELECT r.trigger_event, e.data -> 'trigger' -> 'payload' ->> 'tick' AS tick
           FROM runs AS r JOIN run_events AS e ON e.run_id = r.id AND e.seq = 1
          WHERE r.flow = 'tick'`,
      );
      assert.deepEqual(runs.rows, [{ trigger_event: "schedule", tick: scheduled.toISOString() }]);
      await eventually("its check run", () =>
        fake.checkRuns.find((c) => c.name === "baton / tick" && c.status === "completed"),
      );
      fake.assertNoUnexpectedRequests();
    } finally {
      for (const child of processes) child.kill("SIGTERM");
      await Promise.all(
        processes.map((child) =>
          child.exitCode !== null
            ? Promise.resolve()
            : new Promise((resolve) => child.once("exit", resolve)),
        ),
      );
      await fake.stop();
      await rm(cwd, { recursive: true, force: true });
    }
  });
});

/** The URL an `npm start` process logs once it serves. */
function startedUrl(child: ChildProcess): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`no start within 30 s:\n${output}`)), 30_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (chunk: string) => {
      output += chunk;
      const match = /Baton is running (\{.*\})/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve((JSON.parse(match[1]) as { url: string }).url);
      }
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited (${code}):\n${output}`));
    });
  });
}
