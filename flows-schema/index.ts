/** The flow format's public API: parse and check a flow file, its types and its schema. */
export { parseFlow, flowNameFromFile } from "./parse-flow.js";
export type { ParseResult } from "./parse-flow.js";
export { FlowValidationError, parseFlowOrThrow } from "./flow-validation-error.js";
export type { Diagnostic, DocumentPath, Severity } from "./diagnostic.js";
export { formatPath } from "./diagnostic.js";
export { checkSemantics, knownOutputs } from "./check-semantics.js";
export type { SemanticFinding } from "./check-semantics.js";
export { DURATION_RANGES, NUMBER_RANGES, formatDuration, parseDuration } from "./durations.js";
export {
  MAX_ALIAS_COUNT,
  MAX_DIAGNOSTICS,
  MAX_NESTING,
  MAX_SOURCE_BYTES,
  MAX_STEPS,
} from "./limits.js";
export * from "./schema.js";
export * from "./expressions.js";
