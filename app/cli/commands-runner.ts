/**
 * Self-hosted runners: `runner` (the runner process), `runner-token` (registration
 * tokens, for admins), `runners` (list and revoke).
 *
 * Admin commands act on the Baton named by --url/BATON_URL (the app: a GitHub token of a
 * repository or organisation admin), or on the local Baton: the process that serves the
 * embedded database (`baton serve`, its token from .baton/server.json), or the database
 * itself (DATABASE_URL, or the embedded one when nobody serves it); locally, you are admin.
 */
import { existsSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseCommandArgs, requireRepository } from "./args.js";
import { dataDirOf } from "./connect.js";
import { sshHostExecutor } from "../runner/ssh/ssh-executor.js";
import type { Database } from "../store/database.js";
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";
import type { RunnerConfig } from "../runner/runner-config.js";
import {
  advertisedLabels,
  defaultRunnerConfig,
  readRunnerConfig,
  RunnerConfigError,
} from "../runner/runner-config.js";
import {
  defaultStateDir,
  readIdentity,
  registerWithServer,
  RunnerRefusedError,
  startRunner,
  writeIdentity,
} from "../runner/runner-process.js";

export const runnerCommand: Command = async (args, io) => {
  const { values, help } = parseCommandArgs(args, {
    token: { type: "string" },
    name: { type: "string" },
    label: { type: "string", short: "l", multiple: true },
    concurrency: { type: "string", short: "c" },
    config: { type: "string" },
    "state-dir": { type: "string" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton runner --url URL --token TOKEN [--label L ...] [--concurrency N] [--name NAME]\n" +
        "                    [--config FILE] [--state-dir DIR]\n\n" +
        "Run steps of a Baton on this machine: claim steps whose `runs-on` labels this runner has,\n" +
        "run up to N at a time, stream their output and report their results. Stops on Ctrl-C or\n" +
        "SIGTERM (running steps get 10 s to finish, then run again elsewhere).\n\n" +
        "  --token      a registration token (baton_rr_…, from `baton runner-token create`): the runner\n" +
        "               registers once and keeps its own token in the state directory (mode 0600);\n" +
        "               later starts need no token. A runner token (baton_rt_…) is used as is.\n" +
        "  --label, -l  a label (besides self-hosted); repeat for more; added to the config file's\n" +
        "  --concurrency, -c  steps at once (Default: the config file's, else 1)\n" +
        "  --name       the runner's name (Default: the config file's, else the host name)\n" +
        "  --config     the configuration file: labels, env, agents, SSH hosts (see app/runner/\n" +
        "               runner-config.ts) (Default: <state-dir>/config.yml if it exists)\n" +
        "  --state-dir  (Default: $XDG_STATE_HOME/baton/runner, else ~/.local/state/baton/runner)\n",
    );
    return EXIT.ok;
  }
  const stateDir = resolve(io.cwd, values["state-dir"] ?? defaultStateDir(io.env));
  const configFile = values.config ?? join(stateDir, "config.yml");
  let config: RunnerConfig = defaultRunnerConfig();
  if (values.config !== undefined || existsSync(configFile)) {
    try {
      config = await readRunnerConfig(configFile);
    } catch (error: unknown) {
      if (!(error instanceof RunnerConfigError)) throw error;
      io.stderr.write(`baton runner: ${error.message}\n`);
      return EXIT.usage;
    }
  }
  if (values.name !== undefined) config.name = values.name;
  config.labels = [...new Set([...config.labels, ...(values.label ?? [])])];
  if (values.concurrency !== undefined) {
    const n = Number(values.concurrency);
    if (!Number.isInteger(n) || n < 1)
      throw new UsageError("--concurrency must be a whole number ≥ 1");
    config.concurrency = n;
  }

  let identity = readIdentity(stateDir);
  const url = io.env.BATON_URL ?? identity?.url;
  if (!url)
    throw new UsageError(
      "give the Baton's address: --url URL (the app, or a `baton serve` on this machine)",
    );
  const token = values.token ?? io.env.BATON_RUNNER_TOKEN;
  if (token?.startsWith("baton_rr_")) {
    try {
      identity = await registerWithServer(url, {
        registrationToken: token,
        name: config.name,
        labels: advertisedLabels(config),
      });
    } catch (error: unknown) {
      io.stderr.write(`baton runner: ${(error as Error).message}\n`);
      return error instanceof RunnerRefusedError ? EXIT.denied : EXIT.error;
    }
    writeIdentity(stateDir, identity);
    io.stderr.write(
      `Registered runner ${identity.name} (${identity.runnerId}); its token is in ${stateDir}.\n`,
    );
  } else if (token !== undefined) {
    identity = { url, runnerId: "?", name: config.name, token, labels: config.labels };
  } else if (!identity) {
    throw new UsageError(
      "this runner is not registered: give --token with a registration token (`baton runner-token create`)",
    );
  }

  const runner = startRunner({
    url,
    token: identity.token,
    config,
    stateDir,
    sshExecutor: (host, name) =>
      sshHostExecutor(name, host, { killGraceMs: config.killGraceMs, baseEnv: config.env }),
    log: (line) => void io.stderr.write(`${new Date().toISOString()} ${line}\n`),
  });
  const onSignal = () => void runner.stop();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const end = await runner.stopped;
  process.removeListener("SIGINT", onSignal);
  process.removeListener("SIGTERM", onSignal);
  return end.fatal ? EXIT.denied : EXIT.ok;
};

/** Where admin commands act: over HTTP (the app, or the local server), or on the database. */
type AdminTarget = { kind: "http"; url: string; token: string } | { kind: "database" };

function adminTarget(io: CliIo): AdminTarget {
  if (io.env.BATON_URL) {
    const token = io.env.BATON_TOKEN || io.env.GITHUB_TOKEN;
    if (!token)
      throw new UsageError(
        "give a GitHub token of an admin: BATON_TOKEN or GITHUB_TOKEN (`gh auth token`)",
      );
    return { kind: "http", url: io.env.BATON_URL, token };
  }
  if (!io.env.DATABASE_URL) {
    try {
      const server = JSON.parse(readFileSync(join(dataDirOf(io), "server.json"), "utf8")) as {
        url: string;
        token: string;
      };
      return { kind: "http", url: server.url, token: server.token };
    } catch {
      // Nobody serves the embedded database: open it here.
    }
  }
  return { kind: "database" };
}

async function adminRequest(
  target: Extract<AdminTarget, { kind: "http" }>,
  method: string,
  path: string,
  body?: unknown,
): Promise<Record<string, unknown>> {
  const response = await fetch(new URL(path, target.url), {
    method,
    headers: { "content-type": "application/json", authorization: `Bearer ${target.token}` },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const parsed = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const message =
      (parsed.error as { message?: string } | undefined)?.message ?? `HTTP ${response.status}`;
    throw Object.assign(new Error(message), { status: response.status });
  }
  return parsed;
}

async function withDatabase<T>(io: CliIo, fn: (db: Database) => Promise<T>): Promise<T> {
  const { openDatabase } = await import("../store/open-database.js");
  const db = await openDatabase({ env: io.env, cwd: io.cwd });
  try {
    return await fn(db);
  } finally {
    await db.close();
  }
}

export const runnerTokenCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    repo: { type: "string" },
    org: { type: "string" },
    expires: { type: "string" },
    json: { type: "boolean" },
  });
  if (help || positionals[0] !== "create") {
    io.stdout.write(
      "Usage: baton runner-token create [--repo OWNER/REPO | --org ORG] [--expires MINUTES] [--json]\n\n" +
        "Create a registration token for `baton runner --token`: runners registered with it take\n" +
        "steps of that repository (or organisation). On the app you must be an admin of it; on a\n" +
        "local Baton you are, and without --repo/--org the runners take every local run's steps.\n" +
        "The token works for --expires minutes (Default: 60), for any number of runners.\n",
    );
    return help ? EXIT.ok : EXIT.usage;
  }
  if (values.repo !== undefined && values.org !== undefined)
    throw new UsageError("--repo and --org exclude each other");
  const repository = values.repo !== undefined ? requireRepository(values.repo) : undefined;
  const expiresInMs = values.expires !== undefined ? Number(values.expires) * 60_000 : undefined;
  if (expiresInMs !== undefined && !(expiresInMs > 0))
    throw new UsageError("--expires must be a number of minutes");
  const target = adminTarget(io);
  let created: { token: string; expiresAt: string; scope: unknown };
  if (target.kind === "http") {
    created = (await adminRequest(target, "POST", "/api/runners/registration-tokens", {
      ...(repository !== undefined ? { repository } : {}),
      ...(values.org !== undefined ? { organization: values.org } : {}),
      ...(expiresInMs !== undefined ? { expiresInMs } : {}),
    })) as typeof created;
  } else {
    const { createRegistrationToken } = await import("../store/runner-jobs.js");
    const { userInfo } = await import("node:os");
    const scope =
      repository !== undefined
        ? ({ kind: "repository", name: repository } as const)
        : values.org !== undefined
          ? ({ kind: "organization", name: values.org } as const)
          : ({ kind: "local", name: "*" } as const);
    const made = await withDatabase(io, (db) =>
      createRegistrationToken(db, {
        scope,
        createdBy: io.env.BATON_USER ?? userInfo().username,
        expiresInMs: expiresInMs ?? 3600_000,
      }),
    );
    created = { token: made.token, expiresAt: made.expiresAt.toISOString(), scope };
  }
  if (values.json) io.stdout.write(`${JSON.stringify(created, null, 2)}\n`);
  else
    io.stdout.write(
      `${created.token}\n` +
        (io.stdout.isTTY
          ? `Valid until ${created.expiresAt}. Start a runner: baton runner --url <this Baton> --token <the token>\n`
          : ""),
    );
  return EXIT.ok;
};

export const runnersCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    repo: { type: "string" },
    org: { type: "string" },
    json: { type: "boolean" },
  });
  const [verb = "list", id] = positionals;
  if (help || (verb !== "list" && verb !== "revoke")) {
    io.stdout.write(
      "Usage: baton runners [list] [--repo OWNER/REPO | --org ORG] [--json]\n" +
        "       baton runners revoke RUNNER_ID\n\n" +
        "List registered runners, or revoke one: its token is refused from then on, and the steps\n" +
        "it holds run again elsewhere once their leases run out.\n",
    );
    return help ? EXIT.ok : EXIT.usage;
  }
  const target = adminTarget(io);
  if (verb === "revoke") {
    if (id === undefined) throw new UsageError("missing RUNNER_ID");
    let revoked: boolean;
    if (target.kind === "http") {
      revoked =
        (await adminRequest(target, "DELETE", `/api/runners/${encodeURIComponent(id)}`)).revoked ===
        true;
    } else {
      const { revokeRunner } = await import("../store/runner-jobs.js");
      revoked = await withDatabase(io, (db) => revokeRunner(db, id));
    }
    io.stdout.write(
      values.json
        ? `${JSON.stringify({ revoked, runnerId: id })}\n`
        : revoked
          ? `Revoked runner ${id}.\n`
          : `Runner ${id} was already revoked (or is unknown).\n`,
    );
    return revoked ? EXIT.ok : EXIT.failure;
  }
  let runners: {
    id: string;
    name: string;
    labels: string[];
    revokedAt?: unknown;
    lastSeenAt?: unknown;
    scope: { kind: string; name: string };
  }[];
  if (target.kind === "http") {
    const query =
      values.repo !== undefined
        ? `?repository=${encodeURIComponent(values.repo)}`
        : values.org !== undefined
          ? `?organization=${encodeURIComponent(values.org)}`
          : "";
    runners = (await adminRequest(target, "GET", `/api/runners${query}`)).runners as typeof runners;
  } else {
    const { listRunners } = await import("../store/runner-jobs.js");
    runners = await withDatabase(io, (db) =>
      listRunners(
        db,
        values.repo !== undefined
          ? { kind: "repository", name: values.repo }
          : values.org !== undefined
            ? { kind: "organization", name: values.org }
            : undefined,
      ),
    );
  }
  if (values.json || io.stdout.isTTY !== true) {
    io.stdout.write(`${JSON.stringify(runners, null, 2)}\n`);
    return EXIT.ok;
  }
  for (const runner of runners)
    io.stdout.write(
      `${runner.id}  ${runner.name}  [${runner.labels.join(", ")}]  ${runner.scope.kind}:${runner.scope.name}${runner.revokedAt ? "  revoked" : ""}\n`,
    );
  if (runners.length === 0) io.stdout.write(`No runners.\n`);
  return EXIT.ok;
};
