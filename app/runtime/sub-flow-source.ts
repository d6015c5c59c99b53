/**
 * Where the file of a `flow` step's sub-flow comes from: a port the runtime's
 * `start-sub-run` handler takes (`subRunTask`). Locally (`localSubFlows`) it is the file
 * beside the parent flow's file; the GitHub app gives one that reads the parent's
 * repository at the parent version's commit. A source answers `{ error }` for what the
 * flow's author must fix (no such file, an invalid one): the step fails with it. It
 * throws for what may pass (GitHub unreachable): the task is tried again.
 */
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { flowNameFromFile, parseFlow } from "../../flows-schema/parse-flow.js";
import type { Diagnostic } from "../../flows-schema/diagnostic.js";
import type { FlowVersion, Run } from "../store/model.js";
import { sha256 } from "./content-hash.js";
import type { LoadedSubFlow } from "./run-door.js";

export interface SubFlowSource {
  /** The sub-flow `name` of `parent`'s flow: read, parsed and validated, not yet stored. */
  load(parent: { run: Run; version: FlowVersion }, name: string): Promise<LoadedSubFlow>;
}

/** A sub-flow's name is a file name without extension, never a path. */
export function subFlowNameError(name: string): string | undefined {
  if (/^[A-Za-z0-9_.-]+$/.test(name) && !name.startsWith(".")) return undefined;
  return `sub-flow name "${name}" must be a flow file name (letters, digits, _ - .), not a path`;
}

/** The error of an invalid sub-flow file, with every error's place. */
export function invalidSubFlow(path: string, diagnostics: readonly Diagnostic[]): string {
  const errors = diagnostics.filter((d) => d.severity === "error");
  return `sub-flow ${path} is invalid:\n${errors.map((d) => `${d.file}:${d.line}:${d.column}: ${d.message}`).join("\n")}`;
}

/** Local flows: `<name>.yml` (or `.yaml`) beside the parent flow's file, read now. */
export const localSubFlows: SubFlowSource = {
  async load({ version }, name) {
    if (version.sourceKind !== "local")
      return {
        error:
          "`flow` steps of repository flows are started by the GitHub App; run `baton` against an app (BATON_URL).",
      };
    const refused = subFlowNameError(name);
    if (refused !== undefined) return { error: refused };
    const dir = dirname(version.path);
    const candidates = [join(dir, `${name}.yml`), join(dir, `${name}.yaml`)];
    for (const path of candidates) {
      let source: string;
      try {
        source = await readFile(path, "utf8");
      } catch (error: unknown) {
        if ((error as NodeJS.ErrnoException).code === "ENOENT") continue;
        return { error: `cannot read sub-flow ${path}: ${(error as Error).message}` };
      }
      const parsed = parseFlow(source, path);
      if (!parsed.flow) return { error: invalidSubFlow(path, parsed.diagnostics) };
      return {
        file: {
          sourceKind: "local",
          repository: version.repository,
          path,
          sha: sha256(source),
          name: flowNameFromFile(path),
          definition: parsed.flow,
          source,
        },
      };
    }
    return {
      error: `sub-flow "${name}" not found: expected ${candidates[0]} beside the parent flow`,
    };
  },
};
