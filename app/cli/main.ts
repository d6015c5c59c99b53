/**
 * `baton <command>`: one table of commands, each loaded only when called so that
 * `baton validate` does not pay for the database driver.
 */
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";
import { errorExtra, errorStatus } from "../http/error-status.js";

const runs = () => import("./commands-runs.js");
const host = () => import("./commands-host.js");

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  validate: {
    summary: "Check flow files and print every error with file, line and column",
    load: async () => (await import("./validate.js")).validateCommand,
  },
  run: {
    summary: "Start a run of a flow file, or of a repository's live flow (--repo)",
    load: async () => (await host()).runCommand,
  },
  runs: { summary: "List runs", load: async () => (await runs()).runsCommand },
  show: {
    summary: "Show a run: steps, outputs, history",
    load: async () => (await runs()).showCommand,
  },
  logs: { summary: "Print a run's step output", load: async () => (await runs()).logsCommand },
  approve: {
    summary: "Approve a waiting approval step",
    load: async () => (await runs()).approveCommand,
  },
  reject: {
    summary: "Reject a waiting approval step",
    load: async () => (await runs()).rejectCommand,
  },
  signal: {
    summary: "Send a named signal to a run",
    load: async () => (await runs()).signalCommand,
  },
  cancel: {
    summary: "Cancel a run (with compensation)",
    load: async () => (await runs()).cancelCommand,
  },
  retry: {
    summary: "Rerun a finished run from its failed steps",
    load: async () => (await runs()).retryCommand,
  },
  "webhook-secret": {
    summary: "Show (or rotate) a flow's webhook-trigger secret; repository admins",
    load: async () => (await runs()).webhookSecretCommand,
  },
  serve: {
    summary: "Execute runs in the background and serve the run API",
    load: async () => (await host()).serveCommand,
  },
  runner: {
    summary: "Run steps of a Baton on this machine (a self-hosted runner)",
    load: async () => (await import("./commands-runner.js")).runnerCommand,
  },
  "runner-token": {
    summary: "Create a registration token for runners; repository or organisation admins",
    load: async () => (await import("./commands-runner.js")).runnerTokenCommand,
  },
  runners: {
    summary: "List registered runners, or revoke one",
    load: async () => (await import("./commands-runner.js")).runnersCommand,
  },
  migrate: {
    summary: "Apply database migrations",
    load: async () => (await host()).migrateCommand,
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((name) => name.length));
  const lines = Object.entries(commands).map(
    ([name, { summary }]) => `  ${name.padEnd(width)}  ${summary}`,
  );
  return (
    `Usage: baton [--url URL] <command> [options]\n\nCommands:\n${lines.join("\n")}\n\n` +
    "Run `baton <command> --help` for a command's options.\n\n" +
    "Where the runs are:\n" +
    "  --url URL, BATON_URL  a running Baton (the GitHub app): commands act there, as the owner\n" +
    "                        of a GitHub token from BATON_TOKEN, GITHUB_TOKEN or `gh auth token`;\n" +
    "                        the app checks that account's permission on the repository\n" +
    "  otherwise             this machine: DATABASE_URL, or the embedded database in .baton/\n\n" +
    "Exit codes:\n" +
    "  0  done\n" +
    "  1  the answer is no: invalid flow or inputs, failed run, not found, refused approval\n" +
    "  2  wrong arguments; nothing was done\n" +
    "  3  something broke: database or server unreachable, internal error\n" +
    "  4  not authenticated (no or bad token) or not allowed (permission too low)\n" +
    'With --json, an error is printed as {"error": {"code", "message", ...}} on stdout.\n'
  );
}

/**
 * `--url URL` (or `--url=URL`), wherever it is before `--`, becomes BATON_URL for the
 * command: one option for every command without each parsing it.
 */
function takeUrlOption(argv: string[], io: CliIo): { argv: string[]; io: CliIo } {
  const rest: string[] = [];
  let url: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "--") {
      rest.push(...argv.slice(i));
      break;
    }
    if (arg === "--url") {
      url = argv[i + 1];
      if (url === undefined || url.startsWith("-")) throw new UsageError("--url needs a URL");
      i++;
    } else if (arg.startsWith("--url=")) {
      url = arg.slice("--url=".length);
    } else {
      rest.push(arg);
    }
  }
  if (url === undefined) return { argv, io };
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url must be a URL such as https://baton.example.com, got '${url}'`);
  }
  return { argv: rest, io: { ...io, env: { ...io.env, BATON_URL: url } } };
}

export async function main(argv: string[], givenIo: CliIo): Promise<number> {
  let io = givenIo;
  try {
    ({ argv, io } = takeUrlOption(argv, givenIo));
  } catch (error: unknown) {
    io.stderr.write(`baton: ${(error as Error).message}\n`);
    return EXIT.usage;
  }
  const [name, ...args] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    io.stdout.write(usage());
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = commands[name];
  if (!command) {
    io.stderr.write(`baton: unknown command '${name}'\n\n${usage()}`);
    return EXIT.usage;
  }
  try {
    return await (
      await command.load()
    )(args, io);
  } catch (error: unknown) {
    if (error instanceof UsageError) {
      io.stderr.write(`baton ${name}: ${error.message}\nRun \`baton ${name} --help\` for usage.\n`);
      return EXIT.usage;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (args.includes("--json")) {
      const { code } = errorStatus(error);
      io.stdout.write(`${JSON.stringify({ error: { code, message, ...errorExtra(error) } })}\n`);
    }
    io.stderr.write(`baton ${name}: ${message}\n`);
    return exitCodeOf(error);
  }
}

/**
 * 401 and 403: denied (log in, or ask for access); other 4xx: the answer is no (not found,
 * refused, invalid input); anything else: something broke.
 */
function exitCodeOf(error: unknown): number {
  const status = errorStatus(error).status;
  if (status === 401 || status === 403) return EXIT.denied;
  return status >= 400 && status < 500 ? EXIT.failure : EXIT.error;
}
