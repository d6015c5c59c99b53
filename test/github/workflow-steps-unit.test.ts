/** The pure pieces of `workflow` steps: step tokens and reading workflow files. */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, test } from "node:test";
import {
  attemptKeyOf,
  findStepTokens,
  signStepToken,
  verifyStepToken,
} from "../../app/github/workflows/step-token.js";
import {
  readWorkflowFile,
  WorkflowStepError,
  workflowTarget,
} from "../../app/github/workflows/workflow-file.js";

const claims = {
  url: "https://baton.example.com",
  run: "0190f7a4-0000-7000-8000-000000000001",
  step: "build",
  attempt: 2,
  exp: 2_000_000_000,
};

describe("step tokens", () => {
  const key = randomBytes(32);

  test("a token Baton signed verifies until it expires, and names its attempt", () => {
    const token = signStepToken(key, claims);
    assert.match(token, /^bst1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    const check = verifyStepToken(key, token, claims.exp * 1000 - 1);
    assert.deepEqual(check, { ok: true, claims });
    assert.equal(attemptKeyOf(claims), `${claims.run}/build/2`);
    const late = verifyStepToken(key, token, claims.exp * 1000);
    assert.equal(late.ok, false);
    assert.equal(!late.ok && late.reason, "expired");
  });

  test("another key's token, or changed claims, are forged; other strings are malformed", () => {
    const foreign = signStepToken(randomBytes(32), claims);
    const check = verifyStepToken(key, foreign, 0);
    assert.equal(!check.ok && check.reason, "forged");
    // Claims for another attempt with the original signature.
    const [prefix, , signature] = signStepToken(key, claims).split(".");
    const body = Buffer.from(JSON.stringify({ ...claims, attempt: 3 })).toString("base64url");
    const tampered = verifyStepToken(key, `${prefix}.${body}.${signature}`, 0);
    assert.equal(!tampered.ok && tampered.reason, "forged");
    for (const junk of ["", "bst1.", "bst1.e30.x", "ghp_abc", "bst1.!!!.sig", "bst2.e30.e30"]) {
      const result = verifyStepToken(key, junk, 0);
      assert.equal(!result.ok && result.reason, "malformed", junk);
    }
  });

  test("tokens are found in a workflow run's title", () => {
    const token = signStepToken(key, claims);
    assert.deepEqual(findStepTokens(`Build abc123 ${token}`), [token]);
    assert.deepEqual(findStepTokens("Build abc123"), []);
  });
});

describe("workflow files", () => {
  test("where a step's workflow is", () => {
    assert.deepEqual(workflowTarget("build.yml", "acme/app"), {
      repository: "acme/app",
      path: ".github/workflows/build.yml",
    });
    assert.deepEqual(workflowTarget(".github/workflows/b.yaml", "acme/app"), {
      repository: "acme/app",
      path: ".github/workflows/b.yaml",
    });
    assert.deepEqual(workflowTarget("acme/infra/.github/workflows/deploy.yml", "acme/app"), {
      repository: "acme/infra",
      path: ".github/workflows/deploy.yml",
    });
    for (const bad of [
      "",
      "build",
      "acme/infra/deploy.yml",
      "../x.yml",
      "a/b/c/.github/workflows/x.yml",
    ])
      assert.throws(() => workflowTarget(bad, "acme/app"), WorkflowStepError, bad);
  });

  test("the dispatch trigger in each of its YAML forms, its inputs and run-name", () => {
    const mapped = readWorkflowFile(
      `name: Build
run-name: "Build \${{ inputs.sha }} \${{ inputs.baton }}"
on:
  push: {}
  workflow_dispatch:
    inputs:
      sha: { required: true }
      level: { required: true, default: "1" }
      baton: { required: false }
jobs: {}
`,
      "build.yml",
    );
    assert.equal(mapped.dispatchable, true);
    assert.deepEqual([...mapped.inputs.keys()], ["sha", "level", "baton"]);
    assert.deepEqual(mapped.inputs.get("level"), { required: true, hasDefault: true });
    assert.equal(mapped.runNameCarriesToken, true);
    assert.equal(readWorkflowFile("on: workflow_dispatch\n", "x").dispatchable, true);
    assert.equal(readWorkflowFile("on: [push, workflow_dispatch]\n", "x").dispatchable, true);
    const push = readWorkflowFile("on: push\nrun-name: Build\n", "x");
    assert.equal(push.dispatchable, false);
    assert.equal(push.runNameCarriesToken, false);
    assert.throws(() => readWorkflowFile("on: [", "x.yml"), /x\.yml is not valid YAML/);
  });
});
