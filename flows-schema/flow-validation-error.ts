/**
 * For callers that need a flow or nothing (loading a flow version to start a run): the
 * diagnostics as an error with the first problem's position, so logs and API responses
 * say where to look.
 */
import type { Diagnostic } from "./diagnostic.js";
import type { FlowDefinition } from "./schema.js";
import { parseFlow } from "./parse-flow.js";

export class FlowValidationError extends Error {
  readonly file: string;
  readonly line: number;
  readonly column: number;

  constructor(readonly diagnostics: Diagnostic[]) {
    const errors = diagnostics.filter((diagnostic) => diagnostic.severity === "error");
    const first = errors[0] ?? diagnostics[0];
    const more = errors.length > 1 ? ` (and ${errors.length - 1} more)` : "";
    super(
      first
        ? `${first.file}:${first.line}:${first.column}: ${first.message}${more}; run \`baton validate ${first.file}\` for every problem`
        : "invalid flow",
    );
    this.name = "FlowValidationError";
    this.file = first?.file ?? "";
    this.line = first?.line ?? 1;
    this.column = first?.column ?? 1;
  }
}

/** `parseFlow` for callers that cannot go on without a valid flow. Warnings are dropped. */
export function parseFlowOrThrow(source: string, file: string): FlowDefinition {
  const { flow, diagnostics } = parseFlow(source, file);
  if (!flow) throw new FlowValidationError(diagnostics);
  return flow;
}
