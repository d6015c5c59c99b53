/** Runs the real `baton` binary as a child process, as a person in a terminal would. */
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

/** The repository root, from dist/test/cli/. */
export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const BIN = fileURLToPath(new URL("../../../bin/baton.js", import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Running {
  exited: Promise<Finished>;
  kill(signal?: NodeJS.Signals): void;
}

export function startBaton(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Running {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...process.env, NO_COLOR: "1", ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 120_000);
  const exited = new Promise<Finished>((resolve) => {
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { exited, kill: (signal) => child.kill(signal) };
}

export function baton(
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<Finished> {
  return startBaton(args, options).exited;
}

/** Polls until `probe` returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined>,
  timeoutMs = 90_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** A flow that waits for the signal `go` and passes its payload on (through env, never pasted into the script). */
export const SIGNAL_FLOW = `
steps:
  hold:
    wait: { signal: go }
  after:
    needs: hold
    env: { GOT: "\${{ steps.hold.outputs.payload }}" }
    run: echo "got=$GOT" >> "$BATON_OUTPUT"
    outputs: [got]
`;
