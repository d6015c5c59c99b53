/**
 * What a CLI command may touch: its arguments, streams and environment. Commands receive
 * this instead of reaching for `process`, so tests run them in-process and read what they
 * printed.
 */
export interface CliIo {
  stdout: { write(text: string): unknown; isTTY?: boolean };
  stderr: { write(text: string): unknown; isTTY?: boolean };
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** Exit codes, the same for every command: agents branch on them. */
export const EXIT = {
  ok: 0,
  /** The command ran and the answer is "no": invalid flow, failed run, refused approval. */
  failure: 1,
  /** The command was called wrongly: unknown flag, missing argument. Nothing was done. */
  usage: 2,
  /** Something outside the command failed: database unreachable, file unreadable. */
  error: 3,
  /**
   * Not authenticated (no token, or one GitHub does not accept) or not allowed (the
   * permission GitHub reports on the repository is too low): log in or ask for access.
   */
  denied: 4,
} as const;

export type Command = (args: string[], io: CliIo) => Promise<number>;

/** Wrong arguments. Caught by `main`, printed with the command's usage, exit code 2. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
