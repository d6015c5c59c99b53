/**
 * The runner's configuration file (YAML): what this machine offers and the secrets it
 * keeps. Flow files name labels, agents and hosts; credentials stay here (DESIGN rule 6).
 *
 * ```yaml
 * name: build-box-1                 # (Default: the host name)
 * labels: [linux, gpu]              # besides `self-hosted`, which every runner has
 * concurrency: 2                    # steps at once (Default: 1)
 * kill-grace-ms: 3000               # SIGTERM → SIGKILL when a step is stopped (Default: 3000)
 * env: { NODE_ENV: production }     # added to every step's environment, under the step's own
 * secrets: { NPM_TOKEN: … }         # the same, and masked (***) in the step's log, outputs and error
 * agents:                           # `agent:` steps; `{prompt}` etc. become "$BATON_AGENT_PROMPT" etc.
 *   claude: { command: "claude -p {prompt} --max-turns {max_turns}", default: true }
 *   codex:  { command: "codex exec {prompt}" }
 * ssh:                              # `runs-on: { ssh: build-vm }` (see app/runner/ssh/); the
 *   build-vm:                       # runner advertises the label `ssh:build-vm` for each host
 *     host: 10.0.0.5
 *     port: 22                      # (Default: 22)
 *     user: ci
 *     key: /home/ci/.ssh/id_ed25519 # a private key file, read at each step
 *     host-key: "SHA256:…"          # pinned host key fingerprint(s) (`ssh-keygen -lf`)
 *     accept-any-host-key: false    # only for throwaway hosts on a trusted network
 * ```
 *
 * A step's environment is the minimal set the runner inherits (app/runner/step-env.ts:
 * PATH, HOME, LANG, TZ, TMPDIR, USER, SHELL), then `env` and `secrets`, then the flow's
 * own: nothing else of the runner's process environment (its token, its shell's
 * credentials) reaches a step. Proxies and the like a step needs go under `env`.
 */
import { readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { parse } from "yaml";
import { MIN_SECRET_CHARS } from "./secret-masker.js";
import type { SshHostConfig } from "./ssh/host-config.js";

export interface AgentCommand {
  /** A shell command template: {prompt}, {max_turns}, {budget_usd} become references to variables (agent.ts). */
  command: string;
  /** The agent of `agent:` steps that name none. */
  default?: boolean;
}

/** An SSH host of the configuration: the SSH executor's own settings (app/runner/ssh/). */
export type SshHost = SshHostConfig;

export interface RunnerConfig {
  name: string;
  labels: string[];
  concurrency: number;
  killGraceMs: number;
  /** Every variable the runner adds to a step's environment: `env` and `secrets`. */
  env: Record<string, string>;
  /** The configuration's `secrets` (also in `env`): masked wherever a step shows them. */
  secrets: Record<string, string>;
  agents: Record<string, AgentCommand>;
  ssh: Record<string, SshHost>;
}

export class RunnerConfigError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`${file}: ${message}`);
    this.name = "RunnerConfigError";
  }
}

export function defaultRunnerConfig(): RunnerConfig {
  return {
    name: hostname(),
    labels: [],
    concurrency: 1,
    killGraceMs: 3000,
    env: {},
    secrets: {},
    agents: {},
    ssh: {},
  };
}

export async function readRunnerConfig(file: string): Promise<RunnerConfig> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error: unknown) {
    throw new RunnerConfigError(
      file,
      `cannot read it (${(error as NodeJS.ErrnoException).code ?? String(error)})`,
    );
  }
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (error: unknown) {
    throw new RunnerConfigError(file, `not valid YAML: ${(error as Error).message}`);
  }
  return parseRunnerConfig(raw ?? {}, file);
}

export function parseRunnerConfig(raw: unknown, file = "runner configuration"): RunnerConfig {
  const config = defaultRunnerConfig();
  if (typeof raw !== "object" || raw === null || Array.isArray(raw))
    throw new RunnerConfigError(
      file,
      "must be a mapping (name, labels, concurrency, env, secrets, agents, ssh)",
    );
  const object = raw as Record<string, unknown>;
  const known = new Set([
    "name",
    "labels",
    "concurrency",
    "kill-grace-ms",
    "env",
    "secrets",
    "agents",
    "ssh",
  ]);
  for (const key of Object.keys(object))
    if (!known.has(key))
      throw new RunnerConfigError(file, `unknown key "${key}" (known: ${[...known].join(", ")})`);
  if (object.name !== undefined) {
    if (typeof object.name !== "string" || object.name === "")
      throw new RunnerConfigError(file, "name must be a non-empty string");
    config.name = object.name;
  }
  if (object.labels !== undefined) {
    if (
      !Array.isArray(object.labels) ||
      object.labels.some((l) => typeof l !== "string" || l === "")
    )
      throw new RunnerConfigError(file, "labels must be a list of non-empty strings");
    config.labels = object.labels as string[];
  }
  for (const [key, field] of [
    ["concurrency", "concurrency"],
    ["kill-grace-ms", "killGraceMs"],
  ] as const) {
    const value = object[key];
    if (value === undefined) continue;
    if (
      typeof value !== "number" ||
      !Number.isInteger(value) ||
      value < (key === "concurrency" ? 1 : 0)
    )
      throw new RunnerConfigError(
        file,
        `${key} must be a whole number${key === "concurrency" ? " ≥ 1" : " ≥ 0"}`,
      );
    config[field] = value;
  }
  if (object.env !== undefined) {
    if (typeof object.env !== "object" || object.env === null || Array.isArray(object.env))
      throw new RunnerConfigError(file, "env must be a mapping of names to values");
    for (const [name, value] of Object.entries(object.env)) config.env[name] = String(value);
  }
  if (object.secrets !== undefined) {
    if (
      typeof object.secrets !== "object" ||
      object.secrets === null ||
      Array.isArray(object.secrets)
    )
      throw new RunnerConfigError(file, "secrets must be a mapping of names to values");
    for (const [name, raw] of Object.entries(object.secrets)) {
      const value = String(raw);
      if (Object.hasOwn(config.env, name))
        throw new RunnerConfigError(
          file,
          `${name} is under both env and secrets; keep it under secrets only`,
        );
      if (value.length < MIN_SECRET_CHARS)
        throw new RunnerConfigError(
          file,
          `secrets.${name} is shorter than ${MIN_SECRET_CHARS} characters: masking it would hide ` +
            "ordinary text all over the logs; use a longer secret, or put it under env if it is not one",
        );
      config.secrets[name] = value;
      config.env[name] = value;
    }
  }
  if (object.agents !== undefined) {
    if (typeof object.agents !== "object" || object.agents === null)
      throw new RunnerConfigError(file, "agents must be a mapping of agent names to { command }");
    for (const [name, value] of Object.entries(object.agents as Record<string, unknown>)) {
      const agent = (typeof value === "string" ? { command: value } : value) as Record<
        string,
        unknown
      > | null;
      if (!agent || typeof agent.command !== "string" || agent.command === "")
        throw new RunnerConfigError(
          file,
          `agents.${name}.command must be a command template, e.g. "claude -p {prompt}"`,
        );
      config.agents[name] = {
        command: agent.command,
        ...(agent.default === true ? { default: true } : {}),
      };
    }
  }
  if (object.ssh !== undefined) {
    if (typeof object.ssh !== "object" || object.ssh === null)
      throw new RunnerConfigError(
        file,
        "ssh must be a mapping of host names to { host, user, key }",
      );
    for (const [name, value] of Object.entries(object.ssh as Record<string, unknown>)) {
      const host = value as Record<string, unknown> | null;
      if (!host || typeof host.host !== "string" || typeof host.user !== "string")
        throw new RunnerConfigError(file, `ssh.${name} needs host and user`);
      const known = [
        "host",
        "port",
        "user",
        "key",
        "passphrase",
        "host-key",
        "accept-any-host-key",
      ];
      const unknown = Object.keys(host).find((key) => !known.includes(key));
      if (unknown !== undefined)
        throw new RunnerConfigError(
          file,
          `ssh.${name}: unknown key "${unknown}" (known: ${known.join(", ")})`,
        );
      const hostKey = host["host-key"];
      if (hostKey !== undefined && typeof hostKey !== "string" && !Array.isArray(hostKey))
        throw new RunnerConfigError(
          file,
          `ssh.${name}.host-key must be a fingerprint or a list of them`,
        );
      config.ssh[name] = {
        host: host.host,
        username: host.user,
        ...(typeof host.port === "number" ? { port: host.port } : {}),
        ...(typeof host.key === "string" ? { privateKeyPath: host.key } : {}),
        ...(typeof host.passphrase === "string" ? { passphrase: host.passphrase } : {}),
        ...(hostKey !== undefined ? { hostKey: hostKey as string | string[] } : {}),
        ...(host["accept-any-host-key"] === true ? { acceptAnyHostKey: true } : {}),
      };
    }
  }
  return config;
}

/** The labels a runner registers with: its own, and `ssh:<name>` for each SSH host. */
export function advertisedLabels(config: RunnerConfig): string[] {
  return [...new Set([...config.labels, ...Object.keys(config.ssh).map((name) => `ssh:${name}`)])];
}

/** The agent an `agent:` step asks for (`use`), or the default one. */
export function agentFor(
  config: RunnerConfig,
  use: string | undefined,
): { name: string; agent: AgentCommand } | undefined {
  if (use !== undefined) {
    const agent = config.agents[use];
    return agent ? { name: use, agent } : undefined;
  }
  const entries = Object.entries(config.agents);
  const chosen =
    entries.find(([, agent]) => agent.default) ?? (entries.length === 1 ? entries[0] : undefined);
  return chosen ? { name: chosen[0], agent: chosen[1] } : undefined;
}
