/**
 * One mapping from errors to what callers see: an HTTP status and a stable code. The API
 * server answers with it, and the CLI turns it into an exit code (4xx: 1, the answer is
 * no; anything else: 3, something broke), so a refusal reads the same locally and remotely.
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
} from "../runtime/errors.js";
import { ApiError } from "./api.js";

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
];

export function errorStatus(error: unknown): ErrorStatus {
  if (error instanceof ApiError) return { status: error.status, code: error.code };
  for (const [type, status] of BY_CLASS) if (error instanceof type) return status;
  return { status: 500, code: "internal" };
}
