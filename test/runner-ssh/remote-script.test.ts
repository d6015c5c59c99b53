/**
 * The wrapper an SSH step sends to the host, run here by a local shell reading it from
 * stdin as sshd's session would: the stop line and the end of stdin, arriving at once.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import {
  REMOTE_SHELL,
  shellQuote,
  STOP_LINE,
  stepWrapper,
  WORKSPACE_LINE_PREFIX,
} from "../../app/runner/ssh/remote-script.js";
import { isRunning } from "./sshd.js";

const HANG_GUARD = { timeout: 30_000 };
const scratch = mkdtempSync(join(tmpdir(), "baton-remote-script-"));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the wrapper with `stdinAfter` already written behind it, then stdin closed. */
function runWrapper(
  script: string,
  stdinAfter: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const shell = spawn("sh", ["-c", REMOTE_SHELL], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    shell.stdout.setEncoding("utf8").on("data", (text: string) => (stdout += text));
    shell.stderr.setEncoding("utf8").on("data", (text: string) => (stderr += text));
    shell.on("error", reject);
    shell.on("close", (code) => resolve({ code, stdout, stderr }));
    shell.stdin.end(
      stepWrapper({
        script,
        shell: undefined,
        env: {},
        workingDirectory: undefined,
        killGraceMs: 300,
        nonce: "0123456789abcdef",
      }) + stdinAfter,
    );
  });
}

function workspaceOf(stdout: string): string {
  const line = stdout.split("\n")[0] ?? "";
  assert.ok(line.startsWith(WORKSPACE_LINE_PREFIX), `the first line names the workspace: ${line}`);
  return line.slice(WORKSPACE_LINE_PREFIX.length);
}

describe("the SSH step wrapper", () => {
  it(
    "a stop that is already waiting when the step starts still stops its whole group",
    HANG_GUARD,
    async () => {
      const pids = join(scratch, "early-stop-pids");
      const ended = await runWrapper(
        `trap '' TERM; echo $$ > ${shellQuote(pids)}; (sleep 300) & echo $! >> ${shellQuote(pids)}; wait`,
        STOP_LINE,
      );
      const workspace = workspaceOf(ended.stdout);
      assert.notEqual(ended.code, 0);
      // The step may have been stopped before it wrote anything; if it did, all of it is gone.
      const started = existsSync(pids)
        ? readFileSync(pids, "utf8").split("\n").filter(Boolean)
        : [];
      for (const pid of started)
        assert.equal(isRunning(Number(pid)), false, `process ${pid} is gone`);
      assert.equal(
        existsSync(join(workspace, "output")),
        true,
        "a stopped step keeps its outputs for the client",
      );
      rmSync(workspace, { recursive: true, force: true });
    },
  );

  it(
    "stdin closing without a stop (the connection is gone) stops the step and removes its workspace",
    HANG_GUARD,
    async () => {
      const ended = await runWrapper("trap '' TERM; sleep 300", "");
      const workspace = workspaceOf(ended.stdout);
      assert.notEqual(ended.code, 0);
      assert.equal(existsSync(workspace), false);
    },
  );

  it("quotes values so that a shell reads them back literally", () => {
    assert.equal(shellQuote(`it's`), `'it'\\''s'`);
  });
});
