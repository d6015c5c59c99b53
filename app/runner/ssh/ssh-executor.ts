/**
 * The executor for `run` steps with `runs-on: { ssh: <host> }`: the step's script runs on a
 * host of the runner's configuration, over SSH (the ssh2 library; no ssh binary needed).
 *
 * One connection per attempt. The script, its environment and the wrapper around it travel
 * on the channel's stdin, never on a command line (see remote-script.ts for the protocol).
 * The script runs in a fresh workspace (mktemp -d) in its own session, so that a timeout or
 * a cancellation stops its whole process group on the host: SIGTERM, then SIGKILL after a
 * grace period. When the connection drops, the host stops the group too (sshd closes the
 * wrapper's stdin), and the attempt fails as retryable.
 */
import { randomBytes } from "node:crypto";
import { readFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { Client, type ClientChannel, type ConnectConfig } from "ssh2";
import type { Json } from "../../engine/types.js";
import type { Executor, LogStream, StepExecution, StepOutcome } from "../executor.js";
import { parseOutputFile } from "../local-shell.js";
import {
  hostKeyFingerprint,
  pinnedFingerprints,
  sshTargetOf,
  type SshHostConfig,
} from "./host-config.js";
import {
  invalidEnvName,
  outputReader,
  REMOTE_SHELL,
  stepWrapper,
  STOP_LINE,
  WORKSPACE_LINE_PREFIX,
  WRAPPER_FAILED_STATUS,
} from "./remote-script.js";

export interface SshExecutorOptions {
  /** Between SIGTERM and SIGKILL when a step is stopped. (Default: 5000 ms) */
  killGraceMs?: number;
  /**
   * How long, after asking the host to stop a step, to wait for it to confirm before
   * giving up on the connection. (Default: killGraceMs + 10000 ms)
   */
  stopConfirmMs?: number;
  /** The largest piece of output passed to execution.log at once. (Default: 16384 characters) */
  logChunkChars?: number;
  /**
   * Added to every step's environment on the host, under the step's own (the runner
   * configuration's `env` and `secrets`; the runner masks the secrets in what the step
   * prints). The runner's own process environment never goes to a host: the step gets the
   * host's login environment and these. (Default: none)
   */
  baseEnv?: Record<string, string>;
}

/** How many trailing stderr lines a failure's error message quotes. */
const STDERR_TAIL_LINES = 10;

/**
 * An executor running each step on the SSH host its `runs-on.ssh` names, among `hosts`
 * (the runner's configuration, by name). A step naming no host, or a host not in `hosts`,
 * fails without retries.
 */
export function sshExecutor(
  hosts: Record<string, SshHostConfig>,
  options: SshExecutorOptions = {},
): Executor {
  return async (execution) => {
    const name = sshTargetOf(execution.spec);
    if (name === undefined) {
      return refuse(
        "the step has no `runs-on: { ssh: <host> }`, so the SSH executor cannot run it",
      );
    }
    const config = Object.hasOwn(hosts, name) ? hosts[name] : undefined;
    if (config === undefined) {
      const known = Object.keys(hosts);
      return refuse(
        `runs-on.ssh names the host "${name}", which this runner's configuration does not define ` +
          `(it defines ${known.length > 0 ? known.map((host) => `"${host}"`).join(", ") : "no SSH hosts"})`,
      );
    }
    return runOnSshHost(name, config, execution, options);
  };
}

/**
 * An executor running every step it is given on one host, for a runner that has already
 * picked the host from the step's `runs-on.ssh` (RunnerOptions.sshExecutor).
 */
export function sshHostExecutor(
  name: string,
  config: SshHostConfig,
  options: SshExecutorOptions = {},
): Executor {
  return (execution) => runOnSshHost(name, config, execution, options);
}

/** Runs one step attempt on one SSH host. */
export async function runOnSshHost(
  name: string,
  config: SshHostConfig,
  execution: StepExecution,
  options: SshExecutorOptions = {},
): Promise<StepOutcome> {
  const spec = asObject(execution.spec);
  if (typeof spec.run !== "string") return refuse("the step has no `run` command");
  if (spec.checkout === true) {
    return refuse(
      "`checkout: true` is not supported on SSH hosts yet: clone in the step's script instead",
    );
  }
  const env: Record<string, string> = {
    ...options.baseEnv,
    ...execution.env,
    BATON_RUN_ID: execution.runId,
    BATON_STEP: execution.step,
    BATON_ATTEMPT: String(execution.attempt),
    BATON_IDEMPOTENCY_KEY: execution.key,
  };
  for (const [variable, value] of Object.entries(env)) {
    const problem = invalidEnvName(variable, value);
    if (problem !== undefined) return refuse(problem);
  }
  const killGraceMs = options.killGraceMs ?? 5000;
  const wrapper = stepWrapper({
    script: spec.run,
    shell: spec.shell === "sh" || spec.shell === "bash" ? spec.shell : undefined,
    env,
    workingDirectory:
      typeof spec["working-directory"] === "string" ? spec["working-directory"] : undefined,
    killGraceMs,
    nonce: randomBytes(16).toString("hex"),
  });

  let privateKey: string | Buffer;
  try {
    privateKey = await loadPrivateKey(name, config);
  } catch (error) {
    return refuse(error instanceof Error ? error.message : String(error));
  }

  const where = `SSH host "${name}" (${config.username}@${config.host}:${config.port ?? 22})`;
  const log = chunkedLog(execution, options.logChunkChars ?? 16384);
  const stopper = stopWhen(execution);
  try {
    log("system", `Connecting to ${where}\n`);
    const connected = await connect(name, where, config, privateKey, stopper);
    if ("failure" in connected) return connected.failure;
    const { client, acceptedUnpinned } = connected;
    try {
      if (acceptedUnpinned !== undefined) {
        log(
          "system",
          `Warning: accepted the unpinned host key ${acceptedUnpinned} of ${where} (acceptAnyHostKey); pin it with hostKey\n`,
        );
      }
      const ended = await runWrapper(client, wrapper, {
        log,
        stopper,
        killGraceMs,
        stopConfirmMs: options.stopConfirmMs ?? killGraceMs + 10_000,
      });
      if (ended.lost !== undefined) {
        return {
          outcome: "failure",
          outputs: {},
          retryable: true,
          error:
            `lost the connection to ${where} during the step (${ended.lost}); ` +
            `the host stops the step's processes when it notices, and the step may be retried`,
        };
      }
      if (ended.workspace === undefined) {
        const why =
          ended.code === WRAPPER_FAILED_STATUS && ended.tail ? ended.tail : describeExit(ended);
        return {
          outcome: "failure",
          outputs: {},
          error: `could not start the step on ${where}: ${why}`,
        };
      }
      const outputs = await readOutputs(client, ended.workspace).catch((error: unknown) => {
        log("system", `Could not read the step's outputs from ${where}: ${messageOf(error)}\n`);
        return {};
      });
      if (ended.stopped && stopper.stopped === "timeout") {
        return {
          outcome: "failure",
          outputs,
          error: `timed out${ended.tail ? `\n${ended.tail}` : ""}`,
        };
      }
      if (ended.stopped && stopper.stopped === "aborted") {
        return { outcome: "failure", outputs, error: `stopped: ${abortReason(execution.signal)}` };
      }
      if (ended.code === 0) return { outcome: "success", outputs };
      const how = describeExit(ended);
      return { outcome: "failure", outputs, error: ended.tail ? `${how}\n${ended.tail}` : how };
    } finally {
      client.end();
    }
  } finally {
    stopper.dispose();
  }
}

// --- Connecting -------------------------------------------------------------------------

type Connected =
  { client: Client; acceptedUnpinned: string | undefined } | { failure: StepOutcome };

async function loadPrivateKey(name: string, config: SshHostConfig): Promise<string | Buffer> {
  if (config.privateKey !== undefined) return config.privateKey;
  if (config.privateKeyPath === undefined) {
    throw new Error(
      `SSH host "${name}" has neither privateKey nor privateKeyPath in the runner's configuration`,
    );
  }
  try {
    return await readFile(expandHome(config.privateKeyPath));
  } catch (error) {
    // The path, never the content.
    throw new Error(
      `could not read the private key of SSH host "${name}" from ${config.privateKeyPath}: ${messageOf(error)}`,
      { cause: error },
    );
  }
}

function connect(
  name: string,
  where: string,
  config: SshHostConfig,
  privateKey: string | Buffer,
  stopper: Stopper,
): Promise<Connected> {
  const stop = stopper.signal;
  return new Promise((resolve) => {
    const client = new Client();
    const pins = pinnedFingerprints(config);
    let refusedKey: string | undefined;
    let acceptedUnpinned: string | undefined;
    let settled = false;
    const settle = (result: Connected) => {
      if (settled) return;
      settled = true;
      stop.removeEventListener("abort", onStop);
      if ("failure" in result) {
        client.removeAllListeners("ready");
        client.on("error", () => undefined);
        client.destroy();
      }
      resolve(result);
    };
    const onStop = () =>
      settle({
        failure: {
          outcome: "failure",
          outputs: {},
          error: `${stopMessage(stopper)} (while connecting to ${where})`,
        },
      });
    stop.addEventListener("abort", onStop, { once: true });
    if (stop.aborted) {
      onStop();
      return;
    }

    const connectConfig: ConnectConfig = {
      host: config.host,
      port: config.port ?? 22,
      username: config.username,
      privateKey,
      readyTimeout: config.connectTimeoutMs ?? 20_000,
      keepaliveInterval: config.keepaliveIntervalMs ?? 10_000,
      keepaliveCountMax: config.keepaliveCountMax ?? 3,
      hostVerifier: (key: Buffer) => {
        const fingerprint = hostKeyFingerprint(key);
        if (pins.includes(fingerprint)) return true;
        if (pins.length === 0 && config.acceptAnyHostKey === true) {
          acceptedUnpinned = fingerprint;
          return true;
        }
        refusedKey = fingerprint;
        return false;
      },
      ...(config.passphrase !== undefined ? { passphrase: config.passphrase } : {}),
    };
    client.once("ready", () => settle({ client, acceptedUnpinned }));
    client.on("error", (error: Error & { level?: string }) => {
      if (refusedKey !== undefined) {
        settle({
          failure: refuse(
            pins.length === 0
              ? `refused the host key ${refusedKey} of ${where}: no hostKey is pinned for "${name}" in the ` +
                  `runner's configuration. Check the fingerprint on the host (ssh-keygen -lf ` +
                  `/etc/ssh/ssh_host_ed25519_key.pub) and set hostKey to it`
              : `refused the host key ${refusedKey} of ${where}: the runner's configuration pins ` +
                  `${pins.join(", ")}. If the host's key was changed on purpose, update hostKey; ` +
                  `otherwise someone may be intercepting the connection`,
          ),
        });
      } else if (error.level === "client-authentication") {
        settle({
          failure: refuse(
            `${where} refused the key of the runner's configuration for ${config.username} ` +
              `(is its public key in the host's authorized_keys?)`,
          ),
        });
      } else if (/privateKey|passphrase/i.test(error.message)) {
        settle({ failure: refuse(`the private key of SSH host "${name}": ${error.message}`) });
      } else {
        settle({
          failure: {
            outcome: "failure",
            outputs: {},
            retryable: true,
            error: `could not connect to ${where}: ${error.message}`,
          },
        });
      }
    });
    client.on("close", () =>
      settle({
        failure: {
          outcome: "failure",
          outputs: {},
          retryable: true,
          error: `${where} closed the connection before it was ready`,
        },
      }),
    );
    try {
      client.connect(connectConfig);
    } catch (error) {
      // ssh2 parses the key synchronously; its messages name the problem, not the key.
      settle({ failure: refuse(`the private key of SSH host "${name}": ${messageOf(error)}`) });
    }
  });
}

// --- Running ----------------------------------------------------------------------------

interface WrapperEnd {
  code: number | null;
  signal: string | null;
  /** Where the wrapper put the step; undefined if it failed before starting it. */
  workspace: string | undefined;
  /** Why the connection was lost, if it was. */
  lost: string | undefined;
  /** Whether the host was asked to stop the step before it ended. */
  stopped: boolean;
  /** The last lines of stderr. */
  tail: string;
}

function runWrapper(
  client: Client,
  wrapper: string,
  context: {
    log: (stream: LogStream, text: string) => void;
    stopper: Stopper;
    killGraceMs: number;
    stopConfirmMs: number;
  },
): Promise<WrapperEnd> {
  const { log, stopper } = context;
  return new Promise((resolve) => {
    let workspace: string | undefined;
    let tail = "";
    let exit: { code: number | null; signal: string | null } | undefined;
    let lost: string | undefined;
    let connectionError: string | undefined;
    let channel: ClientChannel | undefined;
    let confirmTimer: NodeJS.Timeout | undefined;
    let stopped = false;
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(confirmTimer);
      stopper.signal.removeEventListener("abort", onStop);
      client.off("error", onClientError);
      client.off("close", onClientClose);
      resolve({
        code: exit?.code ?? null,
        signal: exit?.signal ?? null,
        workspace,
        lost,
        stopped,
        tail: lastLines(tail, STDERR_TAIL_LINES).trimEnd(),
      });
    };
    const onClientError = (error: Error) => {
      connectionError = error.message;
    };
    const onClientClose = () => {
      if (exit === undefined) lost ??= connectionError ?? "the connection closed";
      finish();
    };
    client.on("error", onClientError);
    client.on("close", onClientClose);

    const onStop = () => {
      if (exit !== undefined || channel === undefined) return;
      stopped = true;
      log(
        "system",
        stopper.stopped === "timeout"
          ? "Timed out: stopping the step\n"
          : `Stopping the step: ${abortReason(stopper.signal)}\n`,
      );
      // The watchdog on the host reads this and stops the process group.
      channel.end(STOP_LINE);
      confirmTimer = setTimeout(() => {
        lost = `the host did not confirm within ${context.stopConfirmMs} ms that the step stopped`;
        client.destroy();
        finish();
      }, context.stopConfirmMs);
    };

    client.exec(REMOTE_SHELL, (error, stream) => {
      if (error) {
        lost = `could not open a channel: ${error.message}`;
        finish();
        return;
      }
      channel = stream;
      // The stdout's first line is the wrapper's, not the step's.
      let header = "";
      const stdout = new StringDecoder("utf8");
      const onStdout = (text: string) => {
        if (workspace === undefined) {
          header += text;
          const newline = header.indexOf("\n");
          if (newline === -1) return;
          const line = header.slice(0, newline);
          text = header.slice(newline + 1);
          header = "";
          workspace = line.startsWith(WORKSPACE_LINE_PREFIX)
            ? line.slice(WORKSPACE_LINE_PREFIX.length)
            : undefined;
          if (workspace === undefined) text = `${line}\n${text}`;
        }
        if (text !== "") log("stdout", text);
      };
      stream.on("data", (data: Buffer) => onStdout(stdout.write(data)));
      stream.on("end", () => onStdout(stdout.end() + header));
      const stderr = new StringDecoder("utf8");
      const onStderr = (text: string) => {
        if (text === "") return;
        log("stderr", text);
        tail = lastLines(tail + text, STDERR_TAIL_LINES);
      };
      stream.stderr.on("data", (data: Buffer) => onStderr(stderr.write(data)));
      stream.stderr.on("end", () => onStderr(stderr.end()));
      stream.on("exit", (code: number | null, signal?: string) => {
        exit = { code, signal: signal ?? null };
      });
      // ssh2 may close the channel before stderr has ended: wait for both, so that no
      // output is logged after the outcome.
      let openStreams = 2;
      const onStreamClosed = () => {
        openStreams -= 1;
        if (openStreams > 0) return;
        // Without an exit status, the channel closed because the connection did.
        if (exit === undefined)
          lost ??= connectionError ?? "the channel closed without an exit status";
        finish();
      };
      stream.once("close", onStreamClosed);
      stream.stderr.once("close", onStreamClosed);
      stream.write(wrapper);
      // stdin stays open: closing it tells the host the connection is gone.
      stopper.signal.addEventListener("abort", onStop, { once: true });
      if (stopper.signal.aborted) onStop();
    });
  });
}

function readOutputs(client: Client, workspace: string): Promise<Record<string, string>> {
  return new Promise((resolve, reject) => {
    client.exec(REMOTE_SHELL, (error, stream) => {
      if (error) {
        reject(error);
        return;
      }
      const chunks: Buffer[] = [];
      stream.on("data", (data: Buffer) => chunks.push(data));
      stream.stderr.resume();
      stream.on("close", () => resolve(parseOutputFile(Buffer.concat(chunks).toString("utf8"))));
      stream.end(outputReader(workspace));
    });
  });
}

// --- Stopping ---------------------------------------------------------------------------

interface Stopper {
  /** Aborted at the deadline or when the execution's signal is. */
  signal: AbortSignal;
  stopped: "timeout" | "aborted" | undefined;
  dispose(): void;
}

function stopWhen(execution: StepExecution): Stopper {
  const controller = new AbortController();
  const stopper: Stopper = {
    signal: controller.signal,
    stopped: undefined,
    dispose: () => {
      clearTimeout(deadlineTimer);
      execution.signal.removeEventListener("abort", onAbort);
    },
  };
  const onAbort = () => {
    if (stopper.stopped !== undefined) return;
    stopper.stopped = "aborted";
    controller.abort(execution.signal.reason);
  };
  const deadlineTimer =
    execution.deadline !== undefined
      ? setTimeout(
          () => {
            if (stopper.stopped !== undefined) return;
            stopper.stopped = "timeout";
            controller.abort(new Error("timed out"));
          },
          Math.max(0, execution.deadline - Date.now()),
        )
      : undefined;
  execution.signal.addEventListener("abort", onAbort, { once: true });
  if (execution.signal.aborted) onAbort();
  return stopper;
}

/** As the local shell says it: `timed out`, or `stopped: <why>`. */
function stopMessage(stopper: Stopper): string {
  return stopper.stopped === "timeout" ? "timed out" : `stopped: ${abortReason(stopper.signal)}`;
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message;
  return typeof reason === "string" ? reason : "cancelled";
}

// --- Small things -----------------------------------------------------------------------

function chunkedLog(
  execution: StepExecution,
  chunkChars: number,
): (stream: LogStream, text: string) => void {
  return (stream, text) => {
    for (let start = 0; start < text.length; start += chunkChars) {
      execution.log(stream, text.slice(start, start + chunkChars));
    }
  };
}

/** `~/…` as a shell would read it, since configuration files are written that way. */
function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

function describeExit(ended: { code: number | null; signal: string | null }): string {
  if (ended.code !== null) return `exit code ${ended.code}`;
  return ended.signal !== null ? `killed by SIG${ended.signal}` : "ended without an exit status";
}

function refuse(error: string): StepOutcome {
  return { outcome: "failure", outputs: {}, retryable: false, error };
}

function lastLines(text: string, count: number): string {
  return text
    .split("\n")
    .slice(-(count + 1))
    .join("\n")
    .slice(-4096);
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function asObject(value: Json): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}
