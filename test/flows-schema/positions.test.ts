/** Positions inside strings, defaults applied, and the helpers behind the messages. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Diagnostic } from "../../flows-schema/index.js";
import {
  FlowValidationError,
  formatDuration,
  MAX_NESTING,
  parseDuration,
  parseFlow,
  parseFlowOrThrow,
} from "../../flows-schema/index.js";
import { findExcessiveNesting } from "../../flows-schema/limits.js";
import { closest } from "../../flows-schema/suggest.js";

const HEAD = "on: { manual: { inputs: { version: {} } } }\nsteps:\n  build:\n";

function only(source: string): Diagnostic {
  const { diagnostics } = parseFlow(source, "flow.yml");
  assert.equal(diagnostics.length, 1, JSON.stringify(diagnostics, null, 2));
  return diagnostics[0] as Diagnostic;
}

/** The text a diagnostic underlines (single-line ranges). */
function underlined(source: string, diagnostic: Diagnostic): string {
  const line = source.split("\n")[diagnostic.line - 1] ?? "";
  return line.slice(diagnostic.column - 1, diagnostic.endColumn - 1);
}

describe("positions of expression problems", () => {
  const cases: [string, string][] = [
    ["plain", "    run: echo ${{ inputs.nope }}\n"],
    ["single-quoted with '' escapes", "    run: 'echo ''x'' ${{ inputs.nope }}'\n"],
    ['double-quoted with \\" escapes', '    run: "echo \\"x\\" ${{ inputs.nope }}"\n'],
    ["literal block", "    run: |\n      echo one\n        echo ${{ inputs.nope }}\n"],
    ["folded block", "    run: >-\n      echo one\n      echo ${{ inputs.nope }}\n"],
  ];
  for (const [name, step] of cases) {
    it(`underlines the reference in a ${name} scalar`, () => {
      const source = HEAD + step;
      const diagnostic = only(source);
      assert.equal(underlined(source, diagnostic), "inputs.nope");
      assert.equal(diagnostic.message, "unknown input `nope`; declare it under `on.manual.inputs`");
    });
  }
  it("falls back to the scalar's start when the mapping cannot be exact (\\u escapes)", () => {
    const source = `${HEAD}    run: "\\u0041 \${{ inputs.nope }}"\n`;
    const diagnostic = only(source);
    assert.equal(diagnostic.line, 4);
    assert.equal(diagnostic.column, 10);
  });
  it("points at the column of a syntax error inside the expression", () => {
    const source = `${HEAD}    if: inputs.version == 'a' &&\n    run: make\n`;
    const diagnostic = only(source);
    assert.equal(diagnostic.line, 4);
    assert.match(diagnostic.message, /^invalid expression: /);
  });
});

describe("line endings", () => {
  it("reports the same positions for CRLF files", () => {
    const source = `${HEAD}    run: |\n      echo one\n      echo \${{ inputs.nope }}\n`;
    const lf = only(source);
    const crlf = only(source.replace(/\n/g, "\r\n"));
    assert.deepEqual(
      [crlf.line, crlf.column, crlf.endLine, crlf.endColumn],
      [lf.line, lf.column, lf.endLine, lf.endColumn],
    );
    assert.equal(lf.line, 6);
    assert.equal(underlined(source, lf), "inputs.nope");
  });
});

describe("unknown keys and missing keys", () => {
  it("points at the unknown key, not its value", () => {
    const source = "on: { manual: {} }\nsteps:\n  build:\n    run: make\n    neds: [x]\n";
    const diagnostic = only(source);
    assert.deepEqual([diagnostic.line, diagnostic.column, diagnostic.endColumn], [5, 5, 9]);
    assert.equal(diagnostic.message, "unknown key `neds` in `steps.build`; did you mean `needs`?");
    assert.deepEqual(diagnostic.path, ["steps", "build", "neds"]);
  });
  it("points at the parent's key for a missing required key", () => {
    const source = "on: { manual: {} }\nsteps:\n  call:\n    github: { with: {} }\n";
    const diagnostic = only(source);
    assert.deepEqual([diagnostic.line, diagnostic.column], [4, 5]);
    assert.equal(diagnostic.message, "`steps.call.github` is missing the required key `request`");
  });
  it("reports the second of two duplicate keys and names the first", () => {
    const source = "on: { manual: {} }\nsteps:\n  a: { run: x }\n  b: { run: y, run: z }\n";
    const diagnostic = only(source);
    assert.deepEqual([diagnostic.line, diagnostic.column], [4, 16]);
    assert.equal(
      diagnostic.message,
      "duplicate key `run`: it is already set at line 4; keep one of them",
    );
  });
});

describe("defaults", () => {
  it("applies the schema's defaults to a valid flow", () => {
    const source = "on: { manual: { inputs: { x: {} } } }\nsteps:\n  ok: { approval: {} }\n";
    const { flow, diagnostics } = parseFlow(source, "flow.yml");
    assert.deepEqual(diagnostics, []);
    assert.deepEqual(flow?.on?.manual?.inputs.x, { type: "string", required: false });
    assert.equal(flow?.steps.ok?.approval?.required, 1);
    assert.deepEqual(flow?.steps.ok?.approval?.via, ["check-run", "comment", "cli"]);
  });
});

describe("helpers", () => {
  it("parses and formats durations", () => {
    assert.equal(parseDuration("1h30m"), 5_400_000);
    assert.equal(parseDuration("250ms"), 250);
    assert.equal(parseDuration("10 minutes"), undefined);
    assert.equal(formatDuration(90_061_000), "1d1h1m1s");
  });
  it("suggests near names, swaps included", () => {
    assert.equal(closest("biuld", ["build", "test"]), "build");
    assert.equal(closest("runs_on", ["run", "runs-on"]), "runs-on");
    assert.equal(closest("zzz", ["build"]), undefined);
  });
  it("estimates nesting without parsing", () => {
    assert.equal(findExcessiveNesting("a:\n  b:\n    c: [1, {d: 2}]\n", MAX_NESTING), undefined);
    assert.notEqual(findExcessiveNesting("[".repeat(MAX_NESTING + 1), MAX_NESTING), undefined);
    assert.notEqual(
      findExcessiveNesting("- ".repeat(MAX_NESTING + 1) + "x", MAX_NESTING),
      undefined,
    );
  });
});

describe("parseFlowOrThrow", () => {
  it("returns the flow when it is valid", () => {
    assert.equal(parseFlowOrThrow("steps:\n  a: { run: x }\n", "ok.yml").steps.a?.run, "x");
  });
  it("throws a FlowValidationError with the first error's position", () => {
    const source = "on: { manual: {} }\nsteps:\n  a: { run: x, needs: [b, c] }\n";
    assert.throws(
      () => parseFlowOrThrow(source, "bad.yml"),
      (error: unknown) => {
        assert.ok(error instanceof FlowValidationError);
        assert.deepEqual([error.file, error.line, error.column], ["bad.yml", 3, 24]);
        assert.equal(error.diagnostics.length, 2);
        assert.equal(
          error.message,
          "bad.yml:3:24: step `a` needs `b`, which is not a step of this flow (and 1 more); run `baton validate bad.yml` for every problem",
        );
        return true;
      },
    );
  });
});
