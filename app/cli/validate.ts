/**
 * `baton validate [paths…]`: check flow files and report every problem with file, line
 * and column, compiler-style for people and as JSON (`--json`) for tools and agents.
 *
 * Exit codes: 0 every file is valid (warnings allowed), 1 some file has an error,
 * 2 usage error (unknown flag, a path that does not exist, a directory without flow
 * files), 3 a file exists but cannot be read.
 *
 * The JSON shape is stable: `{ "valid": boolean, "files": [{ "file", "valid",
 * "diagnostics": [{ file, line, column, endLine, endColumn, severity, message, path }] }] }`.
 */
import { readdir, readFile, stat } from "node:fs/promises";
import { isAbsolute, join, relative, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Diagnostic } from "../../flows-schema/index.js";
import { parseFlow } from "../../flows-schema/index.js";
import type { Command } from "./io.js";
import { EXIT, UsageError } from "./io.js";

/** Where flows live in a repository (docs/architecture.md), validated when no path is given. */
export const DEFAULT_FLOW_DIRECTORY = ".github/flows";

const USAGE = `Usage: baton validate [options] [paths…]

Check flow files: the YAML, the schema, the step graph and every \${{ }} expression.
A path is a flow file or a directory of them (*.yml, *.yaml; not recursive).
(Default: ${DEFAULT_FLOW_DIRECTORY})

Options:
  --json      Print {"valid", "files": [{"file", "valid", "diagnostics"}]} instead of text
  -h, --help  Show this help

Exit codes: 0 valid (warnings allowed), 1 invalid, 2 usage error, 3 a file could not be read.
`;

export interface FileReport {
  /** The path as printed: relative to the working directory when inside it. */
  file: string;
  valid: boolean;
  diagnostics: Diagnostic[];
}

export const validateCommand: Command = async (args, io) => {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      allowPositionals: true,
      strict: true,
      options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
    });
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    const unknown = /Unknown option '([^']+)'/.exec(message);
    throw new UsageError(unknown ? `unknown option ${unknown[1]}` : message);
  }
  if (parsed.values.help) {
    io.stdout.write(USAGE);
    return EXIT.ok;
  }
  const paths = parsed.positionals.length > 0 ? parsed.positionals : [DEFAULT_FLOW_DIRECTORY];
  const files = await expandPaths(paths, io.cwd);
  const reports: FileReport[] = [];
  const sources = new Map<string, string>();
  for (const file of files) {
    const shown = displayPath(file, io.cwd);
    let source: string;
    try {
      source = await readFile(file, "utf8");
    } catch (error: unknown) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(`cannot read ${shown}: ${reason}`, { cause: error });
    }
    sources.set(shown, source);
    const { flow, diagnostics } = parseFlow(source, shown);
    reports.push({ file: shown, valid: flow !== undefined, diagnostics });
  }
  const valid = reports.every((report) => report.valid);
  if (parsed.values.json) {
    io.stdout.write(`${JSON.stringify({ valid, files: reports }, null, 2)}\n`);
  } else {
    const color = io.stdout.isTTY === true && io.env.NO_COLOR === undefined;
    for (const report of reports) {
      for (const diagnostic of report.diagnostics) {
        io.stdout.write(renderDiagnostic(diagnostic, sources.get(report.file) ?? "", color));
      }
    }
    io.stdout.write(summary(reports));
  }
  return valid ? EXIT.ok : EXIT.failure;
};

/** Files named, and the flow files of directories named, in a stable order. */
async function expandPaths(paths: string[], cwd: string): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const absolute = isAbsolute(path) ? path : resolve(cwd, path);
    const info = await stat(absolute).catch(() => undefined);
    if (!info) {
      const hint =
        path === DEFAULT_FLOW_DIRECTORY && paths.length === 1
          ? " (run it at a repository's root, or name flow files)"
          : "";
      throw new UsageError(`no such file or directory: ${path}${hint}`);
    }
    if (info.isDirectory()) {
      const names = (await readdir(absolute)).filter((name) => /\.ya?ml$/i.test(name)).sort();
      if (names.length === 0) throw new UsageError(`no flow files (*.yml, *.yaml) in ${path}`);
      files.push(...names.map((name) => join(absolute, name)));
    } else files.push(absolute);
  }
  return [...new Set(files)];
}

function displayPath(file: string, cwd: string): string {
  const relativePath = relative(cwd, file);
  return relativePath.startsWith("..") || isAbsolute(relativePath) ? file : relativePath;
}

/**
 * `file:line:col: error: message`, the source line, and carets under the range (to the end
 * of the line when the range spans lines), like compilers print them.
 */
export function renderDiagnostic(diagnostic: Diagnostic, source: string, color = false): string {
  const paint = (code: string, text: string) => (color ? `\u001b[${code}m${text}\u001b[0m` : text);
  const severity =
    diagnostic.severity === "error" ? paint("1;31", "error") : paint("1;33", "warning");
  let text = `${diagnostic.file}:${diagnostic.line}:${diagnostic.column}: ${severity}: ${diagnostic.message}\n`;
  const line = source.split("\n")[diagnostic.line - 1]?.replace(/\r$/, "");
  if (line === undefined || line.length > 500) return text; // minified junk: the position says enough
  const gutter = String(diagnostic.line);
  const start = Math.min(diagnostic.column - 1, line.length);
  const end =
    diagnostic.endLine === diagnostic.line
      ? Math.max(diagnostic.endColumn - 1, start + 1)
      : Math.max(line.length, start + 1);
  // Keep tabs in the lead so the carets line up under tabbed text.
  const lead = line.slice(0, start).replace(/[^\t]/g, " ");
  text += ` ${gutter} | ${line}\n`;
  text += ` ${" ".repeat(gutter.length)} | ${lead}${paint(diagnostic.severity === "error" ? "31" : "33", "^".repeat(end - start))}\n`;
  return text;
}

function plural(count: number, word: string): string {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

/** One line: how many files, errors and warnings. */
export function summary(reports: FileReport[]): string {
  const all = reports.flatMap((report) => report.diagnostics);
  const errors = all.filter((diagnostic) => diagnostic.severity === "error").length;
  const warnings = all.length - errors;
  const invalid = reports.filter((report) => !report.valid).length;
  const checked = plural(reports.length, "flow file");
  if (invalid === 0) {
    return `${checked} valid${warnings > 0 ? `, ${plural(warnings, "warning")}` : ""}\n`;
  }
  return `${plural(invalid, "invalid flow file")} of ${reports.length}: ${plural(errors, "error")}, ${plural(warnings, "warning")}\n`;
}
