/**
 * `github` steps reach their own repository only, with least privilege (DESIGN.md rules
 * 11, 12), end to end: the app as `npm start` composes it, against the fake GitHub, which
 * enforces installation permissions and token scopes as GitHub does (a token names its
 * repositories and permissions; a route needs its permission, else 403; a token asking
 * more than the installation has is 422). Each hole of issue 12 has a test here, and the
 * documented examples' `github` steps run under the permissions they declare.
 */
import assert from "node:assert/strict";
import { once } from "node:events";
import { readFileSync, readdirSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { parse } from "yaml";
import type { RunningApp } from "../../app/server/start-app.js";
import { eventually } from "../github/check-runs-harness.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { FakeGitHub } from "../fake-github/server.js";
import { BATON_APP_PERMISSIONS } from "../fake-github/permissions.js";
import { startAppAgainst } from "../fake-github/start-app-against.js";

const SECRET = "github steps";
const REPO = "acme/widgets";
const OTHER = "acme/secret";
const ISSUE = 7;
const EXAMPLES = new URL("../../../examples/flows/", import.meta.url);

interface World {
  fake: FakeGitHub;
  app: RunningApp;
  testDb: TestDatabase;
  /** A host no request may reach: it counts what arrives. */
  attacker: { url: string; hits: string[]; server: Server };
}

async function startWorld(): Promise<World> {
  const testDb = await createTestDatabase("pglite");
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 } });
  const app = await startAppAgainst(fake, testDb.db, {
    secret: SECRET,
    parts: { checkRuns: { writeIntervalMs: 5 } },
  });
  await fake.install({
    installationId: 1,
    account: "acme",
    repositories: [
      { name: "widgets", files: { "README.md": "widgets\n" } },
      { name: "secret", files: { "README.md": "the other repository's secret\n" } },
    ],
  });
  fake.addIssue(REPO, ISSUE);
  fake.setRole(REPO, "ada", "write");
  const hits: string[] = [];
  const server = createServer((request, response) => {
    hits.push(
      `${request.method ?? ""} ${request.url ?? ""} ${request.headers.authorization ?? ""}`,
    );
    response.writeHead(200, { "content-type": "application/json" }).end("{}");
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  return { fake, app, testDb, attacker: { url: `http://127.0.0.1:${port}`, hits, server } };
}

/** Push flows to the default branch and wait for them to be live. */
async function pushFlows(fake: FakeGitHub, flows: Record<string, string | null>): Promise<void> {
  const files = Object.fromEntries(
    Object.entries(flows).map(([name, text]) => [`.github/flows/${name}.yml`, text]),
  );
  const pushed = await fake.push(REPO, { files });
  const check = await eventually("the baton / flows check", () => {
    const run = fake.checkRuns.find((c) => c.name === "baton / flows" && c.head_sha === pushed.sha);
    return run?.status === "completed" ? run : undefined;
  });
  assert.equal(check.conclusion, "success", check.output.summary ?? "");
}

/** `/baton run <flow> args` on the issue, then the run's finished steps from the store. */
async function runFlow(
  world: World,
  flow: string,
  args = "",
): Promise<{ conclusion: string | null; steps: Map<string, { result: string; reason: string }> }> {
  const { fake, testDb } = world;
  const before = fake.checkRuns.filter((c) => c.name === `baton / ${flow}`).length;
  await fake.comment(REPO, ISSUE, { user: "ada", body: `/baton run ${flow} ${args}`.trim() });
  const check = await eventually(`the ${flow} run to complete`, () => {
    const runs = fake.checkRuns.filter((c) => c.name === `baton / ${flow}`);
    const run = runs.length > before ? runs.at(-1) : undefined;
    return run?.status === "completed" ? run : undefined;
  });
  const rows = await testDb.db.query<{
    step: string;
    result: string | null;
    reason: string | null;
  }>(
    `SELECT s.step, s.result, s.reason FROM steps s JOIN runs r ON r.id = s.run_id
      WHERE r.repository = $1 AND r.flow = $2 AND r.number = (SELECT max(number) FROM runs WHERE repository = $1 AND flow = $2)`,
    [REPO, flow],
  );
  return {
    conclusion: check.conclusion,
    steps: new Map(
      rows.rows.map((row) => [row.step, { result: row.result ?? "", reason: row.reason ?? "" }]),
    ),
  };
}

/**
 * Requests to other repositories than the run's, except the app's own reading of every
 * installed repository's flows (the repository, its default branch, its tree) at install.
 */
function requestsElsewhere(fake: FakeGitHub): string[] {
  return fake.requests
    .map((r) => `${r.method} ${r.path}`)
    .filter(
      (r) => /\/repos\//.test(r) && !r.includes(`/repos/${REPO}/`) && !r.endsWith(`/repos/${REPO}`),
    )
    .filter(
      (r) =>
        !(
          r === `GET /repos/${OTHER}` ||
          r.startsWith(`GET /repos/${OTHER}/git/ref/`) ||
          r.startsWith(`GET /repos/${OTHER}/git/trees/`)
        ),
    );
}

describe("github steps reach their own repository only, with least privilege (app against the fake GitHub)", () => {
  let world: World;
  before(async () => {
    world = await startWorld();
  });
  after(async () => {
    await world.app.stop();
    await world.fake.stop();
    world.attacker.server.close();
    await world.testDb.drop();
  });

  test("a route that leaves /repos/{owner}/{repo} (`..`) is refused on the request's line, and nothing reaches the other repository", async () => {
    const { fake } = world;
    const flow = [
      "on: { manual: {} }",
      "permissions: read-all",
      "steps:",
      "  steal:",
      "    github:",
      "      request: GET /repos/{owner}/{repo}/../secret/contents/README.md",
      "",
    ].join("\n");
    const pushed = await fake.push(REPO, { files: { ".github/flows/steal.yml": flow } });
    const check = await eventually("the baton / flows check", () => {
      const run = fake.checkRuns.find(
        (c) => c.name === "baton / flows" && c.head_sha === pushed.sha,
      );
      return run?.status === "completed" ? run : undefined;
    });
    assert.equal(check.conclusion, "failure");
    const annotation = check.annotations.find((a) => a.path === ".github/flows/steal.yml");
    assert.equal(annotation?.start_line, 6, "on the line of `request:`");
    assert.match(String(annotation?.message), /no `\.` or `\.\.` segments/);
    assert.deepEqual(requestsElsewhere(fake), []);
    await pushFlows(fake, { steal: null });
    fake.assertNoUnexpectedRequests();
  });

  test("parameters are URL-encoded values, never path segments: `..`, `a/b` and `%2e%2e` stay in their segment or are refused", async () => {
    const { fake } = world;
    await pushFlows(fake, {
      probe: [
        "on:",
        "  manual:",
        "    inputs:",
        "      path: { type: string, required: true }",
        "      number: { type: string, default: '7' }",
        "permissions: { contents: read, issues: read }",
        "steps:",
        "  read:",
        "    github:",
        "      request: GET /repos/{owner}/{repo}/contents/{path}",
        "      with: { path: '${{ inputs.path }}' }",
        "  comments:",
        "    github:",
        "      request: GET /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "      with: { issue_number: '${{ inputs.number }}' }",
        "",
      ].join("\n"),
    });
    const escaping = await runFlow(world, "probe", "path=../../secret/contents/README.md");
    assert.equal(escaping.conclusion, "failure");
    assert.equal(escaping.steps.get("read")?.result, "failure");
    assert.match(escaping.steps.get("read")?.reason ?? "", /GitHub answered 404/);
    assert.ok(
      fake.requests.some(
        (r) => r.path === `/repos/${REPO}/contents/..%2F..%2Fsecret%2Fcontents%2FREADME.md`,
      ),
      "one segment of widgets' contents, which does not exist",
    );

    const dots = await runFlow(world, "probe", "path=README.md number=..");
    assert.equal(dots.steps.get("read")?.result, "success", "a plain path reads widgets' README");
    assert.equal(dots.steps.get("comments")?.result, "failure");
    assert.match(dots.steps.get("comments")?.reason ?? "", /`\{issue_number\}` is "\.\."/);
    assert.ok(!fake.requests.some((r) => r.path.endsWith("/issues/../comments")));

    const encoded = await runFlow(world, "probe", "path=%2e%2e/%2e%2e/secret");
    assert.equal(encoded.steps.get("read")?.result, "failure");
    assert.ok(
      fake.requests.some((r) => r.path.endsWith("/contents/%252e%252e%2F%252e%252e%2Fsecret")),
    );
    assert.deepEqual(requestsElsewhere(fake), [], "nothing reached acme/secret");
    fake.assertNoUnexpectedRequests();
  });

  test("url, baseUrl, headers, method and request in `with` are body data: the token goes to GitHub only", async () => {
    const { fake, attacker } = world;
    await pushFlows(fake, {
      options: [
        "on: { manual: {} }",
        "permissions: { issues: write }",
        "steps:",
        "  comment:",
        "    github:",
        "      request: POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        "      with:",
        `        issue_number: ${ISSUE}`,
        "        body: options are data",
        `        url: ${attacker.url}/repos/acme/secret/issues/1/comments`,
        `        baseUrl: ${attacker.url}`,
        "        headers: { authorization: token stolen }",
        "        method: DELETE",
        `        request: { fetch: null, hook: null }`,
        "",
      ].join("\n"),
    });
    const run = await runFlow(world, "options");
    assert.equal(run.conclusion, "success", run.steps.get("comment")?.reason);
    assert.deepEqual(attacker.hits, [], "no request reached the other host");
    const sent = fake.requests
      .filter((r) => r.method === "POST" && r.path === `/repos/${REPO}/issues/${ISSUE}/comments`)
      .at(-1);
    assert.equal((sent?.body as { baseUrl?: string }).baseUrl, attacker.url, "sent as a field");
    assert.equal((sent?.body as { method?: string }).method, "DELETE");
    assert.ok(fake.issueComments(REPO, ISSUE).some((c) => c.body === "options are data"));
    assert.deepEqual(requestsElsewhere(fake), []);
    fake.assertNoUnexpectedRequests();
  });

  test("each step's token covers the run's repository only, with the flow's permissions (default contents: read), asked of GitHub at mint time", async () => {
    const { fake } = world;
    await pushFlows(fake, {
      "no-permissions": [
        "on: { manual: {} }",
        "steps:",
        "  read:",
        "    github:",
        "      request: GET /repos/{owner}/{repo}/contents/{path}",
        "      with: { path: README.md }",
        "  comment:",
        "    needs: read",
        "    github:",
        "      request: POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        `      with: { issue_number: ${ISSUE}, body: not allowed }`,
        "",
      ].join("\n"),
      "too-much": [
        "on: { manual: {} }",
        "permissions: { statuses: write }",
        "steps:",
        "  status:",
        "    github:",
        "      request: POST /repos/{owner}/{repo}/statuses/{sha}",
        "      with: { sha: '${{ run.sha }}', state: success }",
        "",
      ].join("\n"),
    });
    const widgets = fake.repository(REPO).id;
    const minted = fake.issuedTokens.length;
    const run = await runFlow(world, "no-permissions");
    assert.equal(run.steps.get("read")?.result, "success");
    assert.equal(run.steps.get("comment")?.result, "failure");
    assert.match(
      run.steps.get("comment")?.reason ?? "",
      /GitHub answered 403: Resource not accessible by integration.*contents: read, metadata: read.*`permissions`/,
    );
    const stepTokens = fake.issuedTokens.slice(minted).filter((t) => t.repositoryIds !== undefined);
    assert.ok(stepTokens.length >= 1);
    for (const token of stepTokens) {
      assert.deepEqual(token.repositoryIds, [widgets], "one repository: the run's");
      assert.deepEqual(token.permissions, { contents: "read", metadata: "read" });
    }
    assert.ok(
      fake.permissionRefusals.some((r) => r.operationId === "issues/create-comment"),
      "GitHub (the fake) refused the comment for the token's permissions",
    );
    assert.ok(!fake.issueComments(REPO, ISSUE).some((c) => c.body === "not allowed"));

    // `statuses` is not among app.yml's permissions: GitHub refuses to mint (422).
    const refused = await runFlow(world, "too-much");
    assert.equal(refused.steps.get("status")?.result, "failure");
    assert.match(
      refused.steps.get("status")?.reason ?? "",
      /GitHub would not mint a token for acme\/widgets with metadata: read, statuses: write \(422: The permissions requested are not granted to this installation\./,
    );
    assert.deepEqual(fake.tokenRefusals.at(-1)?.requested, { metadata: "read", statuses: "write" });
    fake.assertNoUnexpectedRequests();
  });

  test("the documented examples' github steps run under the permissions they declare, which app.yml grants", async () => {
    const { fake } = world;
    fake.commit(REPO, { branch: "change", files: { "docs/new.md": "new\n" } });
    const pull = fake.addPullRequest(REPO, { number: 21, headBranch: "change", user: "ada" });
    const refusals = fake.permissionRefusals.length;
    const flows: Record<string, string> = {};
    const expected: { flow: string; step: string; request: string }[] = [];
    for (const file of readdirSync(EXAMPLES)
      .filter((name) => name.endsWith(".yml"))
      .sort()) {
      const example = parse(readFileSync(new URL(file, EXAMPLES), "utf8")) as {
        permissions?: unknown;
        steps: Record<string, { github?: { request: string; with?: Record<string, unknown> } }>;
      };
      const steps = Object.entries(example.steps).filter(([, step]) => step.github);
      if (steps.length === 0) continue;
      // Its declared permissions are within what the app asks for.
      for (const [scope, level] of Object.entries(example.permissions as Record<string, string>)) {
        const granted = BATON_APP_PERMISSIONS[scope.replace("-", "_")];
        assert.ok(
          granted === "write" || (granted === "read" && level === "read"),
          `${file} declares ${scope}: ${level}, which app.yml does not grant`,
        );
      }
      const name = `example-${file.replace(/\.yml$/, "")}`;
      const definition = {
        on: { manual: {} },
        permissions: example.permissions,
        steps: Object.fromEntries(
          steps.map(([id, step]) => {
            expected.push({ flow: name, step: id, request: step.github?.request ?? "" });
            return [
              id,
              {
                github: { request: step.github?.request, with: concrete(step.github?.with ?? {}) },
              },
            ];
          }),
        ),
      };
      flows[name] = JSON.stringify(definition);
    }
    assert.ok(expected.length >= 6, `only ${expected.length} github steps in the examples`);
    await pushFlows(fake, flows);
    for (const flow of Object.keys(flows)) {
      const run = await runFlow(world, flow);
      for (const { step } of expected.filter((e) => e.flow === flow))
        assert.equal(
          run.steps.get(step)?.result,
          "success",
          `${flow}.${step}: ${run.steps.get(step)?.reason ?? "not run"}`,
        );
    }
    assert.equal(
      fake.pullRequest(REPO, pull.number).merged,
      true,
      "code-ops merged the pull request",
    );
    assert.ok(
      fake.createdIssues.some((i) => i.labels.includes("data-alert")),
      "data-pipeline opened its alert",
    );
    assert.ok(fake.labels(REPO, ISSUE).includes("triaged"), "support-triage labelled the issue");
    assert.deepEqual(fake.permissionRefusals.slice(refusals), [], "no route was refused");
    fake.assertNoUnexpectedRequests();
  });
});

/** An example's `with` with its expressions replaced by values this world has. */
function concrete(values: Record<string, unknown>): Record<string, unknown> {
  const value = (key: string, given: unknown): unknown => {
    if (Array.isArray(given)) return given.map((item) => value(key, item));
    if (typeof given !== "string" || !given.includes("${{")) return given;
    // A pull request's number where the example names one (`steps.open-pr.outputs.pr`).
    if (key === "issue_number") return /\.pr\b|pull_request/.test(given) ? 21 : ISSUE;
    if (key === "pull_number") return 21;
    if (key === "labels") return "triaged";
    return `from the example (${key})`;
  };
  return Object.fromEntries(Object.entries(values).map(([key, given]) => [key, value(key, given)]));
}
