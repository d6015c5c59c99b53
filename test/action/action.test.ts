/**
 * The bundled action (action/dist/index.js) run as a job would run it, against a real HTTP
 * server playing Baton that checks each request's method, path, Authorization and body.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, test } from "node:test";
import type { ActionResult } from "./run-action.js";
import { runAction } from "./run-action.js";
import { ScriptedBaton, stepToken } from "./scripted-baton.js";

const RUN_ID = "5b0c2f4e-8d1a-4c55-9a3e-0f2b7c9d1e6a";
const GITHUB_TOKEN = "ghp_exampleUserToken123";

let baton: ScriptedBaton;
beforeEach(async () => {
  baton = await ScriptedBaton.start();
});
afterEach(async () => {
  await baton.close();
});

const tokenFor = (overrides: { exp?: number; run?: string } = {}) =>
  stepToken({ url: baton.url, run: RUN_ID, step: "build", attempt: 2, ...overrides });

/** The lines the action turned into annotations with `::error::`. */
const errorsOf = (result: ActionResult) =>
  result.stdout
    .split("\n")
    .filter((line) => line.startsWith("::error::"))
    .map((line) => line.slice("::error::".length));

function assertFailed(result: ActionResult, ...fragments: string[]): void {
  assert.equal(result.code, 1, `expected exit code 1:\n${result.stdout}${result.stderr}`);
  const [error, ...more] = errorsOf(result);
  assert.ok(error !== undefined, `no ::error:: in:\n${result.stdout}`);
  assert.deepEqual(more, []);
  for (const fragment of fragments)
    assert.ok(error.includes(fragment), `'${fragment}' is not in the error: ${error}`);
}

function assertSucceeded(result: ActionResult): void {
  assert.equal(result.code, 0, `expected success:\n${result.stdout}${result.stderr}`);
  assert.deepEqual(errorsOf(result), []);
}

/** A token may reach stdout only in the command that masks it. */
function assertMasked(result: ActionResult, secret: string): void {
  const lines = `${result.stdout}\n${result.stderr}`.split("\n").filter((l) => l.includes(secret));
  assert.deepEqual(lines, [`::add-mask::${secret}`]);
}

const runView = (status: string, outputs: Record<string, string> = {}, reason?: string) => ({
  id: RUN_ID,
  repository: "octo-org/app",
  flow: "release",
  number: 12,
  state: { status, outputs, meta: { id: RUN_ID, number: 12 }, ...(reason ? { reason } : {}) },
  events: [],
});

const reported = (count: number) => ({
  status: 200,
  body: { run: RUN_ID, step: "build", attempt: 2, outputs: count },
});

describe("mode: outputs", () => {
  test("reports a JSON object, with the token from the workflow_dispatch event's baton input", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1.2.3", count: "3", notes: "line 1\nline 2" } },
      answer: reported(3),
    });
    const result = await runAction({
      inputs: {
        mode: "outputs",
        outputs: JSON.stringify({ version: "1.2.3", count: 3, notes: "line 1\nline 2" }),
      },
      event: { inputs: { baton: token } },
    });
    assertSucceeded(result);
    assertMasked(result, token);
    assert.match(result.stdout, /Reported 3 output\(s\) to Baton .* step build, attempt 2/);
    baton.assertDone();
  });

  test("reports name=value lines, with the token from step-token", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1.2.3", query: "a=b&c=d", empty: "" } },
      answer: reported(3),
    });
    const result = await runAction({
      inputs: {
        mode: "outputs",
        "step-token": token,
        outputs: "version=1.2.3\n\nquery=a=b&c=d\nempty=\n",
      },
    });
    assertSucceeded(result);
    baton.assertDone();
  });

  test("reports a JSON file named by outputs-file, merged with outputs", async () => {
    const token = tokenFor();
    const workspace = await mkdtemp(join(tmpdir(), "baton-workspace-"));
    try {
      await writeFile(join(workspace, "out.json"), JSON.stringify({ image: "app@sha256:abc" }));
      baton.expect({
        method: "POST",
        path: "/api/steps/outputs",
        authorization: `Bearer ${token}`,
        body: { outputs: { image: "app@sha256:abc", version: "2" } },
        answer: reported(2),
      });
      const result = await runAction({
        inputs: { mode: "outputs", "outputs-file": "out.json", outputs: "version=2" },
        event: { inputs: { baton: token } },
        cwd: workspace,
      });
      assertSucceeded(result);
      baton.assertDone();
    } finally {
      await rm(workspace, { recursive: true, force: true });
    }
  });

  test("401 with an expired token: says when it expired and to raise the step's timeout", async () => {
    const exp = Math.floor(Date.now() / 1000) - 60;
    const token = tokenFor({ exp });
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1" } },
      answer: { status: 401, body: { error: { code: "unauthorized", message: "token expired" } } },
    });
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "version=1", "step-token": token },
    });
    assertFailed(
      result,
      "Baton answered 401 (token expired)",
      `the step token expired at ${new Date(exp * 1000).toISOString()}`,
      "Raise the step's `timeout`",
    );
    assertMasked(result, token);
    baton.assertDone();
  });

  test("401 with a live token: says to pass the workflow's baton input unchanged", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1" } },
      answer: { status: 401, body: { error: { code: "unauthorized", message: "bad signature" } } },
    });
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "version=1" },
      event: { inputs: { baton: token } },
    });
    assertFailed(
      result,
      "Baton answered 401 (bad signature)",
      "Pass `step-token: ${{ inputs.baton }}` or declare the `baton` workflow_dispatch input",
    );
    baton.assertDone();
  });

  test("409: names the replay and tells to report once", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1" } },
      answer: {
        status: 409,
        body: { error: { code: "conflict", message: "outputs already reported" } },
      },
    });
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "version=1", "step-token": token },
    });
    assertFailed(result, "Baton answered 409 (outputs already reported)", "a replay", "single");
    baton.assertDone();
  });

  test("a 503 is retried, then the report succeeds", async () => {
    const token = tokenFor();
    const request = {
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1" } },
    } as const;
    baton.expect(
      {
        ...request,
        answer: { status: 503, body: { error: { code: "unavailable", message: "restarting" } } },
      },
      { ...request, answer: reported(1) },
    );
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "version=1", "step-token": token },
    });
    assertSucceeded(result);
    assert.match(result.stdout, /::warning::POST .* answered 503; retrying in 1s/);
    baton.assertDone();
  });

  test("a 400 is not retried", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: "/api/steps/outputs",
      authorization: `Bearer ${token}`,
      body: { outputs: { version: "1" } },
      answer: { status: 400, body: { error: { code: "bad_request", message: "bad outputs" } } },
    });
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "version=1", "step-token": token },
    });
    assertFailed(result, "Baton answered 400 (bad outputs)");
    baton.assertDone();
  });
});

describe("mode: signal", () => {
  test("a step token signals its own run", async () => {
    const token = tokenFor();
    baton.expect({
      method: "POST",
      path: `/api/runs/${RUN_ID}/signals/deploy-approved`,
      authorization: `Bearer ${token}`,
      body: { payload: { ok: true } },
      answer: { status: 200, body: { ok: true } },
    });
    const result = await runAction({
      inputs: { mode: "signal", signal: "deploy-approved", payload: '{"ok": true}' },
      event: { inputs: { baton: token } },
    });
    assertSucceeded(result);
    assert.match(result.stdout, new RegExp(`Sent signal 'deploy-approved' to Baton run ${RUN_ID}`));
    baton.assertDone();
  });

  test("a GitHub token signals any run, by ref, with a null payload by default", async () => {
    baton.expect({
      method: "POST",
      path: "/api/runs/release%2312/signals/go",
      authorization: `Bearer ${GITHUB_TOKEN}`,
      body: { payload: null },
      answer: { status: 200, body: { ok: true } },
    });
    const result = await runAction({
      inputs: { mode: "signal", signal: "go", run: "release#12", "github-token": GITHUB_TOKEN },
      env: { BATON_URL: baton.url },
    });
    assertSucceeded(result);
    assertMasked(result, GITHUB_TOKEN);
    baton.assertDone();
  });

  test("without a token, the job's Actions OIDC token (id-token: write) for Baton's URL signals", async () => {
    const idToken = "eyJhbGciOiJSUzI1NiJ9.eyJyZXBvc2l0b3J5Ijoib2N0by1vcmcvYXBwIn0.c2ln";
    baton.expect(
      {
        method: "GET",
        path: `/oidc?api-version=2.0&audience=${encodeURIComponent(baton.url)}`,
        authorization: "Bearer job-request-token",
        answer: { status: 200, body: { value: idToken } },
      },
      {
        method: "POST",
        path: "/api/runs/release%2312/signals/go",
        authorization: `Bearer ${idToken}`,
        body: { payload: null },
        answer: { status: 200, body: { ok: true } },
      },
    );
    const result = await runAction({
      inputs: { mode: "signal", signal: "go", run: "release#12", url: baton.url },
      env: {
        ACTIONS_ID_TOKEN_REQUEST_URL: `${baton.url}/oidc?api-version=2.0`,
        ACTIONS_ID_TOKEN_REQUEST_TOKEN: "job-request-token",
      },
    });
    assertSucceeded(result);
    assertMasked(result, idToken);
    baton.assertDone();
  });

  test("a step token is refused for another run before any request", async () => {
    const result = await runAction({
      inputs: { mode: "signal", signal: "go", run: "release#12" },
      event: { inputs: { baton: tokenFor() } },
    });
    assertFailed(result, `A step token signals only its own run (${RUN_ID})`, "`github-token`");
    baton.assertDone();
  });
});

describe("mode: start", () => {
  const started = {
    method: "POST",
    path: "/api/repos/octo-org/app/flows/release/runs",
    authorization: `Bearer ${GITHUB_TOKEN}`,
    body: { inputs: { version: "1.2" } },
    answer: {
      status: 201,
      body: { id: RUN_ID, number: 12, flow: "release", repository: "octo-org/app" },
    },
  } as const;
  const read = (body: unknown) =>
    ({
      method: "GET",
      path: `/api/runs/${RUN_ID}`,
      authorization: `Bearer ${GITHUB_TOKEN}`,
      answer: { status: 200, body },
    }) as const;
  const startInputs = {
    mode: "start",
    flow: "release",
    inputs: '{"version": "1.2"}',
    "github-token": GITHUB_TOKEN,
  };

  test("without wait: outputs the run's id, status and url", async () => {
    baton.expect(started, read(runView("running")));
    const result = await runAction({ inputs: startInputs, env: { BATON_URL: baton.url } });
    assertSucceeded(result);
    assert.deepEqual(result.outputs, {
      "run-id": RUN_ID,
      status: "running",
      url: `${baton.url}/api/runs/${RUN_ID}`,
    });
    baton.assertDone();
  });

  test("with wait: polls until success and exposes every output of the run", async () => {
    const outputs = { artifact: "app.tar", notes: "first\nsecond" };
    baton.expect(
      started,
      read(runView("queued")),
      read(runView("running")),
      read(runView("success", outputs)),
    );
    const result = await runAction({
      inputs: { ...startInputs, url: baton.url, wait: "true", "poll-interval": "10ms" },
    });
    assertSucceeded(result);
    assert.deepEqual(result.outputs, {
      "run-id": RUN_ID,
      status: "success",
      url: `${baton.url}/api/runs/${RUN_ID}`,
      ...outputs,
      outputs: JSON.stringify(outputs),
    });
    baton.assertDone();
  });

  test("with wait: fails when the run fails, with its reason", async () => {
    baton.expect(
      started,
      read(runView("running")),
      read(runView("failure", {}, "step build failed: exit code 2")),
    );
    const result = await runAction({
      inputs: { ...startInputs, url: baton.url, wait: "true", "poll-interval": "10ms" },
    });
    assertFailed(result, `Baton run ${RUN_ID} ended failure: step build failed: exit code 2`);
    assert.equal(result.outputs.status, "failure");
    baton.assertDone();
  });

  test("with wait: fails when wait-timeout passes first", async () => {
    // The poll sleeps until the deadline at most, so exactly one poll follows the start.
    baton.expect(started, read(runView("running")), read(runView("running")));
    const result = await runAction({
      inputs: {
        ...startInputs,
        url: baton.url,
        wait: "true",
        "wait-timeout": "300ms",
        "poll-interval": "1s",
      },
    });
    assertFailed(result, `Baton run ${RUN_ID} is still running after 300ms`, "`wait-timeout`");
    baton.assertDone();
  });

  test("401: says the GitHub token must be a user token or PAT", async () => {
    baton.expect({
      ...started,
      answer: {
        status: 401,
        body: { error: { code: "unauthorized", message: "Bad credentials" } },
      },
    });
    const result = await runAction({ inputs: { ...startInputs, url: baton.url } });
    assertFailed(result, "Baton answered 401 (Bad credentials)", "GitHub user token or a PAT");
    baton.assertDone();
  });
});

describe("bad input fails before any request", () => {
  const cases: Array<[string, Record<string, string>, string]> = [
    ["mode missing", { outputs: "a=1" }, "`mode` is required"],
    [
      "mode unknown",
      { mode: "publish" },
      "`mode` must be outputs, signal or start (got 'publish')",
    ],
    ["outputs not JSON", { mode: "outputs", outputs: '{"a": 1' }, "`outputs` is not valid JSON"],
    ["outputs line without =", { mode: "outputs", outputs: "a=1\nb" }, "Line 2 of `outputs`"],
    ["an invalid output name", { mode: "outputs", outputs: "1a=x" }, "Output name '1a'"],
    ["no outputs", { mode: "outputs" }, "`mode: outputs` needs `outputs`"],
    [
      "start without an identity",
      { mode: "start", flow: "release" },
      "give the job `permissions: { id-token: write }`",
    ],
    ["a bad duration", { mode: "start", flow: "f", "wait-timeout": "soon" }, "`wait-timeout`"],
    ["signal without signal", { mode: "signal" }, "`signal` is required"],
  ];
  for (const [name, inputs, message] of cases)
    test(name, async () => {
      const result = await runAction({
        inputs: { url: baton.url, ...inputs },
        event: { inputs: { baton: tokenFor() } },
      });
      assertFailed(result, message);
      assert.deepEqual(baton.received, []);
    });

  test("no step token anywhere: says to declare the baton input", async () => {
    const result = await runAction({ inputs: { mode: "outputs", outputs: "a=1", url: baton.url } });
    assertFailed(result, "No Baton step token", "inputs: baton: { required: false }");
    assert.deepEqual(baton.received, []);
  });

  test("a step token that is not one", async () => {
    const result = await runAction({
      inputs: { mode: "outputs", outputs: "a=1", "step-token": "ghp_notastepToken" },
    });
    assertFailed(result, "is not a Baton step token");
    assertMasked(result, "ghp_notastepToken");
  });
});
