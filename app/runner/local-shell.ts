/**
 * The in-process local executor for `run` steps (and `run` compensations): a shell in a
 * fresh temporary workspace per attempt, its output streamed to the step log, its outputs
 * read from the file named by BATON_OUTPUT (the $GITHUB_OUTPUT format).
 *
 * The shell runs in its own process group (detached), so that a timeout, a cancellation or
 * a shutdown stops the whole tree: SIGTERM to the group, then SIGKILL after a grace period.
 * Processes a step leaves behind in the background are killed when the step's shell exits.
 *
 * The shell's environment is the minimal inherited set (PATH, HOME, LANG, TZ, TMPDIR, USER,
 * SHELL; see step-env.ts), then `baseEnv`, then the step's own, then Baton's BATON_*
 * variables: never the whole environment of the process that runs it.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { StringDecoder } from "node:string_decoder";
import type { Json } from "../engine/types.js";
import type { Executor, StepExecution, StepOutcome } from "./executor.js";
import { minimalEnv } from "./step-env.js";

export interface LocalShellOptions {
  /** Where per-attempt workspaces are created. (Default: the OS temp directory) */
  tmpRoot?: string;
  /** Between SIGTERM and SIGKILL. (Default: 5000 ms) */
  killGraceMs?: number;
  /** Keep workspaces after the attempt, for debugging. (Default: false) */
  keepWorkspaces?: boolean;
  /**
   * Added to every step's environment, over the minimal set inherited from this process
   * (app/runner/step-env.ts) and under the step's own: a runner's configured `env` and
   * `secrets`. The rest of this process's environment never reaches a step. (Default: none)
   */
  baseEnv?: Record<string, string>;
  /**
   * Where running attempts record their process group, so that when this process dies
   * (SIGKILL, a crash) and the attempt runs again on this machine, the orphaned group of
   * the first execution is killed before the second starts. (Default: a directory in
   * the OS temp directory, per user)
   */
  stateDir?: string;
  /**
   * Called with the fresh workspace before the command starts (a runner clones the
   * repository here). A throw fails the attempt with its message. (Default: none)
   */
  prepare?: (workspace: string, execution: StepExecution) => Promise<void>;
  /**
   * Called with the workspace and the outcome after the command ends, before the
   * workspace is removed; returns the outcome to report (an agent adds its changed files).
   * (Default: none)
   */
  finish?: (
    workspace: string,
    outcome: StepOutcome,
    execution: StepExecution,
  ) => Promise<StepOutcome>;
}

/** How many trailing stderr lines a failure's error message quotes. */
const STDERR_TAIL_LINES = 10;

export function localShell(options: LocalShellOptions = {}): Executor {
  const killGraceMs = options.killGraceMs ?? 5000;
  const stateDir =
    options.stateDir ?? join(tmpdir(), `baton-running-${process.getuid?.() ?? "user"}`);
  return async (execution) => {
    const spec = asObject(execution.spec);
    const command = typeof spec.run === "string" ? spec.run : undefined;
    if (command === undefined) {
      return {
        outcome: "failure",
        outputs: {},
        retryable: false,
        error: "the step has no `run` command",
      };
    }
    const base = await mkdtemp(join(options.tmpRoot ?? tmpdir(), "baton-step-"));
    try {
      const workspace = join(base, "workspace");
      await mkdir(workspace);
      const outputFile = join(base, "output");
      await writeFile(outputFile, "");
      const cwd =
        typeof spec["working-directory"] === "string"
          ? resolve(workspace, spec["working-directory"])
          : workspace;
      await mkdir(cwd, { recursive: true });
      if (options.prepare) {
        try {
          await options.prepare(workspace, execution);
        } catch (error: unknown) {
          return {
            outcome: "failure",
            outputs: {},
            error: `could not prepare the workspace: ${error instanceof Error ? error.message : String(error)}`,
          };
        }
      }
      const env: Record<string, string> = {
        ...minimalEnv(),
        ...options.baseEnv,
        ...execution.env,
        BATON_RUN_ID: execution.runId,
        BATON_STEP: execution.step,
        BATON_ATTEMPT: String(execution.attempt),
        BATON_IDEMPOTENCY_KEY: execution.key,
        BATON_WORKSPACE: workspace,
        BATON_OUTPUT: outputFile,
        // Steps written for GitHub Actions write outputs here; same file, same format.
        GITHUB_OUTPUT: outputFile,
      };
      const shell = spec.shell === "sh" || !bashAvailable() ? "sh" : "bash";
      // Like GitHub Actions: stop at the first failing command, and in pipelines.
      const args =
        shell === "bash"
          ? ["--noprofile", "--norc", "-eo", "pipefail", "-c", command]
          : ["-e", "-c", command];
      const groupFile = join(
        stateDir,
        createHash("sha256").update(execution.key).digest("hex").slice(0, 32),
      );
      await mkdir(stateDir, { recursive: true });
      await killOrphan(groupFile, execution);
      const ended = await runProcessGroup(
        shell,
        args,
        { cwd, env, killGraceMs, groupFile },
        execution,
      );
      const outputs = parseOutputFile(await readFile(outputFile, "utf8").catch(() => ""));
      const outcome = outcomeOf(ended, outputs, execution);
      return options.finish ? await options.finish(workspace, outcome, execution) : outcome;
    } finally {
      if (!options.keepWorkspaces)
        await rm(base, { recursive: true, force: true }).catch(() => undefined);
    }
  };
}

function outcomeOf(
  ended: Ended,
  outputs: Record<string, string>,
  execution: StepExecution,
): StepOutcome {
  if (ended.stopped === "timeout") {
    return {
      outcome: "failure",
      outputs,
      error: `timed out${ended.tail ? `\n${ended.tail}` : ""}`,
    };
  }
  if (ended.stopped === "aborted") {
    return { outcome: "failure", outputs, error: `stopped: ${abortReason(execution.signal)}` };
  }
  if (ended.code === 0) return { outcome: "success", outputs };
  const how =
    ended.code !== null ? `exit code ${ended.code}` : `killed by ${ended.signal ?? "a signal"}`;
  return { outcome: "failure", outputs, error: ended.tail ? `${how}\n${ended.tail}` : how };
}

interface Ended {
  code: number | null;
  signal: NodeJS.Signals | null;
  stopped?: "timeout" | "aborted";
  /** The last lines of stderr. */
  tail: string;
}

function runProcessGroup(
  file: string,
  args: string[],
  options: { cwd: string; env: Record<string, string>; killGraceMs: number; groupFile: string },
  execution: StepExecution,
): Promise<Ended> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env,
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
    });
    if (child.pid !== undefined) {
      const record: GroupRecord = { pgid: child.pid, started: startTimeOf(child.pid) };
      writeFileSync(options.groupFile, JSON.stringify(record));
    }
    let stopped: Ended["stopped"];
    let tail = "";
    let killTimer: NodeJS.Timeout | undefined;
    let exitInfo: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    const signalGroup = (signal: NodeJS.Signals) => {
      if (child.pid === undefined) return;
      try {
        process.kill(-child.pid, signal);
      } catch {
        // ESRCH: the group is gone already.
      }
    };
    const stop = (why: "timeout" | "aborted") => {
      if (stopped || exitInfo) return;
      stopped = why;
      execution.log(
        "system",
        why === "timeout"
          ? "Timed out: stopping the step\n"
          : `Stopping the step: ${abortReason(execution.signal)}\n`,
      );
      signalGroup("SIGTERM");
      killTimer = setTimeout(() => signalGroup("SIGKILL"), options.killGraceMs);
    };
    const onAbort = () => stop("aborted");
    execution.signal.addEventListener("abort", onAbort, { once: true });
    const deadlineTimer =
      execution.deadline !== undefined
        ? setTimeout(() => stop("timeout"), Math.max(0, execution.deadline - Date.now()))
        : undefined;
    if (execution.signal.aborted) onAbort();

    for (const [stream, name] of [
      [child.stdout, "stdout"],
      [child.stderr, "stderr"],
    ] as const) {
      const decoder = new StringDecoder("utf8");
      stream.on("data", (data: Buffer) => {
        const text = decoder.write(data);
        if (text === "") return;
        execution.log(name, text);
        if (name === "stderr") tail = lastLines(tail + text, STDERR_TAIL_LINES);
      });
      stream.on("end", () => {
        const rest = decoder.end();
        if (rest !== "") execution.log(name, rest);
      });
    }
    // The shell exited; anything it left in the background (holding our pipes) is killed
    // after a moment, so that a step cannot outlive its attempt.
    child.on("exit", (code, signal) => {
      exitInfo = { code, signal };
      setTimeout(() => signalGroup("SIGKILL"), 1000).unref();
    });
    child.on("error", reject);
    child.on("close", (code, signal) => {
      clearTimeout(killTimer);
      clearTimeout(deadlineTimer);
      execution.signal.removeEventListener("abort", onAbort);
      // Whatever is left of the group goes too (e.g. a child that ignored SIGTERM but let go of the pipes).
      signalGroup("SIGKILL");
      rmSync(options.groupFile, { force: true });
      const info = exitInfo ?? { code, signal };
      resolvePromise({
        ...info,
        ...(stopped ? { stopped } : {}),
        tail: lastLines(tail, STDERR_TAIL_LINES).trimEnd(),
      });
    });
  });
}

/**
 * The $GITHUB_OUTPUT format: `name=value` lines, and `name<<DELIMITER` followed by the
 * value's lines and a line holding only DELIMITER. Later values win.
 */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index += 1) {
    const line = lines[index] ?? "";
    if (line.trim() === "") continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    const equals = line.indexOf("=");
    if (heredoc && (equals === -1 || equals > line.indexOf("<<"))) {
      const name = (heredoc[1] ?? "").trim();
      const delimiter = heredoc[2] ?? "";
      const value: string[] = [];
      index += 1;
      while (index < lines.length && lines[index] !== delimiter) {
        value.push(lines[index] ?? "");
        index += 1;
      }
      outputs[name] = value.join("\n");
    } else if (equals > 0) {
      outputs[line.slice(0, equals).trim()] = line.slice(equals + 1);
    }
  }
  return outputs;
}

interface GroupRecord {
  pgid: number;
  /** The group leader's start time (Linux: /proc/<pid>/stat), so that a reused pid is not mistaken for it. */
  started: string | undefined;
}

/**
 * A previous execution of this attempt on this machine left its process group behind
 * (its Baton process died): kill the group, if it is still the same one, and wait for it.
 * Without a start time to compare (not Linux), the group is left alone: killing a reused
 * pid would be worse than a duplicate execution, which the idempotency key covers.
 */
async function killOrphan(groupFile: string, execution: StepExecution): Promise<void> {
  let record: GroupRecord;
  try {
    record = JSON.parse(await readFile(groupFile, "utf8")) as GroupRecord;
  } catch {
    return;
  }
  const alive = () => record.started !== undefined && startTimeOf(record.pgid) === record.started;
  if (alive()) {
    execution.log(
      "system",
      `Stopping process group ${record.pgid} left by an earlier execution of this attempt\n`,
    );
    try {
      process.kill(-record.pgid, "SIGKILL");
    } catch {
      // Gone already.
    }
    for (let i = 0; i < 50 && alive(); i++) await new Promise((resolve) => setTimeout(resolve, 20));
  }
  rmSync(groupFile, { force: true });
}

/**
 * Kill every process group recorded in `stateDir` that is still the one recorded (a
 * runner that was killed left them running), and forget the records. Returns how many
 * groups were killed. Linux only (elsewhere the records are just removed; see killOrphan).
 */
export function killOrphanedGroups(stateDir: string): number {
  let killed = 0;
  let names: string[];
  try {
    names = readdirSync(stateDir);
  } catch {
    return 0;
  }
  for (const name of names) {
    const file = join(stateDir, name);
    try {
      const record = JSON.parse(readFileSync(file, "utf8")) as GroupRecord;
      if (record.started !== undefined && startTimeOf(record.pgid) === record.started) {
        process.kill(-record.pgid, "SIGKILL");
        killed += 1;
      }
    } catch {
      // Unreadable, or gone: nothing to kill.
    }
    rmSync(file, { force: true });
  }
  return killed;
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Field 22 (starttime), counted after the command name, which may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // A zombie has exited: its group leader is no longer running anything.
    return fields[0] === "Z" ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

function lastLines(text: string, count: number): string {
  const lines = text.split("\n");
  // Keep one more than asked: the last element is the unfinished line.
  return lines
    .slice(-(count + 1))
    .join("\n")
    .slice(-4096);
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason.message;
  return typeof reason === "string" ? reason : "cancelled";
}

function asObject(value: Json): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

let bash: boolean | undefined;
function bashAvailable(): boolean {
  bash ??= ["/bin/bash", "/usr/bin/bash", "/usr/local/bin/bash"].some((path) => existsSync(path));
  return bash;
}

export type { StepOutcome };
