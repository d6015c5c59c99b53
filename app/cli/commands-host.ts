/**
 * Commands that start or host runs: `run` (a local flow file, or a repository's live flow
 * with `--repo`), `serve`, `migrate`.
 */
import { readFile } from "node:fs/promises";
import { relative, resolve } from "node:path";
import type { Json } from "../engine/types.js";
import { parseCommandArgs, parseKeyValues, requireRepository } from "./args.js";
import { connect, dataDirOf } from "./connect.js";
import { followRun } from "./follow-run.js";
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";
import { migrate } from "../store/migrate.js";
import { openDatabase } from "../store/open-database.js";

export const runCommand: Command = async (args, io) => {
  const { values, positionals, help } = parseCommandArgs(args, {
    repo: { type: "string" },
    input: { type: "string", short: "i", multiple: true },
    wait: { type: "boolean", short: "w" },
    json: { type: "boolean" },
    text: { type: "boolean" },
    as: { type: "string" },
  });
  if (help) {
    io.stdout.write(
      "Usage: baton run <flow.yml> [key=value ...] [--input key=value ...] [--wait] [--json | --text] [--as LOGIN]\n" +
        "       baton run <flow> --repo OWNER/REPO [key=value ...] [--wait] [--json | --text]\n\n" +
        "Start a run of a local flow file, pinned to the file's content; or, with --repo, of the\n" +
        "live version of a repository's flow (.github/flows/<flow>.yml on the default branch,\n" +
        "which must declare on.manual) on a Baton app (--url or BATON_URL), as the account of\n" +
        "your GitHub token, which needs write permission on the repository.\n" +
        "  key=value    an input of the flow (on.manual.inputs); as many as needed\n" +
        "  --input, -i  the same, as an option; repeat for more\n" +
        "  --wait, -w   follow the run until it ends; the exit code is 0 for success, 1 otherwise\n" +
        "  --json       print JSON (the default when stdout is not a terminal)\n" +
        "  --text       print text even when stdout is not a terminal\n\n" +
        "On the embedded database, when no Baton process is running, the run is executed\n" +
        "in this process and `run` waits for it; other terminals can approve, signal or\n" +
        "cancel it meanwhile.\n",
    );
    return EXIT.ok;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError(`missing ${values.repo ? "<flow>" : "<flow.yml>"}`);
  const extra = positionals.slice(1);
  const notInput = extra.find((arg) => arg.indexOf("=") <= 0);
  if (notInput !== undefined)
    throw new UsageError(`unexpected argument '${notInput}' (inputs are given as key=value)`);
  if (values.json && values.text) throw new UsageError("--json and --text exclude each other");
  const inputs: Record<string, Json> = {
    ...parseKeyValues(values.input, "--input"),
    ...parseKeyValues(extra, "an input"),
  };
  const json = values.json === true || (values.text !== true && io.stdout.isTTY !== true);
  if (values.repo !== undefined) {
    return runLiveFlow(io, {
      repository: requireRepository(values.repo),
      flow: file,
      inputs,
      wait: values.wait === true,
      json,
      as: values.as,
    });
  }
  const path = resolve(io.cwd, file);
  let source: string;
  try {
    source = await readFile(path, "utf8");
  } catch (error: unknown) {
    const hint =
      /^[\w.-]+$/.test(file) && !/\.ya?ml$/.test(file)
        ? ` (to start a repository's live flow, add --repo owner/repo)`
        : "";
    throw new UsageError(
      `cannot read ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}${hint}`,
    );
  }

  // On the embedded database with nobody else running, this process must execute the run.
  // (When a Baton process already holds it, `connect` returns that process's API instead.)
  const embedded = !io.env.DATABASE_URL && !io.env.BATON_URL;
  const session = await connect(io, { actor: values.as, host: values.wait === true || embedded });
  if (session.hosted && !values.wait && !json) {
    io.stderr.write(
      "No Baton process is running: executing the run here (start `baton serve` to run flows in the background).\n",
    );
  }
  const stop = () =>
    void session.close().then(() => {
      io.stderr.write(
        "\nStopped following. The run goes on the next time a Baton process runs (`baton serve`).\n",
      );
      process.exit(130);
    });
  process.once("SIGINT", stop);
  try {
    const started = await session.api.startRun({
      flowFile: { path: relative(io.cwd, path) || path, source },
      inputs,
    });
    if (session.hosted || values.wait) {
      if (!json) io.stdout.write(`${started.flow} #${started.number}  run ${started.id}\n`);
      return await followRun(session, io, started.id, { json });
    }
    if (json) io.stdout.write(`${JSON.stringify(started, null, 2)}\n`);
    else
      io.stdout.write(
        `Started ${started.flow} #${started.number} (run ${started.id}). Follow it with \`baton show ${started.id.slice(0, 8)}\`.\n`,
      );
    return EXIT.ok;
  } finally {
    process.removeListener("SIGINT", stop);
    await session.close();
  }
};

/** `baton run <flow> --repo owner/repo`: the live version, started by the app. */
async function runLiveFlow(
  io: CliIo,
  request: {
    repository: string;
    flow: string;
    inputs: Record<string, Json>;
    wait: boolean;
    json: boolean;
    as: string | undefined;
  },
): Promise<number> {
  if (!io.env.BATON_URL && !io.env.DATABASE_URL)
    throw new UsageError(
      "--repo starts a repository's live flow on a Baton app: give its address with --url or BATON_URL " +
        "(and a GitHub token: GITHUB_TOKEN, BATON_TOKEN or `gh auth login`)",
    );
  const session = await connect(io, { actor: request.as });
  try {
    const started = await session.api.startLiveRun({
      repository: request.repository,
      flow: request.flow,
      inputs: request.inputs,
    });
    const ref = `${request.repository}/${started.flow}#${started.number}`;
    if (request.wait) {
      if (!request.json) io.stdout.write(`${ref}  run ${started.id}\n`);
      return await followRun(session, io, started.id, { json: request.json });
    }
    if (request.json) io.stdout.write(`${JSON.stringify(started, null, 2)}\n`);
    else
      io.stdout.write(
        `Started ${ref} (run ${started.id}). Follow it with \`baton show ${ref}\`.\n`,
      );
    return EXIT.ok;
  } finally {
    await session.close();
  }
}

export const serveCommand: Command = async (args, io) => {
  const { help } = parseCommandArgs(args, {});
  if (help) {
    io.stdout.write(
      "Usage: baton serve\n\nRun flows in the background: execute runs, fire timers, and serve the run API\n" +
        "to other `baton` commands. Stops on Ctrl-C or SIGTERM; runs go on at the next start.\n",
    );
    return EXIT.ok;
  }
  const session = await connect(io, { host: true });
  if (!session.hosted) {
    await session.close();
    io.stderr.write(`Another Baton process already serves ${dataDirOf(io)}.\n`);
    return EXIT.failure;
  }
  io.stderr.write(
    `Baton is running on ${io.env.DATABASE_URL ? "Postgres" : dataDirOf(io)}. Ctrl-C stops it.\n`,
  );
  await new Promise<void>((done) => {
    process.once("SIGINT", done);
    process.once("SIGTERM", done);
  });
  await session.close();
  io.stderr.write("Stopped.\n");
  return EXIT.ok;
};

export const migrateCommand: Command = async (args, io) => {
  const { values, help } = parseCommandArgs(args, { json: { type: "boolean" } });
  if (help) {
    io.stdout.write(
      "Usage: baton migrate [--json]\n\nApply the database migrations (every Baton process also does at start).\n",
    );
    return EXIT.ok;
  }
  const db = await openDatabase({ env: io.env, cwd: io.cwd, migrate: false });
  try {
    const applied = await migrate(db);
    if (values.json) io.stdout.write(`${JSON.stringify({ applied })}\n`);
    else
      io.stdout.write(
        applied.length === 0
          ? "The database is up to date.\n"
          : `Applied migrations ${applied.join(", ")}.\n`,
      );
    return EXIT.ok;
  } finally {
    await db.close();
  }
};
