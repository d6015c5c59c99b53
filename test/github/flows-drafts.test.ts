/**
 * Drafts in pull requests, end to end against the fake GitHub: a pull request that
 * changes flows gets `baton / flows` on its head (annotations on the exact lines, sent 50
 * per request; a semantic diff against live; "Run draft" buttons); one that does not gets
 * nothing. A draft runs for a user with write permission (button or comment), is refused
 * with a comment for a read user and for a pull request from a fork, and bad inputs are
 * answered with the error.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sendFlowsCheck } from "../../app/github/flows/flows-check-run.js";
import { getRepository } from "../../app/store/repositories.js";
import { getFlowVersion } from "../../app/store/flow-versions.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { botComments, flowsChecks, startFlowsHarness, type FlowsHarness } from "./flows-harness.js";

const REPO = "acme/widgets";

const LIVE = `on:
  manual:
    inputs:
      version: { required: true }
steps:
  build:
    workflow: build.yml
  hold:
    needs: build
    wait: { signal: go }
`;

/** A semantic change: a new approval step, a trigger, another workflow ref, optional input. */
const DRAFT = `on:
  manual:
    inputs:
      version: { default: "0.0.0" }
  webhook: {}
steps:
  build:
    workflow: build.yml
    ref: release
  gate:
    approval:
      approvers: { users: [mona, lisa] }
      required: 2
  hold:
    needs: [build, gate]
    wait: { signal: go }
`;

/** A flow whose input is required: the button (no inputs) cannot start it. */
const NEEDS_INPUT = `on:
  manual:
    inputs:
      target: { required: true }
steps:
  hold:
    wait: { signal: go }
`;

/** 60 steps with an unknown key each: 60 errors, more than one request's 50 annotations. */
function manyErrors(): { source: string; line: number; column: number } {
  const lines = ["on: { manual: {} }", "steps:"];
  for (let i = 0; i < 60; i++) lines.push(`  s${i}: { wait: { signal: go }, bogus: 1 }`);
  const line = 3 + 7; // step s7
  return {
    source: `${lines.join("\n")}\n`,
    line,
    column: (lines[line - 1] ?? "").indexOf("bogus") + 1,
  };
}

interface RunRow {
  flow: string;
  actor: string;
  flow_version_id: string;
  pull_request: number | null;
  head_sha: string | null;
  inputs: Record<string, unknown>;
}

async function runsOf(h: FlowsHarness): Promise<RunRow[]> {
  const result = await h.store.query<RunRow>(
    "SELECT flow, actor, flow_version_id, pull_request, head_sha, inputs FROM runs WHERE repository = $1 ORDER BY created_at",
    [REPO],
  );
  return result.rows;
}

for (const backend of BACKENDS) {
  describe(`drafts in pull requests on ${backend}`, () => {
    let testDb: TestDatabase;
    let h: FlowsHarness;
    before(async () => {
      testDb = await createTestDatabase(backend);
      h = await startFlowsHarness(testDb.db);
      await h.fake.install({
        installationId: 3,
        account: "acme",
        repositories: [{ name: "widgets", files: { ".github/flows/release.yml": LIVE } }],
      });
      h.fake.setRole(REPO, "writer", "write");
      h.fake.setRole(REPO, "reader", "read");
      await h.drain();
    });
    after(async () => {
      await h.stop();
      await testDb.drop();
    });

    test("a broken flow is annotated on its exact lines, 50 annotations per request", async () => {
      const broken = manyErrors();
      await h.fake.openPullRequest(REPO, {
        number: 2,
        headBranch: "broken",
        user: "writer",
        files: { ".github/flows/many.yml": broken.source },
      });
      await h.drain();
      const head = h.fake.head(REPO, "broken");
      const [check] = flowsChecks(h.fake, head);
      assert.equal(check?.conclusion, "failure");
      assert.equal(check?.annotations.length, 60);
      const s7 = check?.annotations.find((a) => a.start_line === broken.line);
      assert.deepEqual(
        [s7?.path, s7?.start_column, s7?.annotation_level],
        [".github/flows/many.yml", broken.column, "failure"],
      );
      assert.match(String(s7?.message), /unknown key `bogus`/);
      const writes = h.fake.requests.filter(
        (r) =>
          (r.operationId === "checks/create" || r.operationId === "checks/update") &&
          r.status < 300,
      );
      assert.ok(writes.length >= 2, "the annotations took more than one request");
      assert.deepEqual(check?.actions, [], "an invalid draft cannot run");
      assert.match(check?.output.summary ?? "", /60 errors/);
      h.fake.assertNoUnexpectedRequests();
    });

    test("a changed flow gets a semantic diff and a Run draft button; an unrelated PR gets nothing", async () => {
      await h.fake.openPullRequest(REPO, {
        number: 3,
        headBranch: "draft",
        user: "writer",
        files: { ".github/flows/release.yml": DRAFT },
      });
      await h.fake.openPullRequest(REPO, {
        number: 4,
        headBranch: "docs",
        user: "writer",
        files: { "README.md": "docs only" },
      });
      await h.drain();
      const [check] = flowsChecks(h.fake, h.fake.head(REPO, "draft"));
      assert.equal(check?.conclusion, "success");
      const summary = check?.output.summary ?? "";
      for (const expected of [
        "### `release`: changed",
        "- Steps added: `gate`",
        "- Step `build` changed: `ref`",
        "- Step `hold` changed: `needs`",
        "- Triggers added: `webhook`",
        "- Triggers changed: `manual`",
        "- Approval `gate` added: 2 of users mona, lisa; write permission; no self-approval",
        "- ⚠️ `build` workflow: `build.yml` → `build.yml@release`",
      ])
        assert.ok(summary.includes(expected), `missing ${expected} in:\n${summary}`);
      assert.deepEqual(check?.actions, [
        {
          label: "Run release",
          description: "Run the draft of release",
          identifier: "run-draft-0",
        },
      ]);
      assert.equal(flowsChecks(h.fake, h.fake.head(REPO, "docs")).length, 0);
      h.fake.assertNoUnexpectedRequests();
    });

    test("a write user's button click runs the draft; a read user's is refused", async () => {
      const head = h.fake.head(REPO, "draft");
      const [check] = flowsChecks(h.fake, head);
      assert.ok(check);
      await h.fake.requestAction(REPO, check.id, { identifier: "run-draft-0", user: "reader" });
      await h.drain();
      assert.deepEqual(await runsOf(h), []);
      assert.match(
        botComments(h.fake).at(-1) ?? "",
        /@reader running a draft flow needs write permission on acme\/widgets, and GitHub says you have read permission/,
      );

      await h.fake.requestAction(REPO, check.id, { identifier: "run-draft-0", user: "writer" });
      await h.drain();
      const [run] = await runsOf(h);
      assert.ok(run);
      assert.deepEqual(
        [run.flow, run.actor, run.pull_request, run.head_sha, run.inputs],
        ["release", "writer", 3, head, { version: "0.0.0" }],
      );
      const version = await getFlowVersion(h.store, run.flow_version_id);
      assert.deepEqual(
        [version?.sha, version?.source],
        [head, DRAFT],
        "the draft, pinned to the head",
      );
      assert.match(
        botComments(h.fake).at(-1) ?? "",
        /@writer started `release#1`, a run of the draft of `release` at [0-9a-f]{7}/,
      );
      h.fake.assertNoUnexpectedRequests();
    });

    test("a /baton run --draft comment runs with its inputs; bad inputs are answered", async () => {
      await h.fake.comment(REPO, 3, {
        user: "writer",
        body: "Try it:\n/baton run release --draft version=2.0",
      });
      await h.drain();
      const runs = await runsOf(h);
      assert.equal(runs.length, 2);
      assert.deepEqual(runs[1]?.inputs, { version: "2.0" });
      assert.match(botComments(h.fake).at(-1) ?? "", /started `release#2`/);

      // A flow with a required input, run by the button (no inputs): the error, not a run.
      await h.fake.openPullRequest(REPO, {
        number: 6,
        headBranch: "needs-input",
        user: "writer",
        files: { ".github/flows/deploy.yml": NEEDS_INPUT },
      });
      await h.drain();
      const [check] = flowsChecks(h.fake, h.fake.head(REPO, "needs-input"));
      assert.ok(check);
      await h.fake.requestAction(REPO, check.id, { identifier: "run-draft-0", user: "writer" });
      await h.drain();
      assert.equal((await runsOf(h)).length, 2);
      const answer = botComments(h.fake).at(-1) ?? "";
      assert.match(answer, /the draft of `deploy` did not start/);
      assert.match(answer, /The inputs do not fit flow deploy/);
      assert.match(answer, /comment `\/baton run deploy --draft name=value …` instead/);
      h.fake.assertNoUnexpectedRequests();
    });

    test("a pull request from a fork does not run its draft, even for a write user", async () => {
      await h.fake.openPullRequest(REPO, {
        number: 5,
        headBranch: "fork-change",
        user: "stranger",
        fromFork: "stranger/widgets",
        files: { ".github/flows/release.yml": DRAFT.replace("0.0.0", "6.6.6") },
      });
      await h.drain();
      const before = (await runsOf(h)).length;
      await h.fake.comment(REPO, 5, { user: "writer", body: "/baton run release --draft" });
      await h.drain();
      assert.equal((await runsOf(h)).length, before);
      assert.match(
        botComments(h.fake).at(-1) ?? "",
        /draft flows of pull requests from forks do not run in acme\/widgets/,
      );
      h.fake.assertNoUnexpectedRequests();
    });

    test("allowing forks in .github/baton.yml shows on the pull request, and applies once live", async () => {
      const settings = "drafts:\n  forks: true\n";
      await h.fake.openPullRequest(REPO, {
        number: 7,
        headBranch: "allow-forks",
        user: "writer",
        files: { ".github/baton.yml": settings },
      });
      await h.drain();
      const [check] = flowsChecks(h.fake, h.fake.head(REPO, "allow-forks"));
      assert.match(check?.output.summary ?? "", /⚠️ `drafts.forks`: `false` → `true`/);

      await h.fake.push(REPO, { files: { ".github/baton.yml": settings } });
      await h.drain();
      assert.equal((await getRepository(h.store, REPO))?.settings.drafts.forks, true);
      const before = (await runsOf(h)).length;
      await h.fake.comment(REPO, 5, { user: "writer", body: "/baton run release --draft" });
      await h.drain();
      const runs = await runsOf(h);
      assert.equal(runs.length, before + 1);
      assert.deepEqual([runs.at(-1)?.pull_request, runs.at(-1)?.inputs], [5, { version: "6.6.6" }]);
      h.fake.assertNoUnexpectedRequests();
    });

    test("a branch behind the default branch that does not touch flows gets no check", async () => {
      // The branch starts here; then the default branch changes a flow, which goes live.
      h.fake.commit(REPO, { files: { "docs.md": "notes" }, branch: "behind" });
      await h.fake.push(REPO, {
        files: { ".github/flows/release.yml": LIVE.replace("signal: go", "signal: go-on") },
      });
      await h.drain();
      await h.fake.openPullRequest(REPO, { number: 8, headBranch: "behind", user: "writer" });
      await h.drain();
      assert.deepEqual(flowsChecks(h.fake, h.fake.head(REPO, "behind")), []);
      h.fake.assertNoUnexpectedRequests();
    });

    test("sending the same check twice leaves one check run with its annotations once", async () => {
      const sha = h.fake.head(REPO);
      const check = {
        headSha: sha,
        conclusion: "failure" as const,
        title: "1 error",
        summary: "Idempotent",
        annotations: Array.from({ length: 51 }, (_, i) => ({
          path: ".github/flows/x.yml",
          start_line: i + 1,
          end_line: i + 1,
          annotation_level: "failure" as const,
          message: `problem ${i}`,
        })),
        actions: [],
        externalId: "baton-flows",
      };
      const payload = { installationId: 3, repository: REPO, check };
      await sendFlowsCheck(h.app, payload);
      const afterFirst = structuredClone(flowsChecks(h.fake, sha));
      const checkWrites = () =>
        h.fake.requests.filter(
          (r) => r.operationId === "checks/create" || r.operationId === "checks/update",
        ).length;
      const writes = checkWrites();
      const shown = afterFirst.at(-1);
      assert.deepEqual([shown?.output.summary, shown?.annotations.length], ["Idempotent", 51]);
      await sendFlowsCheck(h.app, payload);
      assert.deepEqual(flowsChecks(h.fake, sha), afterFirst, "the second send changed nothing");
      assert.equal(checkWrites(), writes, "and wrote nothing");
      h.fake.assertNoUnexpectedRequests();
    });
  });
}
