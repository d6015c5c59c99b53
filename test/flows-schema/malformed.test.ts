/**
 * Hostile input: every case must end in a diagnostic, quickly, never in an exception, a
 * stack overflow or a hang. Each test asserts the message it expects.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { ParseResult } from "../../flows-schema/index.js";
import {
  MAX_DIAGNOSTICS,
  MAX_NESTING,
  MAX_SOURCE_BYTES,
  MAX_STEPS,
  parseFlow,
} from "../../flows-schema/index.js";

/** Parses, asserting it took less than `ms` and returned no flow but at least one error. */
function parseQuickly(source: string, ms = 2_000): ParseResult & { message: string } {
  const started = performance.now();
  const result = parseFlow(source, "hostile.yml");
  const elapsed = performance.now() - started;
  assert.ok(elapsed < ms, `took ${Math.round(elapsed)} ms`);
  assert.equal(result.flow, undefined);
  const errors = result.diagnostics.filter((diagnostic) => diagnostic.severity === "error");
  assert.ok(errors.length >= 1);
  return { ...result, message: errors[0]?.message ?? "" };
}

describe("malformed input", () => {
  it("refuses a 10 MB file with its size", () => {
    const source = `steps:\n${"  # padding padding padding padding padding padding padding padding\n".repeat(150_000)}`;
    assert.ok(source.length > 10_000_000);
    const { message, diagnostics } = parseQuickly(source);
    assert.equal(
      message,
      `the file is ${source.length} bytes; a flow file may be at most ${MAX_SOURCE_BYTES} bytes (1 MiB)`,
    );
    assert.deepEqual([diagnostics[0]?.line, diagnostics[0]?.column], [1, 1]);
  });

  it("stops a billion-laughs alias bomb", () => {
    const levels = ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"];
    for (let level = 1; level < 9; level += 1) {
      const previous = String.fromCharCode(96 + level);
      const name = String.fromCharCode(97 + level);
      levels.push(`${name}: &${name} [${Array(10).fill(`*${previous}`).join(", ")}]`);
    }
    const { message, diagnostics } = parseQuickly(
      `${levels.join("\n")}\nsteps: { x: { run: "*i" } }\n`,
    );
    assert.equal(
      message,
      "aliases expand to too much data (more than 1000 expansions); write the values out instead",
    );
    assert.equal(diagnostics[0]?.line, 2);
  });

  it("still accepts an anchor reused by hundreds of steps", () => {
    const steps = Array.from({ length: 400 }, (_, index) =>
      index === 0
        ? "  s0: { run: x, retry: &retry { attempts: 3, delay: 10s } }"
        : `  s${index}: { run: x, retry: *retry }`,
    );
    const result = parseFlow(`on: { manual: {} }\nsteps:\n${steps.join("\n")}\n`, "reuse.yml");
    assert.deepEqual(result.diagnostics, []);
    assert.deepEqual(result.flow?.steps.s399?.retry, { attempts: 3, delay: "10s", backoff: 2 });
  });

  it("refuses a flow with too many steps before walking a 20,000-step needs chain", () => {
    const steps = Array.from({ length: 20_000 }, (_, index) =>
      index === 0 ? "  s0: { run: x }" : `  s${index}: { needs: s${index - 1}, run: x }`,
    );
    const source = `on: { manual: {} }\nsteps:\n${steps.join("\n")}\n`;
    assert.ok(source.length < MAX_SOURCE_BYTES);
    const { message, diagnostics } = parseQuickly(source, 20_000);
    assert.equal(
      message,
      `the flow has 20000 steps; a flow may have at most ${MAX_STEPS}: split it into sub-flows (\`flow\` steps)`,
    );
    assert.deepEqual([diagnostics[0]?.line, diagnostics[0]?.column], [2, 1]);
  });

  it("walks a needs chain of the maximum length without overflowing the stack", () => {
    const steps = Array.from({ length: MAX_STEPS }, (_, index) =>
      index === 0 ? "  s0: { if: false, run: x }" : `  s${index}: { needs: s${index - 1}, run: x }`,
    );
    const result = parseFlow(`on: { manual: {} }\nsteps:\n${steps.join("\n")}\n`, "chain.yml");
    // Every step never runs: a warning each, capped; warnings alone keep the flow.
    assert.ok(result.flow);
    assert.equal(result.diagnostics.length, MAX_DIAGNOSTICS + 1);
    assert.equal(
      result.diagnostics[1]?.message,
      "step `s1` never runs: it needs `s0`, which never runs; add `if: ${{ always() }}` to run it anyway, or remove the need",
    );
    assert.deepEqual(result.diagnostics[MAX_DIAGNOSTICS], {
      ...result.diagnostics[MAX_DIAGNOSTICS - 1],
      severity: "warning",
      message: `too many problems: ${MAX_STEPS - MAX_DIAGNOSTICS} more not shown; fix these first`,
      path: [],
    });
  });

  it("refuses deep flow nesting before the parser sees it", () => {
    const { message } = parseQuickly(`steps: ${"[".repeat(100_000)}`);
    assert.equal(
      message,
      `the YAML nests deeper than ${MAX_NESTING} levels here; flow files are never this deep`,
    );
  });

  it("refuses deep block nesting: nested lists on one line", () => {
    const { message } = parseQuickly(
      `steps:\n  x: ${"- ".repeat(100_000)}x\n`.replace("x: ", "x:\n    "),
    );
    assert.equal(
      message,
      `the YAML nests deeper than ${MAX_NESTING} levels here; flow files are never this deep`,
    );
  });

  it("refuses deep block nesting: indentation", () => {
    const lines = Array.from({ length: 200 }, (_, depth) => `${" ".repeat(depth)}k${depth}:`);
    const { message, diagnostics } = parseQuickly(lines.join("\n"));
    assert.equal(
      message,
      `the YAML nests deeper than ${MAX_NESTING} levels here; flow files are never this deep`,
    );
    assert.equal(diagnostics[0]?.line, MAX_NESTING + 1);
  });

  it("accepts nesting below the limit and reports the schema instead", () => {
    const lines = Array.from({ length: 30 }, (_, depth) => `${" ".repeat(depth)}k${depth}:`);
    const { diagnostics } = parseQuickly(lines.join("\n"));
    assert.deepEqual(
      diagnostics.map((diagnostic) => diagnostic.message),
      [
        "the flow is missing the required key `steps`",
        "unknown key `k0` in the flow; allowed here: $schema, name, description, on, concurrency, permissions, timeout, env, outputs, steps",
      ],
    );
  });

  it("refuses binary content with a NUL byte at its position", () => {
    const bytes = Array.from({ length: 4096 }, (_, index) =>
      String.fromCharCode((index * 7919) % 256),
    );
    const { message, diagnostics } = parseQuickly(`steps:\n${bytes.join("")}`);
    assert.equal(
      message,
      "the file is not text: it contains a NUL byte; flow files are UTF-8 YAML",
    );
    assert.equal(diagnostics[0]?.line, 2);
  });

  it("reports binary junk without NUL bytes as YAML or schema errors", () => {
    const junk = Array.from({ length: 4096 }, (_, index) =>
      String.fromCharCode(1 + ((index * 104_729) % 255)),
    ).join("");
    const { diagnostics } = parseQuickly(junk);
    assert.ok(diagnostics.length <= 101);
  });

  it("wants a map at the top: a list", () => {
    assert.equal(
      parseQuickly("- a\n- b\n").message,
      "a flow file must be a map of keys such as `on` and `steps`, not a list",
    );
  });

  it("wants a map at the top: a scalar", () => {
    assert.equal(
      parseQuickly("just some text\n").message,
      "a flow file must be a map of keys such as `on` and `steps`, not a single value",
    );
  });

  it("reports an empty file", () => {
    assert.equal(parseQuickly("").message, "the file is empty: a flow needs at least `steps`");
    assert.equal(
      parseQuickly("\n\n# nothing\n").message,
      "the file is empty: a flow needs at least `steps`",
    );
  });

  it("reports text that is not YAML", () => {
    const { message, diagnostics } = parseQuickly('{ "steps": [1, 2,, }\n');
    assert.match(message, /^invalid YAML: /);
    assert.equal(diagnostics[0]?.line, 1);
  });

  it("caps the number of diagnostics", () => {
    const keys = Array.from({ length: 300 }, (_, index) => `k${index}: 1`).join("\n");
    const { diagnostics } = parseQuickly(`${keys}\nsteps: {}\n`);
    assert.equal(diagnostics.length, 101);
    assert.match(diagnostics[100]?.message ?? "", /^too many problems: \d+ more not shown/);
  });

  it("reports keys that are maps", () => {
    assert.equal(
      parseQuickly("? [a, b]\n: 1\nsteps: {}\n").message,
      "keys must be plain names, not lists or maps",
    );
  });
});
