/**
 * `baton <command>`: one table of commands, each loaded only when called so that
 * `baton validate` does not pay for the database driver.
 */
import type { CliIo, Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";

const commands: Record<string, { summary: string; load: () => Promise<Command> }> = {
  validate: {
    summary: "Check flow files and print every error with file, line and column",
    load: async () => (await import("./validate.js")).validateCommand,
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
    return await (await command.load())(args, io);
  } catch (error: unknown) {
    if (error instanceof UsageError) {
      io.stderr.write(`baton ${name}: ${error.message}\nRun \`baton ${name} --help\` for usage.\n`);
      return EXIT.usage;
    }
    const message = error instanceof Error ? error.message : String(error);
    io.stderr.write(`baton ${name}: ${message}\n`);
    return EXIT.error;
  }
}
