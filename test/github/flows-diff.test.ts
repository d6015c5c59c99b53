/**
 * The semantic diff between live flows and drafts (pure), the `baton / flows` rendering
 * within GitHub's limits, and `.github/baton.yml` validation.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import type { FlowDefinition } from "../../flows-schema/schema.js";
import { diffFlows, renderFlowsDiff } from "../../app/github/flows/flow-diff.js";
import type { LoadedFlows } from "../../app/github/flows/load-flows.js";
import {
  renderDraftCheck,
  renderLiveCheck,
  runDraftAction,
  toAnnotations,
  truncateSummary,
} from "../../app/github/flows/render-flows-check.js";
import { parseRepositorySettings } from "../../app/github/flows/repository-settings.js";

function flow(source: string): FlowDefinition {
  const parsed = parseFlow(source, "test.yml");
  assert.ok(parsed.flow, JSON.stringify(parsed.diagnostics));
  return parsed.flow;
}

const RELEASE = `
on:
  manual:
    inputs: { version: { required: true } }
  schedule:
    - cron: "0 9 * * 1"
steps:
  build:
    workflow: build.yml
  review:
    needs: build
    approval:
      approvers: { teams: [acme/release] }
      required: 1
  deploy:
    needs: review
    runs-on: [self-hosted, prod]
    run: ./deploy.sh
`;

const RELEASE_DRAFT = `
on:
  manual:
    inputs: { version: { required: true } }
  schedule:
    - cron: "0 10 * * 1"
  github:
    push: { branches: [main] }
steps:
  build:
    workflow: build.yml
    ref: release
    timeout: 10m
  review:
    needs: build
    approval:
      approvers: { teams: [acme/release], users: [mona] }
      required: 2
      self-approval: true
  deploy:
    needs: review
    runs-on: [self-hosted, staging]
    run: ./deploy.sh
  announce:
    needs: deploy
    github:
      request: POST /repos/{owner}/{repo}/issues/{issue_number}/comments
      with: { issue_number: 1, body: done }
`;

describe("diffFlows", () => {
  test("flows added and removed, and nothing for equal flows", () => {
    const a = flow("steps: { one: { run: echo } }");
    const b = flow("steps: { two: { run: echo } }");
    const diff = diffFlows({ same: a, gone: a }, { same: a, fresh: b });
    assert.deepEqual(diff, { added: ["fresh"], removed: ["gone"], changed: [] });
  });

  test("steps, triggers, approvals and permissions of a changed flow", () => {
    const diff = diffFlows({ release: flow(RELEASE) }, { release: flow(RELEASE_DRAFT) });
    assert.equal(diff.changed.length, 1);
    const change = diff.changed[0]!;
    assert.deepEqual(change.steps, {
      added: ["announce"],
      removed: [],
      changed: [
        { step: "build", keys: ["ref", "timeout"] },
        { step: "deploy", keys: ["runs-on"] },
        { step: "review", keys: ["approval"] },
      ],
    });
    assert.deepEqual(change.triggers, {
      added: ["github push", 'schedule "0 10 * * 1" (UTC)'],
      removed: ['schedule "0 9 * * 1" (UTC)'],
      changed: [],
    });
    assert.deepEqual(change.approvals, [
      { step: "review", kind: "changed", field: "approvers.users", before: "none", after: "mona" },
      { step: "review", kind: "changed", field: "required", before: "1", after: "2" },
      { step: "review", kind: "changed", field: "self-approval", before: "false", after: "true" },
    ]);
    assert.deepEqual(change.permissions, [
      {
        step: "announce",
        what: "github",
        after: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
      },
      { step: "build", what: "workflow", before: "build.yml", after: "build.yml@release" },
      {
        step: "deploy",
        what: "runs-on",
        before: "self-hosted, prod",
        after: "self-hosted, staging",
      },
    ]);
    assert.deepEqual(change.settings, []);
  });

  test("an approval step added or removed, a trigger's filters changed, top-level settings", () => {
    const before = flow(`
on: { github: { pull_request: { types: [opened] } } }
concurrency: deploy
steps: { gate: { approval: {} }, go: { run: echo } }`);
    const after = flow(`
on: { github: { pull_request: { types: [opened, synchronize] } } }
steps: { go: { run: echo }, ok: { approval: { approvers: { users: [a, b] }, required: 2 } } }`);
    const change = diffFlows({ f: before }, { f: after }).changed[0]!;
    assert.deepEqual(change.triggers, { added: [], removed: [], changed: ["github pull_request"] });
    assert.deepEqual(change.approvals, [
      {
        step: "gate",
        kind: "removed",
        policy: "1 of anyone; write permission; no self-approval",
      },
      {
        step: "ok",
        kind: "added",
        policy: "2 of users a, b; write permission; no self-approval",
      },
    ]);
    assert.deepEqual(change.settings, ["concurrency"]);
  });

  test("a change of the flow's permissions is shown, and a new flow's github token permissions are listed", () => {
    const before = flow(RELEASE_DRAFT);
    const after = flow(`permissions: { issues: write, contents: none }\n${RELEASE_DRAFT}`);
    const change = diffFlows({ release: before }, { release: after }).changed[0]!;
    assert.deepEqual(change.tokenPermissions, {
      before: "contents: read (default)",
      after: "issues: write",
    });
    assert.deepEqual(change.settings, [], "not also listed as a plain setting");
    const wider = flow(`permissions: write-all\n${RELEASE_DRAFT}`);
    const widened = diffFlows({ release: after }, { release: wider });
    const text = renderFlowsDiff(widened, { release: wider });
    assert.ok(
      text.includes("- ⚠️ Token permissions (`permissions`): `issues: write` → `write-all`"),
      text,
    );
    const fresh = renderFlowsDiff(diffFlows({}, { release: after }), { release: after });
    assert.ok(fresh.includes("- Token permissions: `issues: write`"), fresh);
    const same = flow(`permissions: { issues: write }\n${RELEASE_DRAFT}`);
    assert.equal(
      diffFlows({ release: after }, { release: same }).changed[0]?.tokenPermissions,
      undefined,
      "`contents: none` is what leaving contents out means: no change of permissions",
    );
  });

  test("the Markdown names every change", () => {
    const draft = { release: flow(RELEASE_DRAFT), fresh: flow("steps: { a: { run: echo } }") };
    const text = renderFlowsDiff(
      diffFlows({ release: flow(RELEASE), old: flow(RELEASE) }, draft),
      draft,
    );
    for (const expected of [
      "### `fresh`: new flow",
      "### `old`: removed",
      "### `release`: changed",
      "- Steps added: `announce`",
      "- Step `build` changed: `ref`, `timeout`",
      '- Triggers added: `github push`, `schedule "0 10 * * 1" (UTC)`',
      "- Approval `review`: required `1` → `2`",
      "- Approval `review`: self-approval `false` → `true`",
      "- ⚠️ `announce` github added: `POST /repos/{owner}/{repo}/issues/{issue_number}/comments`",
      "- ⚠️ `deploy` runs-on: `self-hosted, prod` → `self-hosted, staging`",
    ])
      assert.ok(text.includes(expected), `missing ${expected} in:\n${text}`);
  });
});

describe("the baton / flows check", () => {
  const broken = "steps:\n  a:\n    run: echo\n    needs: nope\n";
  const brokenParse = parseFlow(broken, ".github/flows/broken.yml");

  function loaded(files: LoadedFlows["files"]): LoadedFlows {
    return { repository: "acme/widgets", sha: "a".repeat(40), files, problems: [] };
  }

  test("annotations sit on the diagnostic's line and columns (end column inclusive)", () => {
    // Errors come first; the warning (no triggers) follows.
    const [annotation, warning] = toAnnotations(brokenParse.diagnostics);
    assert.ok(annotation && warning);
    assert.equal(warning.annotation_level, "warning");
    assert.deepEqual(
      {
        path: annotation.path,
        start_line: annotation.start_line,
        end_line: annotation.end_line,
        start_column: annotation.start_column,
        end_column: annotation.end_column,
        level: annotation.annotation_level,
      },
      {
        path: ".github/flows/broken.yml",
        start_line: 4,
        end_line: 4,
        start_column: 12, // `nope`: columns 12 to 15
        end_column: 15,
        level: "failure",
      },
    );
  });

  test("a live check says the last valid version stays live", () => {
    const check = renderLiveCheck(
      loaded([
        {
          name: "broken",
          path: ".github/flows/broken.yml",
          blobSha: "b",
          source: broken,
          diagnostics: brokenParse.diagnostics,
        },
      ]),
      { live: [], invalid: [{ flow: "broken", keptSha: "c".repeat(40) }], retired: ["old"] },
    );
    assert.equal(check.conclusion, "failure");
    assert.match(check.summary, /The last valid version \(from ccccccc\) stays live\./);
    assert.match(check.summary, /`old`: the file is gone/);
    assert.equal(check.annotations.length, brokenParse.diagnostics.length);
  });

  test("buttons fit GitHub's limits; a long flow name gets a numbered label", () => {
    assert.deepEqual(runDraftAction("release", 0), {
      label: "Run release",
      description: "Run the draft of release",
      identifier: "run-draft-0",
    });
    const long = runDraftAction("a-very-long-flow-name-indeed-and-more", 2);
    assert.equal(long.label, "Run draft 3");
    assert.ok(long.description.length <= 40);
    const check = renderDraftCheck({
      loaded: loaded([]),
      pullRequest: 5,
      diff: { added: ["a", "b", "c", "d"], removed: [], changed: [] },
      draft: {},
      invalid: [],
      runnable: ["a", "b", "c", "d"],
    });
    assert.equal(check.actions.length, 3);
    assert.equal(check.externalId, "baton-flows:pr:5");
    assert.match(check.summary, /`\/baton run <flow> --draft/);
  });

  test("a summary over 65,535 characters is cut with a note", () => {
    const text = truncateSummary("x".repeat(70_000));
    assert.equal([...text].length, 65_535);
    assert.match(text, /truncated/);
    assert.equal(truncateSummary("short"), "short");
  });
});

describe(".github/baton.yml", () => {
  test("defaults, a valid setting, and errors at their place", () => {
    assert.deepEqual(parseRepositorySettings("").settings, {
      drafts: { forks: false },
      workflows: { callers: [] },
    });
    assert.deepEqual(parseRepositorySettings("drafts: { forks: true }\n").settings, {
      drafts: { forks: true },
      workflows: { callers: [] },
    });
    assert.deepEqual(
      parseRepositorySettings("workflows: { callers: [acme/app, acme/*] }\n").settings?.workflows,
      { callers: ["acme/app", "acme/*"] },
    );
    const badCaller = parseRepositorySettings("workflows:\n  callers: [acme]\n");
    assert.deepEqual(
      badCaller.diagnostics.map((d) => [d.line, d.message]),
      [[2, "workflows.callers.0: owner/repo or owner/*"]],
    );
    const wrongType = parseRepositorySettings("drafts:\n  forks: yes please\n");
    assert.equal(wrongType.settings, undefined);
    assert.deepEqual(
      wrongType.diagnostics.map((d) => [d.line, d.column]),
      [[2, 10]],
    );
    const unknown = parseRepositorySettings("drafts:\n  fork: true\n");
    assert.match(unknown.diagnostics[0]?.message ?? "", /unknown key `fork`/);
    assert.deepEqual([unknown.diagnostics[0]?.line, unknown.diagnostics[0]?.column], [2, 3]);
  });

  test("broken or hostile files are diagnostics, never exceptions", () => {
    const syntax = parseRepositorySettings("drafts:\n  forks: [true\n");
    assert.equal(syntax.settings, undefined);
    assert.match(syntax.diagnostics[0]?.message ?? "", /^YAML syntax/);
    const deep = parseRepositorySettings(`${"[".repeat(200)}${"]".repeat(200)}\n`);
    assert.match(deep.diagnostics[0]?.message ?? "", /nested more than 64 levels deep/);
    const bomb = ["a: &a [x, x, x, x, x, x, x, x, x, x]"];
    for (let i = 0; i < 8; i++)
      bomb.push(
        `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(10)
          .fill(`*${String.fromCharCode(97 + i)}`)
          .join(", ")}]`,
      );
    const aliases = parseRepositorySettings(`${bomb.join("\n")}\n`);
    assert.equal(aliases.settings, undefined);
    assert.equal(aliases.diagnostics.length, 1);
    assert.match(aliases.diagnostics[0]?.message ?? "", /cannot be read/);
    const list = parseRepositorySettings("- drafts\n");
    assert.match(list.diagnostics[0]?.message ?? "", /must be a map/);
  });
});
