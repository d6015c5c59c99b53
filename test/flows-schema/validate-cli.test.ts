/**
 * `baton validate`: run in-process with a fake terminal for the output format and exit
 * codes, and once as a real process against the examples.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { promisify } from "node:util";
import type { CliIo } from "../../app/cli/io.js";
import { main } from "../../app/cli/main.js";
import { validateCommand } from "../../app/cli/validate.js";
import { repoPath, REPO_ROOT } from "./repo-files.js";

function fakeIo(cwd: string): CliIo & { out: () => string; err: () => string } {
  let out = "";
  let err = "";
  return {
    stdout: { write: (text: string) => (out += text) },
    stderr: { write: (text: string) => (err += text) },
    env: {},
    cwd,
    out: () => out,
    err: () => err,
  };
}

const VALID = "on: { manual: {} }\nsteps:\n  build: { run: make }\n";
const INVALID = "on: { manual: {} }\nsteps:\n  build:\n    run: make\n    runs_on: [x]\n";
const WARNING = "steps:\n  build: { run: make }\n";

describe("baton validate", () => {
  let dir = "";
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "baton-validate-"));
    mkdirSync(join(dir, ".github", "flows"), { recursive: true });
    writeFileSync(join(dir, ".github", "flows", "good.yml"), VALID);
    writeFileSync(join(dir, ".github", "flows", "loose.yaml"), WARNING);
    writeFileSync(join(dir, ".github", "flows", "notes.txt"), "not a flow");
    writeFileSync(join(dir, "bad.yml"), INVALID);
    mkdirSync(join(dir, "empty"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("validates .github/flows by default and exits 0 with warnings", async () => {
    const io = fakeIo(dir);
    assert.equal(await validateCommand([], io), 0);
    assert.equal(
      io.out(),
      [
        ".github/flows/loose.yaml:1:1: warning: the flow has no triggers: it starts only with `baton run` or from a parent flow's `flow` step; add `on: { manual: {} }` to say so, or a trigger",
        " 1 | steps:",
        "   | ^^^^^",
        "2 flow files valid, 1 warning",
        "",
      ].join("\n"),
    );
    assert.equal(io.err(), "");
  });

  it("prints file:line:col, the source line and carets, then a summary; exits 1", async () => {
    const io = fakeIo(dir);
    assert.equal(await validateCommand(["bad.yml", ".github/flows/good.yml"], io), 1);
    assert.equal(
      io.out(),
      [
        "bad.yml:5:5: error: unknown key `runs_on` in `steps.build`; did you mean `runs-on`?",
        " 5 |     runs_on: [x]",
        "   |     ^^^^^^^",
        "1 invalid flow file of 2: 1 error, 0 warnings",
        "",
      ].join("\n"),
    );
  });

  it("prints the documented JSON shape with --json", async () => {
    const io = fakeIo(dir);
    assert.equal(await validateCommand(["--json", "bad.yml", ".github/flows"], io), 1);
    const report = JSON.parse(io.out()) as {
      valid: boolean;
      files: { file: string; valid: boolean; diagnostics: Record<string, unknown>[] }[];
    };
    assert.equal(report.valid, false);
    assert.deepEqual(
      report.files.map((file) => [file.file, file.valid, file.diagnostics.length]),
      [
        ["bad.yml", false, 1],
        [".github/flows/good.yml", true, 0],
        [".github/flows/loose.yaml", true, 1],
      ],
    );
    assert.deepEqual(report.files[0]?.diagnostics[0], {
      file: "bad.yml",
      line: 5,
      column: 5,
      endLine: 5,
      endColumn: 12,
      severity: "error",
      message: "unknown key `runs_on` in `steps.build`; did you mean `runs-on`?",
      path: ["steps", "build", "runs_on"],
    });
  });

  it("prints usage with --help and exits 0", async () => {
    const io = fakeIo(dir);
    assert.equal(await validateCommand(["--help"], io), 0);
    assert.match(io.out(), /^Usage: baton validate \[options\] \[paths…\]/);
    assert.match(io.out(), /--json/);
  });

  const usageErrors: [string, string[], string][] = [
    ["an unknown flag", ["validate", "--strict"], "baton validate: unknown option --strict\n"],
    [
      "a missing path",
      ["validate", "nope.yml"],
      "baton validate: no such file or directory: nope.yml\n",
    ],
    [
      "a directory without flows",
      ["validate", "empty"],
      "baton validate: no flow files (*.yml, *.yaml) in empty\n",
    ],
  ];
  for (const [name, args, message] of usageErrors) {
    it(`exits 2 on ${name}`, async () => {
      const io = fakeIo(dir);
      assert.equal(await main(args, io), 2);
      assert.equal(io.err(), `${message}Run \`baton validate --help\` for usage.\n`);
      assert.equal(io.out(), "");
    });
  }

  it("exits 2 without .github/flows and says where it looked", async () => {
    const io = fakeIo(join(dir, "empty"));
    assert.equal(await main(["validate"], io), 2);
    assert.match(
      io.err(),
      /no such file or directory: \.github\/flows \(run it at a repository's root, or name flow files\)/,
    );
  });

  it("runs as a real process on the examples", async () => {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      [repoPath("bin", "baton.js"), "validate", "examples/flows"],
      { cwd: REPO_ROOT, env: { ...process.env, NO_COLOR: "1" } },
    );
    assert.equal(stderr, "");
    assert.match(stdout, /^\d+ flow files valid\n$/);
  });

  it("exits 1 as a real process on an invalid flow", async () => {
    const failed = await promisify(execFile)(
      process.execPath,
      [repoPath("bin", "baton.js"), "validate", join(dir, "bad.yml")],
      {
        cwd: REPO_ROOT,
      },
    ).then(
      () => undefined,
      (error: unknown) => error as { code: number; stdout: string },
    );
    assert.equal(failed?.code, 1);
    assert.match(failed?.stdout ?? "", /bad\.yml:5:5: error: unknown key `runs_on`/);
  });
});
