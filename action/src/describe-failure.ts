/**
 * A failure in the words the job's log shows: what went wrong, and what to do about it.
 * Every message here is a sentence a person can act on without reading the action's code.
 */
import { formatDuration } from "./duration.js";
import type { Purpose } from "./errors.js";
import {
  BatonHttpError,
  BatonUnreachableError,
  InputError,
  RunNotSucceededError,
  UnexpectedAnswerError,
  WaitTimeoutError,
} from "./errors.js";
import { expiryOf } from "./step-token.js";

const STEP_TOKEN_HINT =
  "Pass `step-token: ${{ inputs.baton }}` or declare the `baton` workflow_dispatch input";

function what(purpose: Purpose): string {
  switch (purpose.operation) {
    case "report-outputs":
      return `reporting the outputs of step ${purpose.stepToken.step} (attempt ${purpose.stepToken.attempt}) of run ${purpose.stepToken.run}`;
    case "signal":
      return `sending signal '${purpose.signal}' to run ${purpose.run}`;
    case "start":
      return `starting flow ${purpose.flow} of ${purpose.repository}`;
    case "read-run":
      return `reading run ${purpose.run}`;
  }
}

/** The step token a request was authenticated with, if any. */
function stepTokenOf(purpose: Purpose) {
  return purpose.operation === "report-outputs" || purpose.operation === "signal"
    ? purpose.stepToken
    : undefined;
}

function unauthorized(error: BatonHttpError): string {
  const stepToken = stepTokenOf(error.purpose);
  const answered = `Baton answered 401 (${error.serverMessage}) to ${what(error.purpose)}`;
  if (stepToken !== undefined) {
    if (stepToken.exp * 1000 <= Date.now())
      return (
        `${answered}: the step token expired at ${expiryOf(stepToken)}: the Baton step's ` +
        "timeout passed before the workflow reported. Raise the step's `timeout` in the flow, " +
        "or report earlier in the job."
      );
    return (
      `${answered}: Baton refused the step token (not a step token of this Baton, altered, or ` +
      `revoked because the step ended). ${STEP_TOKEN_HINT}, and do not edit the token.`
    );
  }
  return (
    `${answered}: the GitHub token was refused. Pass a GitHub user token or a PAT with write ` +
    "access to the repository as `github-token` (a workflow's GITHUB_TOKEN is not a user " +
    "token), stored as a secret."
  );
}

function conflict(error: BatonHttpError): string {
  const answered = `Baton answered 409 (${error.serverMessage}) to ${what(error.purpose)}`;
  const resent = error.resentAfterNetworkFailure
    ? " This request was sent again after a network failure, so Baton may have recorded the first send: check the run before re-running."
    : "";
  switch (error.purpose.operation) {
    case "report-outputs":
      return (
        `${answered}: a replay — this attempt's outputs were already reported (each attempt ` +
        "reports once), or the attempt is no longer running (timed out, cancelled or retried). " +
        "Report all outputs in a single `mode: outputs` step." +
        resent
      );
    case "signal":
      return `${answered}: the run does not take this signal now (it is not waiting for it, or has ended).${resent}`;
    case "start":
    case "read-run":
      return `${answered}.${resent}`;
  }
}

function describeHttpError(error: BatonHttpError): string {
  const answered = `Baton answered ${error.status} (${error.serverMessage}) to ${what(error.purpose)}`;
  switch (error.status) {
    case 401:
      return unauthorized(error);
    case 403:
      return (
        `${answered}: the token's user lacks the permission this needs. Use a token of a user ` +
        "with write access to the run's repository."
      );
    case 404:
      return (
        `${answered}: ${error.purpose.operation === "start" ? "no such live flow in that repository (is it pushed to the default branch and is Baton installed there?)" : "no such run or route"}. ` +
        `Check the inputs, and that ${error.url} is Baton's URL.`
      );
    case 409:
      return conflict(error);
    case 413:
      return (
        `${answered}: the request is larger than Baton takes (outputs: 1 MiB in all). ` +
        "Put large data in an artifact and report its name."
      );
    case 400:
    case 422:
      return `${answered}: Baton refused the request's content; fix the inputs it names.`;
    default:
      return error.status >= 500 || error.status === 429
        ? `${answered}${error.attempts > 1 ? ` after ${error.attempts} tries` : ""}: Baton failed or is overloaded. ` +
            "Re-run the job when it is back; if it persists, Baton's log has the cause."
        : `${answered}.`;
  }
}

export function describeFailure(error: unknown): string {
  if (error instanceof InputError) return error.message;
  if (error instanceof BatonHttpError) return describeHttpError(error);
  if (error instanceof BatonUnreachableError) {
    const cause = error.cause instanceof Error ? error.cause.message : String(error.cause);
    return (
      `Cannot reach Baton at ${error.url} (${cause}) after ${error.attempts} tries, while ` +
      `${what(error.purpose)}. Check Baton's URL (\`url\`, BATON_URL or the step token's) and ` +
      "that this runner can reach it."
    );
  }
  if (error instanceof UnexpectedAnswerError)
    return `${error.url} did not answer as Baton does (${error.problem}): check that the URL is Baton's.`;
  if (error instanceof RunNotSucceededError)
    return (
      `Baton run ${error.runId} ended ${error.status}${error.reason === undefined ? "" : `: ${error.reason}`}. ` +
      `See ${error.runUrl}.`
    );
  if (error instanceof WaitTimeoutError)
    return (
      `Baton run ${error.runId} is still ${error.status} after ${formatDuration(error.waitedMs)}: ` +
      `raise \`wait-timeout\`, or set \`wait: false\` and follow it at ${error.runUrl}.`
    );
  const message = error instanceof Error ? error.message : String(error);
  return `The Baton action failed unexpectedly: ${message}. Please report it with this log.`;
}
