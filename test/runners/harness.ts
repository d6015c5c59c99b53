/**
 * Runner tests' harness: a Baton server child (server-child.ts) on a fresh database, real
 * `baton runner` processes against it, and the run API to start and watch runs.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { Running } from "../cli/baton-process.js";
import { baton, startBaton, waitFor } from "../cli/baton-process.js";
import type { Backend, TestDatabase } from "../helpers/db.js";
import { createTestDatabase } from "../helpers/db.js";

const SERVER_ENTRY = fileURLToPath(new URL("./server-child.js", import.meta.url));
export const FAKE_AGENT = fileURLToPath(new URL("./fake-agent.js", import.meta.url));

export interface RunJson {
  id: string;
  state: {
    status: string;
    steps: Record<
      string,
      {
        result?: string;
        status: string;
        attempt: number;
        outputs: Record<string, string>;
        compensation?: string;
      }
    >;
  };
  events: Array<{
    type: string;
    step?: string;
    attempt?: number;
    error?: string;
    outcome?: string;
  }>;
}

export interface Harness {
  backend: Backend;
  url: string;
  token: string;
  /** Postgres only: the test's own connection to the server's database. */
  database?: TestDatabase;
  dir: string;
  api<T = Record<string, unknown>>(method: string, path: string, body?: unknown): Promise<T>;
  startRun(source: string): Promise<string>;
  run(id: string): Promise<RunJson>;
  waitForRun(id: string, done: (run: RunJson) => boolean): Promise<RunJson>;
  logs(id: string): Promise<string>;
  registrationToken(extra?: string[]): Promise<string>;
  runner(options: RunnerProcessOptions): Promise<RunnerProcess>;
  close(): Promise<void>;
}

export interface RunnerProcessOptions {
  name: string;
  labels?: string[];
  concurrency?: number;
  token?: string;
  config?: string;
}

export interface RunnerProcess extends Running {
  stateDir: string;
  /** Everything the runner printed on stderr so far. */
  output(): string;
}

export async function startHarness(
  backend: Backend,
  env: Record<string, string> = {},
): Promise<Harness> {
  const database = await createTestDatabase(backend);
  const dir = await mkdtemp(join(tmpdir(), "baton-runners-test-"));
  let dataDir: string | undefined;
  if (backend === "pglite") {
    // The child owns the embedded database (one process at a time).
    dataDir = database.dataDir;
    await database.db.close();
  }
  const child: ChildProcess = spawn(process.execPath, [SERVER_ENTRY], {
    env: {
      ...process.env,
      ...(database.url ? { BATON_RUNNERS_DATABASE_URL: database.url } : {}),
      ...(dataDir ? { BATON_RUNNERS_PGLITE_DIR: dataDir } : {}),
      ...env,
    },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const { url, token } = await new Promise<{ url: string; token: string }>((resolve, reject) => {
    let text = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      text += chunk.toString();
      const line = text.split("\n").find((l) => l.startsWith("{"));
      if (line && text.includes("\n")) resolve(JSON.parse(line) as { url: string; token: string });
    });
    child.once("exit", (code) => reject(new Error(`the server child exited early (${code})`)));
  });
  const runners: RunnerProcess[] = [];

  const api = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const response = await fetch(new URL(path, url), {
      method,
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const parsed = (await response.json()) as T;
    if (!response.ok)
      throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(parsed)}`);
    return parsed;
  };
  const run = (id: string) => api<RunJson>("GET", `/api/runs/${id}`);
  const harness: Harness = {
    backend,
    url,
    token,
    ...(backend === "postgres" ? { database } : {}),
    dir,
    api,
    async startRun(source) {
      const started = await api<{ id: string }>("POST", "/api/runs", {
        flowFile: { path: join(dir, "flow.yml"), source },
        inputs: {},
      });
      return started.id;
    },
    run,
    waitForRun: (id, done) =>
      waitFor(async () => {
        const current = await run(id);
        return done(current) ? current : undefined;
      }),
    async logs(id) {
      const lines = await api<Array<{ text: string }> | { lines: Array<{ text: string }> }>(
        "GET",
        `/api/runs/${id}/logs`,
      );
      const list = Array.isArray(lines) ? lines : lines.lines;
      return list.map((line) => line.text).join("");
    },
    async registrationToken(extra = []) {
      const created = await baton(["--url", url, "runner-token", "create", "--json", ...extra], {
        env: { BATON_TOKEN: token },
      });
      if (created.code !== 0) throw new Error(`runner-token create failed: ${created.stderr}`);
      return (JSON.parse(created.stdout) as { token: string }).token;
    },
    async runner(options) {
      const stateDir = await mkdtemp(join(dir, `runner-${options.name}-`));
      const args = ["--url", url, "runner", "--name", options.name, "--state-dir", stateDir];
      args.push("--token", options.token ?? (await harness.registrationToken()));
      for (const label of options.labels ?? []) args.push("--label", label);
      if (options.concurrency !== undefined)
        args.push("--concurrency", String(options.concurrency));
      const config = join(stateDir, "config.yml");
      await writeFile(
        config,
        options.config ?? `env: { WHO: ${options.name} }\nkill-grace-ms: 1000\n`,
      );
      args.push("--config", config);
      let stderr = "";
      const running = startBaton(args, { timeoutMs: 300_000 });
      const withOutput = running as Running & { exited: Running["exited"] };
      void withOutput.exited.then((finished) => (stderr = finished.stderr));
      const process: RunnerProcess = {
        ...running,
        stateDir,
        output: () => stderr,
      };
      runners.push(process);
      // Registered and polling: its identity file is written before it polls.
      await waitFor(async () => {
        const { existsSync } = await import("node:fs");
        return existsSync(join(stateDir, "runner.json")) ? true : undefined;
      }, 30_000);
      return process;
    },
    async close() {
      for (const runner of runners) runner.kill("SIGKILL");
      await Promise.all(runners.map((runner) => runner.exited));
      child.kill("SIGTERM");
      await exited;
      if (backend === "postgres") await database.drop();
      else if (dataDir) await rm(dataDir, { recursive: true, force: true });
      await rm(dir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** Whether a process is gone (a zombie counts as gone: it runs nothing). */
export async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return true;
  }
  const { readFile } = await import("node:fs/promises");
  const stat = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
  return stat === "" || stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
}
