/** Start and stop runtime child processes (test/runtime/runtime-child.ts) against a Postgres URL. */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

const entry = fileURLToPath(new URL("../runtime/runtime-child.js", import.meta.url));

export interface ChildRuntime {
  process: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

export async function startChildRuntime(
  url: string,
  options: { concurrency?: number; leaseMs?: number } = {},
): Promise<ChildRuntime> {
  const child = spawn(process.execPath, [entry], {
    env: {
      ...process.env,
      BATON_CHILD_DATABASE_URL: url,
      BATON_CHILD_CONCURRENCY: String(options.concurrency ?? 4),
      BATON_CHILD_LEASE_MS: String(options.leaseMs ?? 30_000),
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let text = "";
    child.stdout.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes("ready")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`runtime child exited early with code ${code}`)));
  });
  return { process: child, exited };
}

export async function stopChildRuntime(
  child: ChildRuntime,
  signal: NodeJS.Signals = "SIGTERM",
): Promise<void> {
  if (child.process.exitCode === null && child.process.signalCode === null)
    child.process.kill(signal);
  await child.exited;
}
