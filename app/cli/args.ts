/**
 * Argument parsing for every command: node's `parseArgs`, with its errors turned into
 * `UsageError` (exit code 2) and `--help` handled the same way everywhere.
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { UsageError } from "./io.js";

type Options = NonNullable<ParseArgsConfig["options"]>;

export interface ParsedArgs<O extends Options> {
  values: {
    [K in keyof O]?: O[K] extends { type: "boolean" }
      ? boolean
      : O[K] extends { multiple: true }
        ? string[]
        : string;
  };
  positionals: string[];
}

export function parseCommandArgs<O extends Options>(
  args: string[],
  options: O,
): ParsedArgs<O> & { help: boolean } {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    const { help, ...rest } = values as Record<string, unknown>;
    return { values: rest as ParsedArgs<O>["values"], positionals, help: help === true };
  } catch (error: unknown) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}

/** `k=v` pairs (from `--input k=v`) into an object; a value is kept as the string given. */
export function parseKeyValues(pairs: string[] | undefined, flag: string): Record<string, string> {
  const result: Record<string, string> = {};
  for (const pair of pairs ?? []) {
    const equals = pair.indexOf("=");
    if (equals <= 0) throw new UsageError(`${flag} expects key=value, got '${pair}'`);
    result[pair.slice(0, equals)] = pair.slice(equals + 1);
  }
  return result;
}

/** `owner/repo`, checked for shape only (GitHub says whether it exists). */
export function requireRepository(value: string | undefined, what = "--repo"): string {
  if (value === undefined || value === "") throw new UsageError(`missing ${what} owner/repo`);
  if (!/^[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+$/.test(value))
    throw new UsageError(`${what} must be owner/repo, e.g. acme/widgets; got '${value}'`);
  return value;
}
