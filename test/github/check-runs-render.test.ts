/**
 * The check-run renderer, on run histories made by the real engine: status and
 * conclusion, the summary's tables, the buttons, GitHub's limits and escaping.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ApproverFacts, FlowDefinition } from "../../app/engine/index.js";
import {
  ACTION_IDS,
  CHECK_RUN_LIMITS,
  OUTPUT_VALUE_CHARS,
  cell,
  parseActionIdentifier,
  renderCheckRun,
} from "../../app/github/check-runs/render.js";
import type { RunDetails } from "../../app/runtime/service.js";
import type { FlowInput } from "../../flows-schema/schema.js";
import { META, TestRun, flow } from "../engine/helpers.js";

const WRITE: ApproverFacts = { permission: "write", teams: [], codeowner: false };

function details(run: TestRun, definition: FlowDefinition = run.flow): RunDetails {
  const state = run.last?.state;
  assert.ok(state, "decide was called");
  return {
    run: {
      id: META.id,
      flowVersionId: "version-1",
      repository: META.repository,
      flow: "release",
      number: META.number,
      status: state.status,
      actor: META.actor,
      triggerEvent: "push",
      inputs: {},
      state,
      lastSeq: run.history.length,
      createdAt: new Date(0),
      updatedAt: new Date(0),
      github: { installationId: 1, headSha: "a".repeat(40) },
    },
    state,
    steps: [],
    events: run.history,
    version: {
      id: "version-1",
      sourceKind: "repository",
      repository: META.repository,
      path: ".github/flows/release.yml",
      sha: "b".repeat(40),
      name: "release",
      definition,
      source: "",
      createdAt: new Date(0),
    },
  };
}

function started(input: FlowInput): TestRun {
  const run = new TestRun(flow(input));
  run.decide(0);
  return run;
}

/** The rows of the summary's first table (the steps), without header and separator. */
function stepRows(summary: string): string[] {
  const lines = summary.split("\n");
  const header = lines.findIndex((line) => line.startsWith("| Step |"));
  const rows: string[] = [];
  for (const line of lines.slice(header + 2)) {
    if (!line.startsWith("|")) break;
    rows.push(line);
  }
  return rows;
}

/** Cells of a table row, splitting on pipes that are not escaped. */
function cells(row: string): string[] {
  return row
    .slice(1, -1)
    .split(/(?<!\\)\|/)
    .map((c) => c.trim());
}

function assertWithinLimits(rendered: ReturnType<typeof renderCheckRun>): void {
  assert.ok(rendered.output.summary.length <= CHECK_RUN_LIMITS.summaryChars);
  assert.ok((rendered.output.text ?? "").length <= CHECK_RUN_LIMITS.textChars);
  assert.ok(rendered.actions.length <= CHECK_RUN_LIMITS.actions);
  for (const action of rendered.actions) {
    assert.ok(action.identifier.length <= 20, action.identifier);
    assert.ok(action.label.length <= 20, action.label);
    assert.ok(action.description.length <= 40, action.description);
  }
}

void describe("rendering a run as a check run", () => {
  void it("follows a run from in progress to success, with a row per step", () => {
    const run = started({
      name: "Release it",
      steps: { build: { run: "make" }, ship: { needs: "build", run: "ship" } },
    });
    let rendered = renderCheckRun(details(run));
    assert.equal(rendered.name, "baton / Release it");
    assert.equal(rendered.external_id, META.id);
    assert.equal(rendered.status, "in_progress");
    assert.equal(rendered.conclusion, undefined);
    assert.deepEqual(
      rendered.actions.map((a) => a.identifier),
      [ACTION_IDS.cancel],
    );
    assert.match(rendered.output.title, /running build/);

    run.finish("build", 1, "success", { outputs: { version: "1.2.3" } }, 1500).decide(1500);
    run.finish("ship", 1, "success", {}, 4000).decide(4000);
    rendered = renderCheckRun(details(run));
    assert.equal(rendered.status, "completed");
    assert.equal(rendered.conclusion, "success");
    assert.deepEqual(rendered.actions, []);
    assert.match(rendered.output.title, /succeeded in 4\.0s/);
    const rows = stepRows(rendered.output.summary).map(cells);
    assert.equal(rows.length, 2);
    assert.deepEqual(rows[0], ["`build`", "✅ success", "1.5s", "1", "", "version: 1.2.3"]);
    assert.deepEqual(rows[1]?.slice(0, 4), ["`ship`", "✅ success", "2.5s", "1"]);
    assertWithinLimits(rendered);
  });

  void it("uses the file name without a display name, and shows a failure with Retry", () => {
    const definition = flow({ steps: { build: { run: "make" } } });
    const run = new TestRun(definition);
    run.decide(0);
    run.finish("build", 1, "failure", { error: "exit 2", retryable: false }, 10).decide(10);
    const rendered = renderCheckRun(details(run));
    assert.equal(rendered.name, "baton / release");
    assert.equal(rendered.conclusion, "failure");
    assert.deepEqual(
      rendered.actions.map((a) => [a.label, a.identifier]),
      [["Retry", ACTION_IDS.retry]],
    );
    assert.match(stepRows(rendered.output.summary)[0] ?? "", /❌ failure: exit 2/);
  });

  void it("waits on people as action_required with Approve, Reject and Cancel", () => {
    const longStep = "approve-the-production-deployment-of-everything";
    const run = started({
      steps: { build: { run: "make" }, [longStep]: { needs: "build", approval: {} } },
    });
    run.finish("build", 1, "success", {}, 5).decide(5);
    const rendered = renderCheckRun(details(run));
    assert.equal(rendered.status, "completed");
    assert.equal(rendered.conclusion, "action_required");
    assert.deepEqual(
      rendered.actions.map((a) => a.label),
      ["Approve", "Reject", "Cancel"],
    );
    assert.deepEqual(parseActionIdentifier(rendered.actions[0]?.identifier ?? ""), {
      kind: "approve",
      stepIndex: 1,
    });
    assert.deepEqual(parseActionIdentifier(rendered.actions[1]?.identifier ?? ""), {
      kind: "reject",
      stepIndex: 1,
    });
    assert.equal(parseActionIdentifier("run-draft"), undefined);
    assert.match(rendered.output.title, /waiting for approve-the-production/);
    assert.match(rendered.output.summary, /### Approvals/);
    assertWithinLimits(rendered);
  });

  void it("is in progress, not action_required, while a step still runs beside a waiting one", () => {
    const run = started({ steps: { build: { run: "make" }, gate: { approval: {} } } });
    const rendered = renderCheckRun(details(run));
    assert.equal(rendered.status, "in_progress");
    assert.deepEqual(
      rendered.actions.map((a) => a.label),
      ["Cancel"],
    );
  });

  void it("shows a signal wait as action_required without approval buttons", () => {
    const run = started({ steps: { smoke: { wait: { signal: "smoke-passed" } } } });
    const rendered = renderCheckRun(details(run));
    assert.equal(rendered.conclusion, "action_required");
    assert.deepEqual(
      rendered.actions.map((a) => a.label),
      ["Cancel"],
    );
  });

  void it("lists who decided, how, when, and whether it counted or why not", () => {
    const run = started({ steps: { gate: { approval: { required: 1 } } } });
    run.add({
      type: "approval.submitted",
      at: 1000,
      step: "gate",
      user: "reader",
      decision: "approve",
      via: "check-run",
      facts: { ...WRITE, permission: "read" },
    });
    run.decide(1000);
    run.add({
      type: "approval.submitted",
      at: 2000,
      step: "gate",
      user: "alice",
      decision: "approve",
      via: "cli",
      comment: "ship | it\nnow",
      facts: WRITE,
    });
    run.decide(2000);
    const summary = renderCheckRun(details(run)).output.summary;
    const audit = summary.slice(summary.indexOf("### Audit trail"));
    const rows = audit
      .split("\n")
      .filter((line) => line.startsWith("| 1970"))
      .map(cells);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]?.[0], "1970-01-01T00:00:01Z");
    assert.equal(rows[0]?.[1], "@reader");
    assert.equal(rows[0]?.[3], "check-run (read permission)");
    assert.match(
      rows[0]?.[4] ?? "",
      /^refused: reader has read permission; this approval needs write$/,
    );
    assert.equal(rows[1]?.[1], "@alice");
    assert.match(rows[1]?.[2] ?? "", /ship \\\| it now/);
    assert.equal(rows[1]?.[3], "cli (write permission)");
    assert.equal(rows[1]?.[4], "counted");
  });

  void it("escapes user text in table cells and cuts long output values", () => {
    const run = started({ steps: { build: { run: "make" } } });
    const long = "x".repeat(5000);
    run
      .finish(
        "build",
        1,
        "success",
        {
          outputs: {
            tricky: "a | b\n| c | d |\r\n<img src=x onerror=alert(1)> [link](http://evil) @team",
            long,
          },
        },
        1,
      )
      .decide(1);
    const summary = renderCheckRun(details(run)).output.summary;
    const rows = stepRows(summary);
    assert.equal(rows.length, 1, "a newline in an output does not start a row");
    const row = cells(rows[0] ?? "");
    assert.equal(row.length, 6, "a pipe in an output does not add a cell");
    const outputs = row[5] ?? "";
    assert.ok(!outputs.includes("<img"), "HTML is escaped");
    assert.ok(!outputs.includes("[link](http"), "links are escaped");
    assert.ok(!/@team/.test(outputs), "mentions are broken");
    assert.ok(!outputs.includes("x".repeat(OUTPUT_VALUE_CHARS)), "a long value is cut");
    assert.ok(outputs.includes("x".repeat(OUTPUT_VALUE_CHARS - 10)), "but kept in part");
    assert.equal(cell("a|b"), "a\\|b");
  });

  void it("cuts a summary over 65,535 characters with a note pointing to the CLI", () => {
    const steps: FlowInput["steps"] = {};
    for (let i = 0; i < 400; i++) steps[`step-${i}`] = { run: `echo ${i}` };
    const run = started({ steps });
    const outputs: Record<string, string> = {};
    for (let o = 0; o < 5; o++) outputs[`out${o}`] = "v".repeat(150);
    for (let i = 0; i < 400; i++) run.finish(`step-${i}`, 1, "success", { outputs }, 1);
    run.decide(1);
    const rendered = renderCheckRun(details(run));
    const summary = rendered.output.summary;
    assert.equal(rendered.conclusion, "success");
    assert.ok(summary.length <= CHECK_RUN_LIMITS.summaryChars, `${summary.length} characters`);
    assert.ok(summary.length > CHECK_RUN_LIMITS.summaryChars - 1000, "the room is used");
    assert.match(summary, /\*\*Truncated:\*\*.*`baton show run-1`/);
    assert.ok(stepRows(summary).length < 400);
    assertWithinLimits(rendered);
  });

  void it("shows a run its concurrency group holds back as queued, with Cancel", () => {
    const run = new TestRun(flow({ steps: { build: { run: "make" } } }), { admit: false });
    run.decide(0);
    const rendered = renderCheckRun(details(run));
    assert.equal(rendered.status, "queued");
    assert.equal(rendered.conclusion, undefined);
    assert.deepEqual(
      rendered.actions.map((a) => a.label),
      ["Cancel"],
    );
  });

  void it("links a step to the page its executor reported", () => {
    const run = started({ steps: { build: { workflow: "build.yml" } } });
    run.add({
      type: "attempt.progress",
      at: 5,
      step: "build",
      attempt: 1,
      detail: "Actions run 42",
      url: "https://github.com/acme/app/actions/runs/42",
    });
    run.decide(5);
    const row = cells(stepRows(renderCheckRun(details(run)).output.summary)[0] ?? "");
    assert.equal(row[4], "[Actions run 42](https://github.com/acme/app/actions/runs/42)");
  });

  void it("puts the latest note in the text", () => {
    const run = started({ steps: { build: { run: "make" } } });
    const rendered = renderCheckRun(details(run), {
      note: "@bob may not cancel this run: GitHub reports read permission",
    });
    assert.match(rendered.output.text ?? "", /^> \*\*Note:\*\* @bob may not cancel/);
  });
});
