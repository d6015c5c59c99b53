/**
 * Property tests: whatever the input (random text, random YAML, valid examples mutated by
 * deleting, duplicating and swapping lines and characters, or with junk inserted),
 * `parseFlow` returns, quickly, with diagnostics whose positions are inside the file, and
 * it returns a flow exactly when there is no error.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import fc from "fast-check";
import { parseFlow } from "../../flows-schema/index.js";
import { yamlFiles } from "./repo-files.js";

const examples = yamlFiles("examples/flows").map(([, source]) => source);
const RUNS = 400;
/**
 * A guard against hangs and blow-ups (a file taking seconds, like an alias bomb expanding),
 * not a speed assertion: typical files take a few ms, but a loaded 2-core CI machine can
 * stall any one call for hundreds. Speed is measured by `npm run bench`.
 */
const HANG_MS = 5_000;

function checkResult(source: string): void {
  const started = performance.now();
  const result = parseFlow(source, "fuzz.yml");
  const elapsed = performance.now() - started;
  assert.ok(elapsed < HANG_MS, `parseFlow took ${Math.round(elapsed)} ms: a hang or a blow-up`);
  const lines = source.split("\n").length;
  const hasError = result.diagnostics.some((diagnostic) => diagnostic.severity === "error");
  assert.equal(result.flow === undefined, hasError, "flow is present iff there is no error");
  for (const diagnostic of result.diagnostics) {
    assert.ok(
      diagnostic.line >= 1 && diagnostic.line <= lines + 1,
      `line ${diagnostic.line} of ${lines}`,
    );
    assert.ok(diagnostic.column >= 1, `column ${diagnostic.column}`);
    assert.ok(
      diagnostic.endLine > diagnostic.line ||
        (diagnostic.endLine === diagnostic.line && diagnostic.endColumn > diagnostic.column),
      `empty or reversed range ${JSON.stringify(diagnostic)}`,
    );
    assert.ok(diagnostic.endLine <= lines + 1);
    assert.ok(diagnostic.message.length > 0);
    assert.equal(diagnostic.file, "fuzz.yml");
  }
}

type Mutation = (lines: string[], random: number, other: number) => string[];

const mutations: Record<string, Mutation> = {
  deleteLine: (lines, at) => lines.filter((_, index) => index !== at % lines.length),
  duplicateLine: (lines, at) =>
    lines.flatMap((line, index) => (index === at % lines.length ? [line, line] : [line])),
  swapLines: (lines, a, b) => {
    const copy = [...lines];
    const i = a % copy.length;
    const j = b % copy.length;
    [copy[i], copy[j]] = [copy[j] ?? "", copy[i] ?? ""];
    return copy;
  },
  swapChars: (lines, a, b) => {
    const text = lines.join("\n");
    const i = a % text.length;
    const j = b % text.length;
    const chars = [...text];
    [chars[i], chars[j]] = [chars[j] ?? "", chars[i] ?? ""];
    return chars.join("").split("\n");
  },
  insertJunk: (lines, a, b) => {
    const text = lines.join("\n");
    const at = a % (text.length + 1);
    const junk = String.fromCharCode(b % 0x2fff, (b * 31) % 0xffff, (a * 17) % 128);
    return (text.slice(0, at) + junk + text.slice(at)).split("\n");
  },
  indentLine: (lines, at, by) =>
    lines.map((line, index) => (index === at % lines.length ? " ".repeat(by % 7) + line : line)),
  dedentLine: (lines, at) =>
    lines.map((line, index) => (index === at % lines.length ? line.trimStart() : line)),
};

const mutated = fc
  .tuple(
    fc.constantFrom(...examples),
    fc.array(fc.tuple(fc.constantFrom(...Object.keys(mutations)), fc.nat(), fc.nat()), {
      minLength: 1,
      maxLength: 6,
    }),
  )
  .map(([source, steps]) =>
    steps
      .reduce(
        (lines, [name, a, b]) => (mutations[name] ?? ((same) => same))(lines, a, b),
        source.split("\n"),
      )
      .join("\n"),
  );

const yamlish = fc
  .array(
    fc.oneof(
      fc.constantFrom(
        "steps:",
        "on:",
        "  a:",
        "    run: x",
        "    needs: [a, b]",
        "- ",
        "&x ",
        "*x",
        "[",
        "]",
        "{",
        "}",
        ": ",
        "'",
        '"',
        "|",
        ">",
        "${{",
        "}}",
        "#",
        "\n",
        "  ",
        "---",
        "? ",
        "!!str ",
      ),
      fc.string({ maxLength: 8 }),
    ),
    { maxLength: 60 },
  )
  .map((parts) => parts.join(""));

describe("parseFlow never throws and reports sane positions", () => {
  it("on mutated examples", () => {
    fc.assert(fc.property(mutated, checkResult), { numRuns: RUNS });
  });
  it("on random YAML-like text", () => {
    fc.assert(fc.property(yamlish, checkResult), { numRuns: RUNS });
  });
  it("on arbitrary strings, full Unicode included", () => {
    fc.assert(fc.property(fc.string({ unit: "binary", maxLength: 400 }), checkResult), {
      numRuns: RUNS,
    });
  });
  it("on arbitrary JSON values written as YAML flow text", () => {
    fc.assert(fc.property(fc.json({ maxDepth: 6 }), checkResult), { numRuns: RUNS });
  });
});
