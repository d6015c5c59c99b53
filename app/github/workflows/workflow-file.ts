/**
 * What Baton needs to know of an Actions workflow file before dispatching it: where it is
 * (`workflow:` of a step), whether it can be dispatched, which inputs it declares, and
 * whether its `run-name` carries Baton's step token (for the 204 fallback).
 */
import { parse } from "yaml";

/** The input a workflow declares to receive Baton's step token. */
export const BATON_INPUT = "baton";

export interface WorkflowTarget {
  /** owner/repo */
  repository: string;
  /** e.g. `.github/workflows/build.yml` */
  path: string;
}

/**
 * `build.yml` or `.github/workflows/build.yml` (this repository), or
 * `owner/repo/.github/workflows/build.yml` (another repository of the installation).
 */
export function workflowTarget(spec: string, runRepository: string): WorkflowTarget {
  const file = /^[^/]+\.ya?ml$/;
  if (file.test(spec)) return { repository: runRepository, path: `.github/workflows/${spec}` };
  const own = /^\.github\/workflows\/[^/]+\.ya?ml$/;
  if (own.test(spec)) return { repository: runRepository, path: spec };
  const other = /^([A-Za-z0-9_.-]+)\/([A-Za-z0-9_.-]+)\/(\.github\/workflows\/[^/]+\.ya?ml)$/.exec(
    spec,
  );
  if (other) return { repository: `${other[1]}/${other[2]}`, path: other[3] ?? "" };
  throw new WorkflowStepError(
    `\`workflow: ${spec}\` names no workflow file: write \`build.yml\` (a file of this ` +
      "repository's .github/workflows/) or `owner/repo/.github/workflows/build.yml`",
  );
}

export interface WorkflowFile {
  dispatchable: boolean;
  /** Declared `on.workflow_dispatch.inputs`, by name. */
  inputs: Map<string, { required: boolean; hasDefault: boolean }>;
  /** Whether `run-name` mentions `inputs.baton` (so a run's title carries its token). */
  runNameCarriesToken: boolean;
}

/** Read a workflow file's dispatch trigger; throws WorkflowStepError when it cannot be read. */
export function readWorkflowFile(source: string, where: string): WorkflowFile {
  let document: unknown;
  try {
    document = parse(source, { maxAliasCount: 100 });
  } catch (error: unknown) {
    throw new WorkflowStepError(`${where} is not valid YAML: ${(error as Error).message}`);
  }
  const root = asMap(document) ?? {};
  const on = root.on ?? root.true; // YAML 1.1 readers turn `on` into true; GitHub does not
  const dispatch =
    on === "workflow_dispatch" ||
    (Array.isArray(on) && on.includes("workflow_dispatch")) ||
    (asMap(on) !== undefined && "workflow_dispatch" in (asMap(on) ?? {}));
  const declared = asMap(asMap(asMap(on)?.workflow_dispatch)?.inputs) ?? {};
  const inputs = new Map<string, { required: boolean; hasDefault: boolean }>();
  for (const [name, definition] of Object.entries(declared)) {
    const spec = asMap(definition) ?? {};
    inputs.set(name, { required: spec.required === true, hasDefault: spec.default !== undefined });
  }
  const runName = typeof root["run-name"] === "string" ? root["run-name"] : "";
  return {
    dispatchable: dispatch,
    inputs,
    runNameCarriesToken: /inputs\.baton\b/.test(runName),
  };
}

/** A problem of the step itself (its workflow, its inputs): retrying cannot help. */
export class WorkflowStepError extends Error {
  override readonly name = "WorkflowStepError";
}

function asMap(value: unknown): Record<string, unknown> | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}
