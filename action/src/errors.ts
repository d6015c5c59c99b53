/**
 * What can go wrong, as classes with the facts a message needs; `describe-failure.ts`
 * turns them into what the user reads (what went wrong, and what to do).
 */
import type { StepTokenPayload } from "./step-token.js";

/** The action's inputs are wrong; found before any request is sent. */
export class InputError extends Error {
  override name = "InputError";
}

/** What a request to Baton was for: the words of its failure depend on it. */
export type Purpose =
  | { operation: "report-outputs"; stepToken: StepTokenPayload }
  | {
      operation: "signal";
      run: string;
      signal: string;
      /** The step token's payload when it authenticated the request; else a GitHub token did. */
      stepToken?: StepTokenPayload;
    }
  | { operation: "start"; repository: string; flow: string }
  | { operation: "read-run"; run: string };

/** Baton answered with an error status (after retries, for the transient ones). */
export class BatonHttpError extends Error {
  override name = "BatonHttpError";
  constructor(
    readonly purpose: Purpose,
    readonly method: string,
    readonly url: string,
    readonly status: number,
    /** Baton's machine-readable code (`{ error: { code } }`), when it sent one. */
    readonly code: string | undefined,
    /** Baton's own words (`{ error: { message } }`), or the start of a non-JSON body. */
    readonly serverMessage: string,
    readonly attempts: number,
    /** An earlier send failed on the network, so Baton may have recorded it already. */
    readonly resentAfterNetworkFailure: boolean,
  ) {
    super(`Baton answered ${status} to ${method} ${url}: ${serverMessage}`);
  }
}

/** No answer from Baton at all (DNS, refused connection, timeout), after retries. */
export class BatonUnreachableError extends Error {
  override name = "BatonUnreachableError";
  constructor(
    readonly purpose: Purpose,
    readonly url: string,
    readonly attempts: number,
    options: { cause: unknown },
  ) {
    super(`cannot reach Baton at ${url}`, options);
  }
}

/** Baton answered 2xx but not with the JSON its API promises: probably not Baton. */
export class UnexpectedAnswerError extends Error {
  override name = "UnexpectedAnswerError";
  constructor(
    readonly url: string,
    readonly problem: string,
  ) {
    super(`unexpected answer from ${url}: ${problem}`);
  }
}

/** The run that `start` waited for ended, but not with success. */
export class RunNotSucceededError extends Error {
  override name = "RunNotSucceededError";
  constructor(
    readonly runId: string,
    readonly status: string,
    readonly reason: string | undefined,
    readonly runUrl: string,
  ) {
    super(`run ${runId} ended ${status}`);
  }
}

/** `wait-timeout` passed before the run ended. */
export class WaitTimeoutError extends Error {
  override name = "WaitTimeoutError";
  constructor(
    readonly runId: string,
    readonly status: string,
    readonly waitedMs: number,
    readonly runUrl: string,
  ) {
    super(`run ${runId} still ${status}`);
  }
}
