/**
 * `flow:` steps of repository flows in the GitHub App, end to end against the fake
 * GitHub: the sub-flow is `.github/flows/<name>.yml` of the same repository at the commit
 * the parent's version is pinned to, validated and stored as a version; a missing or
 * invalid sub-flow fails the step saying which file was expected and why.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { RunningApp } from "../../app/server/start-app.js";
import type { Run } from "../../app/store/model.js";
import { getFlowVersion } from "../../app/store/flow-versions.js";
import { startAppAgainst } from "../fake-github/start-app-against.js";
import { FakeGitHub } from "../fake-github/server.js";
import { eventually } from "../github/check-runs-harness.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { startAppRunner } from "../runners/app-runner.js";

const SECRET = "sub-flows";
const REPO = "acme/widgets";
const INSTALLATION = 1;

const PARENT = `on: { manual: {} }
outputs:
  doubled: \${{ steps.call.outputs.doubled }}
steps:
  call:
    flow: double
    with: { n: 21 }
  report:
    needs: call
    run: echo "saw=\${{ steps.call.outputs.doubled }}" >> "$BATON_OUTPUT"
    outputs: [saw]
`;

const CHILD = `on: { manual: { inputs: { n: { type: number, required: true } } } }
outputs:
  doubled: \${{ steps.double.outputs.value }}
steps:
  double:
    run: echo "value=$(( \${{ inputs.n }} * 2 ))" >> "$BATON_OUTPUT"
    outputs: [value]
`;

const ORPHAN = `on: { manual: {} }
steps:
  call:
    flow: nowhere
`;

const CALLS_BROKEN = `on: { manual: {} }
steps:
  call:
    flow: broken
`;

/** Invalid: names a step that does not exist. */
const BROKEN = `on: { manual: {} }
steps:
  build:
    needs: compile
    run: make
`;

for (const backend of BACKENDS) {
  describe(`sub-flows of repository flows on ${backend}`, () => {
    let testDb: TestDatabase;
    let fake: FakeGitHub;
    let app: RunningApp;
    let runner: { stop(): Promise<unknown> };
    let sha: string;

    before(async () => {
      testDb = await createTestDatabase(backend);
      fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 } });
      app = await startAppAgainst(fake, testDb.db, {
        secret: SECRET,
        parts: { checkRuns: { writeIntervalMs: 5 } },
      });
      await fake.install({
        installationId: INSTALLATION,
        account: "acme",
        repositories: [{ name: "widgets", files: { "README.md": "widgets\n" } }],
      });
      runner = await startAppRunner({
        url: app.url,
        store: testDb.db,
        repository: REPO,
        installationId: INSTALLATION,
      });
      const pushed = await fake.push(REPO, {
        files: {
          ".github/flows/parent.yml": PARENT,
          ".github/flows/double.yml": CHILD,
          ".github/flows/orphan.yml": ORPHAN,
          ".github/flows/calls-broken.yml": CALLS_BROKEN,
          ".github/flows/broken.yml": BROKEN,
        },
      });
      sha = pushed.sha;
      await eventually("the baton / flows check on the pushed commit", () => {
        const check = fake.checkRuns.find(
          (c) => c.name === "baton / flows" && c.head_sha === sha && c.status === "completed",
        );
        return check;
      });
      fake.addIssue(REPO, 3);
      fake.setRole(REPO, "ada", "write");
    });
    after(async () => {
      await runner?.stop();
      await app?.stop();
      await fake?.stop();
      await testDb?.drop();
    });

    /** Start `flow` with a `/baton run` comment and wait for its run to finish. */
    async function runToEnd(flow: string): Promise<Run> {
      await fake.comment(REPO, 3, { user: "ada", body: `/baton run ${flow}` });
      const started = await eventually(
        `a run of ${flow}`,
        async () => (await app.app.service.listRuns({ flow }))[0],
      );
      return (await app.app.service.waitForRun(started.id, { pollMs: 200 })).run;
    }

    test("a flow step runs the repository's sub-flow at the parent's commit and returns its outputs", async () => {
      const parent = await runToEnd("parent");
      assert.equal(parent.status, "success", JSON.stringify(parent.state?.steps));
      assert.deepEqual(parent.state?.outputs, { doubled: "42" });
      assert.equal(parent.state?.steps.report?.outputs.saw, "42");
      const [child] = await app.app.service.listRuns({ flow: "double" });
      assert.ok(child, "the child run exists");
      assert.equal(child.parent?.runId, parent.id);
      assert.equal(child.status, "success");
      const version = await getFlowVersion(testDb.db, child.flowVersionId);
      assert.equal(version?.sourceKind, "repository");
      assert.equal(version?.repository, REPO);
      assert.equal(version?.path, ".github/flows/double.yml");
      assert.equal(version?.sha, sha, "pinned to the parent's commit");
    });

    test("a missing sub-flow fails the step, naming the file it expected", async () => {
      const run = await runToEnd("orphan");
      assert.equal(run.status, "failure");
      const call = run.state?.steps.call;
      assert.equal(call?.attempt, 1, "not retried");
      assert.match(
        call?.reason ?? "",
        /sub-flow "nowhere" not found: expected \.github\/flows\/nowhere\.yml \(or \.yaml\) in acme\/widgets@/,
      );
    });

    test("an invalid sub-flow fails the step with its errors", async () => {
      const run = await runToEnd("calls-broken");
      assert.equal(run.status, "failure");
      const call = run.state?.steps.call;
      assert.match(call?.reason ?? "", /sub-flow \.github\/flows\/broken\.yml is invalid/);
      assert.match(call?.reason ?? "", /compile/);
      assert.equal((await app.app.service.listRuns({ flow: "broken" })).length, 0);
    });
  });
}
