/**
 * Runs the bundled action (action/dist/index.js) as GitHub Actions' runner does: inputs as
 * INPUT_* variables (with action.yml's defaults for those not given), the runner's GITHUB_*
 * variables, and the file commands (GITHUB_OUTPUT, GITHUB_STATE, GITHUB_ENV) in a fresh
 * temporary directory. Used by the action's tests and by end-to-end tests that play the
 * part of a workflow job.
 */
import { spawn } from "node:child_process";
import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { readFileSync } from "node:fs";
import { parse } from "yaml";

/** The repository's root, from dist/test/action/run-action.js. */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const actionEntry = join(repoRoot, "action/dist/index.js");

export interface RunActionOptions {
  /** By input name as in action.yml (`step-token`); absent ones take action.yml's default. */
  inputs: Record<string, string>;
  /** Added last: overrides the GITHUB_* variables set here. */
  env?: Record<string, string>;
  /** The event payload at GITHUB_EVENT_PATH. (Default: {}) */
  event?: object;
  /** (Default: a fresh temporary directory) */
  cwd?: string;
  /** The action is killed after this long. (Default: 60 000 ms) */
  timeoutMs?: number;
}

export interface ActionResult {
  code: number;
  stdout: string;
  stderr: string;
  /** What the action wrote to GITHUB_OUTPUT (core.setOutput). */
  outputs: Record<string, string>;
}

/** GitHub's rule for an input's variable: spaces to `_`, upper-cased; hyphens stay. */
export const inputVariable = (name: string): string =>
  `INPUT_${name.replace(/ /g, "_").toUpperCase()}`;

/** action.yml's inputs and their defaults, which the runner passes when a workflow does not. */
function actionDefaults(): Record<string, string> {
  const manifest = parse(readFileSync(join(repoRoot, "action/action.yml"), "utf8")) as {
    inputs?: Record<string, { default?: string | number | boolean }>;
  };
  const defaults: Record<string, string> = {};
  for (const [name, input] of Object.entries(manifest.inputs ?? {}))
    if (input.default !== undefined) defaults[name] = String(input.default);
  return defaults;
}

/** Only what a runner's process would have of ours: the shell's path, home and Node's settings. */
function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value === undefined) continue;
    // node --test marks its children with NODE_TEST_CONTEXT; the action is not a test file.
    if (name === "NODE_TEST_CONTEXT") continue;
    if (name === "PATH" || name === "HOME" || name.startsWith("NODE_")) env[name] = value;
  }
  return env;
}

/**
 * GITHUB_OUTPUT's lines: `name<<DELIMITER`, the value's lines, `DELIMITER` (what
 * core.setOutput writes), or the older one-line `name=value`.
 */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let index = 0; index < lines.length; index++) {
    const line = lines[index] ?? "";
    if (line === "") continue;
    const heredoc = /^([^=]+?)<<(.+)$/.exec(line);
    if (heredoc !== null) {
      const [, name = "", delimiter] = heredoc;
      const value: string[] = [];
      for (index++; index < lines.length && lines[index] !== delimiter; index++)
        value.push(lines[index] ?? "");
      if (index >= lines.length)
        throw new Error(`GITHUB_OUTPUT: no closing ${delimiter} for ${name}`);
      outputs[name] = value.join("\n");
      continue;
    }
    const equals = line.indexOf("=");
    if (equals < 0) throw new Error(`GITHUB_OUTPUT: unreadable line '${line}'`);
    outputs[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return outputs;
}

export async function runAction(options: RunActionOptions): Promise<ActionResult> {
  const temp = await mkdtemp(join(tmpdir(), "baton-action-"));
  try {
    const files = {
      output: join(temp, "github_output"),
      state: join(temp, "github_state"),
      env: join(temp, "github_env"),
      event: join(temp, "event.json"),
    };
    const runnerTemp = join(temp, "runner_temp");
    const workspace = options.cwd ?? join(temp, "workspace");
    await Promise.all([
      writeFile(files.output, ""),
      writeFile(files.state, ""),
      writeFile(files.env, ""),
      writeFile(files.event, JSON.stringify(options.event ?? {})),
      mkdir(runnerTemp, { recursive: true }),
      mkdir(workspace, { recursive: true }),
    ]);
    const inputs = { ...actionDefaults(), ...options.inputs };
    const event = options.event ?? {};
    const env: Record<string, string> = {
      ...inheritedEnv(),
      CI: "true",
      GITHUB_ACTIONS: "true",
      GITHUB_OUTPUT: files.output,
      GITHUB_STATE: files.state,
      GITHUB_ENV: files.env,
      GITHUB_EVENT_PATH: files.event,
      GITHUB_EVENT_NAME: "inputs" in event ? "workflow_dispatch" : "push",
      GITHUB_REPOSITORY: "octo-org/app",
      GITHUB_REPOSITORY_OWNER: "octo-org",
      GITHUB_RUN_ID: "4242",
      GITHUB_RUN_ATTEMPT: "1",
      GITHUB_RUN_NUMBER: "7",
      GITHUB_SERVER_URL: "https://github.com",
      GITHUB_API_URL: "https://api.github.com",
      GITHUB_WORKFLOW: "build",
      GITHUB_WORKSPACE: workspace,
      GITHUB_JOB: "build",
      GITHUB_ACTOR: "octocat",
      RUNNER_TEMP: runnerTemp,
      RUNNER_OS: "Linux",
      ...Object.fromEntries(
        Object.entries(inputs).map(([name, value]) => [inputVariable(name), value]),
      ),
      ...options.env,
    };
    const { code, stdout, stderr } = await spawnNode(actionEntry, {
      cwd: workspace,
      env,
      timeoutMs: options.timeoutMs ?? 60_000,
    });
    return { code, stdout, stderr, outputs: parseOutputFile(await readFile(files.output, "utf8")) };
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}

function spawnNode(
  script: string,
  options: { cwd: string; env: Record<string, string>; timeoutMs: number },
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [script], {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => (stderr += chunk));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      if (signal !== null)
        reject(
          new Error(
            `the action was killed (${signal}) after ${options.timeoutMs} ms:\n${stdout}${stderr}`,
          ),
        );
      else resolvePromise({ code: code ?? 1, stdout, stderr });
    });
  });
}
