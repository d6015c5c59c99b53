/**
 * The corpus: every invalid fixture states the exact diagnostics it must produce in
 * `# expect: line:column severity: message` lines at its top, and the examples must be
 * valid without a single warning.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseFlow } from "../../flows-schema/index.js";
import { yamlFiles } from "./repo-files.js";

function expectations(source: string): string[] {
  return source
    .split("\n")
    .filter((line) => line.startsWith("# expect: "))
    .map((line) => line.slice("# expect: ".length));
}

function rendered(source: string, file: string): string[] {
  return parseFlow(source, file).diagnostics.map(
    (diagnostic) =>
      `${diagnostic.line}:${diagnostic.column} ${diagnostic.severity}: ${diagnostic.message}`,
  );
}

describe("invalid flows", () => {
  const fixtures = yamlFiles("test/fixtures/flows/invalid");
  it("has a corpus of at least 40 fixtures", () => {
    assert.ok(fixtures.length >= 40, `only ${fixtures.length} fixtures`);
  });
  for (const [file, source] of fixtures) {
    it(file, () => {
      const expected = expectations(source);
      assert.ok(expected.length > 0, "the fixture states no `# expect:` line");
      const result = parseFlow(source, file);
      assert.equal(result.flow, undefined, "an invalid flow must not come back");
      assert.deepEqual(rendered(source, file), expected);
      for (const diagnostic of result.diagnostics) assert.equal(diagnostic.file, file);
    });
  }
});

describe("flows with warnings", () => {
  for (const [file, source] of yamlFiles("test/fixtures/flows/warnings")) {
    it(file, () => {
      const result = parseFlow(source, file);
      assert.ok(result.flow, "warnings alone keep the flow valid");
      assert.deepEqual(rendered(source, file), expectations(source));
      assert.ok(result.diagnostics.every((diagnostic) => diagnostic.severity === "warning"));
    });
  }
});

describe("examples", () => {
  const examples = yamlFiles("examples/flows");
  it("include the demo and the six scenario flows", () => {
    assert.ok(examples.length >= 7);
    assert.ok(examples.some(([file]) => file.endsWith("/demo.yml")));
  });
  for (const [file, source] of examples) {
    it(`${file} is valid with no warnings`, () => {
      const result = parseFlow(source, file);
      assert.deepEqual(result.diagnostics, []);
      assert.ok(result.flow);
      assert.ok(Object.keys(result.flow.steps).length >= 3);
    });
  }
  it("the demo uses only run and wait steps, one timed wait, and one retried step", () => {
    const [, source] = examples.find(([file]) => file.endsWith("/demo.yml")) ?? ["", ""];
    const flow = parseFlow(source, "demo.yml").flow;
    assert.ok(flow);
    const steps = Object.values(flow.steps);
    assert.ok(steps.every((step) => step.run !== undefined || step.wait !== undefined));
    assert.deepEqual(
      steps.filter((step) => step.wait).map((step) => step.wait?.for),
      ["2s"],
    );
    assert.equal(steps.filter((step) => step.retry !== undefined).length, 1);
  });
});
