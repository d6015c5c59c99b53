/**
 * The SSH executor against a real OpenSSH server on this machine (the "remote" host is
 * this machine, so the tests can look at its processes and files): streaming, exit codes,
 * outputs, environment quoting, cancellation, timeouts, dropped connections, host keys.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { Json } from "../../app/engine/types.js";
import type { StepExecution } from "../../app/runner/executor.js";
import type { SshHostConfig } from "../../app/runner/ssh/host-config.js";
import { sshExecutor, sshHostExecutor } from "../../app/runner/ssh/ssh-executor.js";
import { isRunning, startSshd, type TestSshd } from "./sshd.js";

/** A hang guard for every test, not a timing assertion. */
const HANG_GUARD = { timeout: 60_000 };

let sshd: TestSshd;
/** A directory shared by the tests and the "remote" steps (same machine). */
let shared: string;

before(async () => {
  sshd = await startSshd();
  shared = mkdtempSync(join(sshd.dir, "shared-"));
});
after(async () => {
  await sshd?.stop();
});

function host(extra: Partial<SshHostConfig> = {}): SshHostConfig {
  return {
    host: "127.0.0.1",
    port: sshd.port,
    username: sshd.username,
    privateKeyPath: sshd.userKeyPath,
    hostKey: sshd.hostKeyFingerprint,
    connectTimeoutMs: 10_000,
    ...extra,
  };
}

interface Logged {
  stream: string;
  text: string;
}

function execution(
  spec: Record<string, Json>,
  extra: Partial<StepExecution> = {},
): StepExecution & { logs: Logged[]; text(stream: string): string } {
  const logs: Logged[] = [];
  return {
    runId: "run-1",
    step: "remote",
    attempt: 1,
    key: "run-1/remote/1",
    kind: "run",
    spec: { "runs-on": { ssh: "vm" }, ...spec },
    env: {},
    signal: new AbortController().signal,
    log: (stream, text) => logs.push({ stream, text }),
    logs,
    text: (stream) =>
      logs
        .filter((entry) => entry.stream === stream)
        .map((entry) => entry.text)
        .join(""),
    ...extra,
  };
}

const run = (spec: Record<string, Json>, extra: Partial<StepExecution> = {}) => {
  const e = execution(spec, extra);
  return { e, done: sshExecutor({ vm: host() }, { killGraceMs: 500 })(e) };
};

/** Polls until the condition holds; a hang guard, not a timing assertion. */
async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (condition()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`still waiting for ${what}`);
}

function pidsIn(file: string): number[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map(Number);
}

/** Settles a promise's state without waiting for it. */
async function isSettled(promise: Promise<unknown>): Promise<boolean> {
  const pending = Symbol("pending");
  return (await Promise.race([promise, Promise.resolve(pending)])) !== pending;
}

describe("sshExecutor against a real sshd", () => {
  it("streams output while the step runs, then succeeds", HANG_GUARD, async () => {
    const release = join(shared, "release-streaming");
    const { e, done } = run({
      run: `echo first; while [ ! -e ${release} ]; do sleep 0.05; done; echo second >&2; echo third`,
    });
    await eventually("the first line", () => e.text("stdout").includes("first\n"));
    assert.equal(await isSettled(done), false, "the step is still running");
    writeFileSync(release, "");
    const outcome = await done;
    assert.equal(outcome.outcome, "success", outcome.error);
    assert.equal(e.text("stdout"), "first\nthird\n");
    assert.equal(e.text("stderr"), "second\n");
    assert.ok(e.text("system").includes('Connecting to SSH host "vm"'));
  });

  it("passes output to the log in bounded chunks", HANG_GUARD, async () => {
    const e = execution({ run: "head -c 100000 /dev/zero | tr '\\0' x; echo" });
    const outcome = await sshExecutor({ vm: host() }, { logChunkChars: 1000 })(e);
    assert.equal(outcome.outcome, "success", outcome.error);
    assert.equal(e.text("stdout"), `${"x".repeat(100_000)}\n`);
    const sizes = e.logs
      .filter((entry) => entry.stream === "stdout")
      .map((entry) => entry.text.length);
    assert.ok(
      Math.max(...sizes) <= 1000,
      `chunks of at most 1000 characters, got ${Math.max(...sizes)}`,
    );
  });

  it(
    "maps exit codes: 0 is success, anything else a failure quoting stderr",
    HANG_GUARD,
    async () => {
      const ok = await run({ run: "exit 0" }).done;
      assert.equal(ok.outcome, "success", ok.error);

      const failed = await run({ run: "echo one >&2; echo two >&2; exit 3" }).done;
      assert.equal(failed.outcome, "failure");
      assert.equal(failed.error, "exit code 3\none\ntwo");
      assert.notEqual(failed.retryable, false);

      // bash -e -o pipefail, as with the local shell.
      const pipe = await run({ run: "false | true; echo never" }).done;
      assert.equal(pipe.outcome, "failure");
      assert.equal(pipe.error, "exit code 1");
      const sh = await run({ run: "false | true; echo reached", shell: "sh" }).done;
      assert.equal(sh.outcome, "success", sh.error);
    },
  );

  it(
    "reads outputs from $BATON_OUTPUT (the $GITHUB_OUTPUT format), on success and failure",
    HANG_GUARD,
    async () => {
      const { done } = run({
        run: [
          `echo "greeting=hello world" >> "$BATON_OUTPUT"`,
          `printf 'multi<<EOF\\nline 1\\n\\nline 3\\nEOF\\n' >> "$GITHUB_OUTPUT"`,
          `echo "ids=$BATON_RUN_ID $BATON_STEP $BATON_ATTEMPT $BATON_IDEMPOTENCY_KEY" >> "$BATON_OUTPUT"`,
        ].join("\n"),
      });
      const outcome = await done;
      assert.equal(outcome.outcome, "success", outcome.error);
      assert.deepEqual(outcome.outputs, {
        greeting: "hello world",
        multi: "line 1\n\nline 3",
        ids: "run-1 remote 1 run-1/remote/1",
      });

      const failed = await run({ run: `echo partial=yes >> "$BATON_OUTPUT"; exit 1` }).done;
      assert.equal(failed.outcome, "failure");
      assert.deepEqual(failed.outputs, { partial: "yes" });
    },
  );

  it(
    "passes env values literally (quotes, newlines, $(...)), never logs them, and cleans the workspace",
    HANG_GUARD,
    async () => {
      const pwned = join(shared, "pwned");
      const values = {
        QUOTES: `it's "double" and 'single' \\ back\\slash`,
        NEWLINES: "line 1\nline 2\n\nEOF\n",
        SUBSTITUTION: `$(touch ${pwned}) \`touch ${pwned}\` \${HOME} $HOME`,
        SECRET_TOKEN: "s3cr3t-value-never-logged",
        // Variables that would break the wrapper if it ran with them.
        PATH: "/nonexistent-baton-bin:/usr/local/bin:/usr/bin:/bin",
        IFS: "0123456789/ -",
      };
      const dump = join(shared, "env-dump");
      const { e, done } = run(
        {
          run:
            `mkdir -p ${dump}; for name in QUOTES NEWLINES SUBSTITUTION PATH; do ` +
            `eval "printf '%s' \\"\\$$name\\"" > ${dump}/$name; done; ` +
            `pwd > ${dump}/pwd; echo "$BATON_WORKSPACE" > ${dump}/workspace`,
          "working-directory": "sub/dir",
        },
        { env: values },
      );
      const outcome = await done;
      assert.equal(outcome.outcome, "success", outcome.error);
      for (const name of ["QUOTES", "NEWLINES", "SUBSTITUTION", "PATH"] as const) {
        assert.equal(readFileSync(join(dump, name), "utf8"), values[name], name);
      }
      assert.equal(existsSync(pwned), false, "no value was executed");
      const workspace = readFileSync(join(dump, "workspace"), "utf8").trim();
      assert.equal(readFileSync(join(dump, "pwd"), "utf8").trim(), `${workspace}/sub/dir`);
      assert.equal(existsSync(workspace), false, "the workspace is removed afterwards");
      const everything = e.logs.map((entry) => entry.text).join("");
      assert.ok(!everything.includes(values.SECRET_TOKEN), "env values are not logged");
    },
  );

  it("fails with the host's words when the step cannot start there", HANG_GUARD, async () => {
    const outcome = await run({ run: "true", "working-directory": "/proc/baton-nowhere" }).done;
    assert.equal(outcome.outcome, "failure");
    assert.match(
      outcome.error ?? "",
      /^could not start the step on SSH host "vm" \(.*\): (.|\n)*baton: could not enter the working directory$/,
    );
  });

  it("one host's executor adds baseEnv under the step's env", HANG_GUARD, async () => {
    const e = execution(
      { run: `echo "both=$RUNNER_WIDE $STEP_OWN" >> "$BATON_OUTPUT"` },
      { env: { STEP_OWN: "step" } },
    );
    const outcome = await sshHostExecutor("vm", host(), {
      baseEnv: { RUNNER_WIDE: "runner", STEP_OWN: "runner" },
    })(e);
    assert.equal(outcome.outcome, "success", outcome.error);
    assert.deepEqual(outcome.outputs, { both: "runner step" });
  });

  it("refuses env names a shell cannot take, without retries", HANG_GUARD, async () => {
    const outcome = await run({ run: "true" }, { env: { "BAD NAME": "x" } }).done;
    assert.equal(outcome.outcome, "failure");
    assert.equal(outcome.retryable, false);
    assert.match(outcome.error ?? "", /"BAD NAME" is not a valid shell name/);
  });

  it(
    "cancellation kills the remote process group, even processes that ignore SIGTERM",
    HANG_GUARD,
    async () => {
      const pidFile = join(shared, "cancel-pids");
      const controller = new AbortController();
      const { e, done } = run(
        {
          run:
            `trap '' TERM; echo $$ > ${pidFile}; (sleep 300) & echo $! >> ${pidFile}; ` +
            `echo "ws=$BATON_WORKSPACE" >> "$BATON_OUTPUT"; echo started; while true; do sleep 0.1; done`,
        },
        { signal: controller.signal },
      );
      await eventually("the step to start", () => e.text("stdout").includes("started\n"));
      const pids = pidsIn(pidFile);
      assert.equal(pids.length, 2);
      assert.ok(pids.every(isRunning), "the remote processes run before the cancellation");
      controller.abort(new Error("cancelled by alice"));
      const outcome = await done;
      assert.equal(outcome.outcome, "failure");
      assert.equal(outcome.error, "stopped: cancelled by alice");
      assert.ok(e.text("system").includes("Stopping the step: cancelled by alice"));
      for (const pid of pids) assert.equal(isRunning(pid), false, `process ${pid} is gone`);
      assert.ok(outcome.outputs.ws, "outputs written before the cancellation are kept");
      assert.equal(existsSync(outcome.outputs.ws ?? "/"), false, "the workspace is removed");
    },
  );

  it("a step cancelled before it starts does not start", HANG_GUARD, async () => {
    const marker = join(shared, "never-started");
    const controller = new AbortController();
    controller.abort(new Error("cancelled by bob"));
    const outcome = await run({ run: `touch ${marker}` }, { signal: controller.signal }).done;
    assert.equal(outcome.outcome, "failure");
    assert.match(
      outcome.error ?? "",
      /^stopped: cancelled by bob \(while connecting to SSH host "vm"/,
    );
    assert.equal(existsSync(marker), false);
  });

  it("a timeout kills the remote process group", HANG_GUARD, async () => {
    const pidFile = join(shared, "timeout-pids");
    const { e, done } = run(
      { run: `echo $$ > ${pidFile}; echo started >&2; sleep 300` },
      // Generous, so that connecting on a busy machine does not take it all.
      { deadline: Date.now() + 4000 },
    );
    const outcome = await done;
    assert.equal(outcome.outcome, "failure");
    assert.equal(outcome.error, "timed out\nstarted");
    assert.ok(e.text("system").includes("Timed out: stopping the step"));
    for (const pid of pidsIn(pidFile))
      assert.equal(isRunning(pid), false, `process ${pid} is gone`);
  });

  it(
    "a dropped connection is a retryable failure, and the host stops the step",
    HANG_GUARD,
    async () => {
      const pidFile = join(shared, "dropped-pids");
      const { e, done } = run({
        run:
          `echo $$ > ${pidFile}; (sleep 300) & echo $! >> ${pidFile}; ` +
          `echo "$BATON_WORKSPACE" >> ${pidFile}.ws; echo started; sleep 300`,
      });
      await eventually("the step to start", () => e.text("stdout").includes("started\n"));
      const connections = sshd.connectionProcesses();
      assert.ok(connections.length > 0, "sshd has a process for the connection");
      for (const pid of connections) process.kill(pid, "SIGKILL");
      const outcome = await done;
      assert.equal(outcome.outcome, "failure");
      assert.equal(outcome.retryable, true);
      assert.match(
        outcome.error ?? "",
        /^lost the connection to SSH host "vm" \(.*\) during the step/,
      );
      // The host notices the closed pipe and stops the group, then removes the workspace.
      const pids = pidsIn(pidFile);
      await eventually("the remote processes to stop", () => !pids.some(isRunning));
      const workspace = readFileSync(`${pidFile}.ws`, "utf8").trim();
      await eventually("the workspace to go", () => !existsSync(workspace));
    },
  );

  it("refuses a host key that is not pinned, without retries", HANG_GUARD, async () => {
    const unpinned = await sshExecutor({ vm: host({ hostKey: undefined }) })(
      execution({ run: "true" }),
    );
    assert.equal(unpinned.outcome, "failure");
    assert.equal(unpinned.retryable, false);
    assert.ok(
      unpinned.error?.includes(`refused the host key ${sshd.hostKeyFingerprint}`),
      unpinned.error,
    );
    assert.match(unpinned.error ?? "", /no hostKey is pinned for "vm"/);

    const wrongPin = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    const mismatched = await sshExecutor({ vm: host({ hostKey: wrongPin }) })(
      execution({ run: "true" }),
    );
    assert.equal(mismatched.outcome, "failure");
    assert.equal(mismatched.retryable, false);
    assert.match(mismatched.error ?? "", /the runner's configuration pins SHA256:AAAA/);

    // Only when the configuration says so, and never silently.
    const e = execution({ run: "true" });
    const accepted = await sshExecutor({
      vm: host({ hostKey: undefined, acceptAnyHostKey: true }),
    })(e);
    assert.equal(accepted.outcome, "success", accepted.error);
    assert.ok(
      e.text("system").includes(`accepted the unpinned host key ${sshd.hostKeyFingerprint}`),
    );
  });

  it(
    "authenticates with an encrypted key and its passphrase; refuses a key the host does not know",
    HANG_GUARD,
    async () => {
      const encrypted = join(shared, "encrypted_ed25519");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "open sesame", "-f", encrypted]);
      writeFileSync(
        join(sshd.dir, "authorized_keys"),
        readFileSync(`${sshd.userKeyPath}.pub`, "utf8") + readFileSync(`${encrypted}.pub`, "utf8"),
      );
      const withPassphrase = await sshExecutor({
        vm: host({ privateKeyPath: encrypted, passphrase: "open sesame" }),
      })(execution({ run: "true" }));
      assert.equal(withPassphrase.outcome, "success", withPassphrase.error);

      const stranger = join(shared, "stranger_ed25519");
      execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", stranger]);
      const refused = await sshExecutor({ vm: host({ privateKeyPath: stranger }) })(
        execution({ run: "true" }),
      );
      assert.equal(refused.outcome, "failure");
      assert.equal(refused.retryable, false);
      assert.match(refused.error ?? "", /refused the key .* authorized_keys/);
      assert.ok(!refused.error?.includes(readFileSync(stranger, "utf8").split("\n")[1] ?? "?"));
    },
  );

  it(
    "a host that does not answer is a retryable failure; an unknown host name is not",
    HANG_GUARD,
    async () => {
      const closedPort = sshd.port === 1 ? 2 : 1;
      const refused = await sshExecutor({ vm: host({ port: closedPort }) })(
        execution({ run: "true" }),
      );
      assert.equal(refused.outcome, "failure");
      assert.equal(refused.retryable, true);
      assert.match(refused.error ?? "", /^could not connect to SSH host "vm" .*ECONNREFUSED/);

      const unknown = await sshExecutor({ vm: host() })(
        execution({ run: "true", "runs-on": { ssh: "elsewhere" } }),
      );
      assert.equal(unknown.outcome, "failure");
      assert.equal(unknown.retryable, false);
      assert.equal(
        unknown.error,
        `runs-on.ssh names the host "elsewhere", which this runner's configuration does not define (it defines "vm")`,
      );
    },
  );
});
