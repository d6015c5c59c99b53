/**
 * One mapping from errors to what callers see: an HTTP status and a stable code. The API
 * server answers with it, and the CLI turns it into an exit code (401 and 403: 4, not
 * authenticated or not allowed; other 4xx: 1, the answer is no; anything else: 3,
 * something broke), so a refusal reads the same locally and remotely.
 */
import {
  AmbiguousRunRefError,
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  FlowInvalidError,
  FlowVersionNotFoundError,
  InvalidInputsError,
  RunFinishedError,
  RunNotFinishedError,
  RunNotFoundError,
  StepNotFoundError,
  StepNotWaitingError,
} from "../runtime/index.js";
import { ApiError } from "./api.js";
import {
  AuthenticationError,
  GitHubUnavailableError,
  LiveFlowNotFoundError,
  LocalFlowRefusedError,
  PermissionDeniedError,
  RepositoryNotServedError,
  RepositoryRequiredError,
  TriggerNotDeclaredError,
} from "./errors.js";

export interface ErrorStatus {
  status: number;
  code: string;
}

const BY_CLASS: Array<[new (...args: never[]) => Error, ErrorStatus]> = [
  [RunNotFoundError, { status: 404, code: "run_not_found" }],
  [FlowVersionNotFoundError, { status: 404, code: "flow_version_not_found" }],
  [StepNotFoundError, { status: 404, code: "step_not_found" }],
  [AmbiguousRunRefError, { status: 400, code: "ambiguous_run" }],
  [FlowInvalidError, { status: 422, code: "flow_invalid" }],
  [InvalidInputsError, { status: 422, code: "invalid_inputs" }],
  [ConcurrencyGroupError, { status: 422, code: "concurrency_group" }],
  [ConcurrencyRejectedError, { status: 409, code: "concurrency_rejected" }],
  [StepNotWaitingError, { status: 409, code: "step_not_waiting" }],
  [RunFinishedError, { status: 409, code: "run_finished" }],
  [RunNotFinishedError, { status: 409, code: "run_not_finished" }],
  [AuthenticationError, { status: 401, code: "unauthorized" }],
  [PermissionDeniedError, { status: 403, code: "permission_denied" }],
  [LocalFlowRefusedError, { status: 403, code: "local_flows_refused" }],
  [RepositoryNotServedError, { status: 404, code: "repository_not_found" }],
  [LiveFlowNotFoundError, { status: 404, code: "flow_not_found" }],
  [TriggerNotDeclaredError, { status: 422, code: "trigger_not_declared" }],
  [RepositoryRequiredError, { status: 400, code: "repository_required" }],
  [GitHubUnavailableError, { status: 502, code: "github_unavailable" }],
];

export function errorStatus(error: unknown): ErrorStatus {
  if (error instanceof ApiError) return { status: error.status, code: error.code };
  for (const [type, status] of BY_CLASS) if (error instanceof type) return status;
  return { status: 500, code: "internal" };
}

/**
 * The machine-readable extras of an error, beside its code and message: `details` (the
 * list of what is wrong, e.g. each invalid input), and for a refused permission the
 * `permission` GitHub reported and the one `required`.
 */
export function errorExtra(error: unknown): Record<string, unknown> {
  if (error instanceof ApiError) return error.extra;
  if (error instanceof PermissionDeniedError)
    return { permission: error.permission, required: error.required };
  const details = (error as { errors?: unknown } | null)?.errors;
  return Array.isArray(details) ? { details } : {};
}
