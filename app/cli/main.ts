/**
 * `baton <command>`: one table of commands, each loaded only when called so that
 * `baton validate` does not pay for the database driver.
 */
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";
import { errorStatus } from "../http/error-status.js";

const runs = () => import("./commands-runs.js");
const host = () => import("./commands-host.js");

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  validate: {
    summary: "Check flow files and print every error with file, line and column",
    load: async () => (await import("./validate.js")).validateCommand,
  },
  run: { summary: "Start a run of a flow file", load: async () => (await host()).runCommand },
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
  serve: {
    summary: "Execute runs in the background and serve the run API",
    load: async () => (await host()).serveCommand,
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
  return `Usage: baton <command> [options]\n\nCommands:\n${lines.join("\n")}\n\nRun \`baton <command> --help\` for a command's options.\n`;
}

export async function main(argv: string[], io: CliIo): Promise<number> {
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
      io.stdout.write(`${JSON.stringify({ error: { code: errorStatus(error).code, message } })}\n`);
    }
    io.stderr.write(`baton ${name}: ${message}\n`);
    return isRefusal(error) ? EXIT.failure : EXIT.error;
  }
}

/** Errors that answer "no" (not found, refused, invalid input) rather than "something broke". */
function isRefusal(error: unknown): boolean {
  const status = errorStatus(error).status;
  return status >= 400 && status < 500;
}
