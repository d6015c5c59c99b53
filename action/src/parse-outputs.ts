/**
 * The outputs a workflow hands back, from the `outputs` input (a JSON object, or
 * `name=value` lines) and the `outputs-file` input (a JSON object in a file).
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { InputError } from "./errors.js";
import { parseJsonInput } from "./parse-json.js";

/** Baton's rule for output names (the same as its flow's `outputs:` keys). */
export const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function checkName(name: string, where: string): void {
  if (!OUTPUT_NAME.test(name))
    throw new InputError(
      `Output name '${name}' in ${where} is not valid: names start with a letter or _ and ` +
        "hold letters, digits, _ and - only.",
    );
}

/**
 * Baton's outputs are strings: a string is kept as it is, any other JSON value is sent as
 * its JSON text (`3`, `true`, `{"a":1}`), which a flow reads back with `fromJSON`.
 */
function fromObject(value: unknown, where: string): Record<string, string> {
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new InputError(
      `${where} must be a JSON object of output names to values, e.g. {"version": "1.2.3"}.`,
    );
  const outputs: Record<string, string> = {};
  for (const [name, item] of Object.entries(value)) {
    checkName(name, where);
    outputs[name] = typeof item === "string" ? item : JSON.stringify(item);
  }
  return outputs;
}

/** `name=value` per line; blank lines are skipped; the value is everything after the first `=`. */
function fromLines(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  for (const [index, rawLine] of text.split("\n").entries()) {
    const line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
    if (line.trim() === "") continue;
    const equals = line.indexOf("=");
    if (equals < 0)
      throw new InputError(
        `Line ${index + 1} of \`outputs\` is not name=value: '${line}'. ` +
          "Write one name=value per line, or a JSON object (for values with several lines).",
      );
    const name = line.slice(0, equals).trim();
    checkName(name, "`outputs`");
    if (name in outputs) throw new InputError(`Output '${name}' is given twice in \`outputs\`.`);
    outputs[name] = line.slice(equals + 1);
  }
  return outputs;
}

/** The `outputs` input: JSON when it starts with `{`, else `name=value` lines. */
export function parseOutputsInput(text: string): Record<string, string> {
  if (text.trim().startsWith("{"))
    return fromObject(parseJsonInput(text, "`outputs`"), "`outputs`");
  return fromLines(text);
}

/** The `outputs-file` input: a path (relative to the working directory) to a JSON object. */
export function readOutputsFile(path: string, cwd: string): Record<string, string> {
  const where = `\`outputs-file\` (${path})`;
  let text: string;
  try {
    text = readFileSync(resolve(cwd, path), "utf8");
  } catch (error: unknown) {
    throw new InputError(
      `Cannot read ${where}: ${error instanceof Error ? error.message : String(error)}. ` +
        "Write the file in an earlier step, or fix the path (it is relative to the job's working directory).",
      { cause: error },
    );
  }
  return fromObject(parseJsonInput(text, where), where);
}

/** Both inputs together; a name in both is refused rather than one silently winning. */
export function mergeOutputs(
  fromFile: Record<string, string>,
  fromInput: Record<string, string>,
): Record<string, string> {
  for (const name of Object.keys(fromInput))
    if (name in fromFile)
      throw new InputError(
        `Output '${name}' is in both \`outputs\` and \`outputs-file\`: give it in one of them.`,
      );
  return { ...fromFile, ...fromInput };
}
