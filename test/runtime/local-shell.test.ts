/** The local shell executor on its own: outputs, environment, failures, timeouts, cancellation, logs. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { StepExecution } from "../../app/runner/executor.js";
import { unavailableLocally } from "../../app/runner/executor.js";
import { localShell, parseOutputFile } from "../../app/runner/local-shell.js";

function execution(
  run: string,
  extra: Partial<StepExecution> = {},
): StepExecution & { logs: string[] } {
  const logs: string[] = [];
  return {
    runId: "run-1",
    step: "s",
    attempt: 2,
    key: "run-1/s/2",
    kind: "run",
    spec: { run },
    env: { GREETING: "hi" },
    signal: new AbortController().signal,
    log: (stream, text) => logs.push(`${stream}:${text}`),
    logs,
    ...extra,
  };
}

describe("parseOutputFile", () => {
  it("reads name=value lines and name<<DELIMITER blocks; later values win", () => {
    assert.deepEqual(parseOutputFile("a=1\nb=x=y\n\nm<<EOF\nline 1\n\nline 3\nEOF\na=2\n"), {
      a: "2",
      b: "x=y",
      m: "line 1\n\nline 3",
    });
  });
});

describe("localShell", () => {
  const shell = localShell({ killGraceMs: 300 });

  it("runs in a fresh workspace with the step's environment and reads its outputs", async () => {
    const e = execution(
      `echo "env=$GREETING $BATON_RUN_ID $BATON_STEP $BATON_ATTEMPT $BATON_IDEMPOTENCY_KEY" >> "$BATON_OUTPUT"
       echo "pwd=$(pwd)" >> "$GITHUB_OUTPUT"; echo "ws=$BATON_WORKSPACE" >> "$BATON_OUTPUT"
       test -z "$(ls -A)"; echo out; echo err >&2`,
    );
    const result = await shell(e);
    assert.equal(result.outcome, "success", result.error);
    assert.equal(result.outputs.env, "hi run-1 s 2 run-1/s/2");
    assert.equal(result.outputs.pwd, result.outputs.ws);
    assert.ok(e.logs.includes("stdout:out\n"));
    assert.ok(e.logs.includes("stderr:err\n"));
  });

  it("gives the step the minimal inherited set and what is declared, never the rest of this process's environment", async () => {
    process.env.BATON_TEST_CANARY = "canary-in-the-process";
    const lang = process.env.LANG;
    process.env.LANG = "C.UTF-8";
    try {
      const declared = localShell({ killGraceMs: 300, baseEnv: { FROM_CONFIG: "configured" } });
      const result = await declared(
        execution(
          `env | cut -d= -f1 | sort | tr '\\n' ' ' | sed 's/^/names=/' >> "$BATON_OUTPUT"; echo >> "$BATON_OUTPUT"
           echo "canary=\${BATON_TEST_CANARY-unset}" >> "$BATON_OUTPUT"
           echo "path=$PATH" >> "$BATON_OUTPUT"; echo "home=$HOME" >> "$BATON_OUTPUT"`,
        ),
      );
      assert.equal(result.outcome, "success", result.error);
      assert.equal(result.outputs.canary, "unset");
      assert.equal(result.outputs.path, process.env.PATH);
      assert.equal(result.outputs.home, process.env.HOME);
      const names = (result.outputs.names ?? "").trim().split(" ");
      const allowed = new Set(["PATH", "HOME", "LANG", "TZ", "TMPDIR", "USER", "SHELL"]);
      // What the shell itself sets (PWD, SHLVL, _, OLDPWD) is not inherited.
      const shells = new Set(["PWD", "SHLVL", "_", "OLDPWD"]);
      const extra = names.filter(
        (name) =>
          !allowed.has(name) &&
          !shells.has(name) &&
          !name.startsWith("BATON_") &&
          !["GITHUB_OUTPUT", "GREETING", "FROM_CONFIG"].includes(name),
      );
      assert.deepEqual(
        extra,
        [],
        `only the minimal set and the declared variables: ${names.join(" ")}`,
      );
      for (const name of ["PATH", "HOME", "LANG", "GREETING", "FROM_CONFIG"])
        assert.ok(names.includes(name), `${name} is there: ${names.join(" ")}`);
    } finally {
      delete process.env.BATON_TEST_CANARY;
      if (lang === undefined) delete process.env.LANG;
      else process.env.LANG = lang;
    }
  });

  it("fails with the exit code and the last lines of stderr, and stops at the first failing command", async () => {
    const result = await shell(execution(`echo one >&2; echo two >&2; false; echo never >&2`));
    assert.equal(result.outcome, "failure");
    assert.equal(result.error, "exit code 1\none\ntwo");
  });

  it("kills the process group at the deadline", async () => {
    const began = Date.now();
    const result = await shell(execution("trap '' TERM; sleep 30", { deadline: Date.now() + 300 }));
    assert.equal(result.outcome, "failure");
    assert.match(result.error ?? "", /^timed out/);
    assert.ok(Date.now() - began < 5000);
  });

  it("stops when its signal is aborted", async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(new Error("cancelled by alice")), 200);
    const result = await shell(execution("sleep 30 & sleep 30", { signal: controller.signal }));
    assert.equal(result.outcome, "failure");
    assert.equal(result.error, "stopped: cancelled by alice");
  });

  it("kills the group an earlier execution of the same attempt left behind before running it again", async () => {
    // The first execution stands for one whose Baton process died: nobody stops it.
    const first = shell(execution("sleep 30"));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const began = Date.now();
    const second = await shell(execution("echo again"));
    assert.equal(second.outcome, "success");
    const orphan = await first;
    assert.equal(orphan.outcome, "failure");
    assert.match(orphan.error ?? "", /killed by SIGKILL/);
    assert.ok(Date.now() - began < 5000);
  });

  it("fails steps of other kinds at once, without retries, saying what to do", async () => {
    const result = await unavailableLocally("github")(execution("", { kind: "github" }));
    assert.equal(result.retryable, false);
    assert.match(
      result.error ?? "",
      /^`github` steps need the GitHub App; run `baton` against an app \(BATON_URL\) or change the step/,
    );
  });
});
