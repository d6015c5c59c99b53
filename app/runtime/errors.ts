/**
 * What the runtime and the service refuse, as classes with fields. Each message says what
 * to do. `retryable` tells callers whether trying again later can help.
 */
import type { Diagnostic } from "../../flows-schema/diagnostic.js";

export class RunNotFoundError extends Error {
  readonly retryable = false;
  constructor(readonly ref: string) {
    super(
      `No run matches "${ref}". Give a run id (or a unique prefix of one), or <flow>#<number>; \`baton runs\` lists them.`,
    );
    this.name = "RunNotFoundError";
  }
}

export class AmbiguousRunRefError extends Error {
  readonly retryable = false;
  constructor(
    readonly ref: string,
    readonly candidates: string[],
  ) {
    super(
      `"${ref}" matches several runs (${candidates.join(", ")}). Give more characters of the id.`,
    );
    this.name = "AmbiguousRunRefError";
  }
}

export class FlowInvalidError extends Error {
  readonly retryable = false;
  constructor(
    readonly file: string,
    readonly diagnostics: Diagnostic[],
  ) {
    const errors = diagnostics.filter((d) => d.severity === "error");
    super(
      `${file} is not a valid flow (${errors.length} error${errors.length === 1 ? "" : "s"}):\n` +
        errors.map((d) => `  ${d.file}:${d.line}:${d.column}: ${d.message}`).join("\n") +
        "\nFix the file (`baton validate` shows every problem) and start the run again.",
    );
    this.name = "FlowInvalidError";
  }
}

export class FlowVersionNotFoundError extends Error {
  readonly retryable = false;
  constructor(readonly versionId: string) {
    super(`No flow version ${versionId} is stored. Start the run from the flow file instead.`);
    this.name = "FlowVersionNotFoundError";
  }
}

export class InvalidInputsError extends Error {
  readonly retryable = false;
  constructor(
    readonly flow: string,
    readonly errors: string[],
  ) {
    super(
      `The inputs do not fit flow ${flow}:\n${errors.map((e) => `  - ${e}`).join("\n")}\nPass inputs as name=value.`,
    );
    this.name = "InvalidInputsError";
  }
}

/** The flow's concurrency group has an active run and its mode is `reject`. Nothing was stored. */
export class ConcurrencyRejectedError extends Error {
  readonly retryable = true;
  constructor(
    readonly flow: string,
    readonly group: string,
    readonly activeRunIds: string[],
  ) {
    super(
      `Flow ${flow} allows one run at a time in concurrency group "${group}", and run ${activeRunIds.join(", ")} ` +
        `is active (mode: reject). Wait for it to finish, or cancel it, then start again.`,
    );
    this.name = "ConcurrencyRejectedError";
  }
}

export class ConcurrencyGroupError extends Error {
  readonly retryable = false;
  constructor(
    readonly flow: string,
    options: { cause: unknown },
  ) {
    super(
      `The concurrency group of flow ${flow} cannot be evaluated: ${options.cause instanceof Error ? options.cause.message : String(options.cause)}. Fix \`concurrency.group\` or the inputs.`,
      options,
    );
    this.name = "ConcurrencyGroupError";
  }
}

export class StepNotFoundError extends Error {
  readonly retryable = false;
  constructor(
    readonly runId: string,
    readonly step: string,
    readonly steps: string[],
  ) {
    super(`Run ${runId} has no step "${step}". Its steps are: ${steps.join(", ")}.`);
    this.name = "StepNotFoundError";
  }
}

export class StepNotWaitingError extends Error {
  readonly retryable = true;
  constructor(
    readonly runId: string,
    readonly step: string,
    readonly status: string,
    readonly expected: string,
  ) {
    super(
      `Step "${step}" of run ${runId} is not waiting for ${expected} (it is ${status}). ` +
        "`baton status` shows what the run waits for.",
    );
    this.name = "StepNotWaitingError";
  }
}

export class RunFinishedError extends Error {
  readonly retryable = false;
  constructor(
    readonly runId: string,
    readonly status: string,
  ) {
    super(`Run ${runId} has already finished (${status}). Start a new run, or \`baton retry\` it.`);
    this.name = "RunFinishedError";
  }
}

export class RunNotFinishedError extends Error {
  readonly retryable = true;
  constructor(
    readonly runId: string,
    readonly status: string,
  ) {
    super(
      `Run ${runId} is still ${status}; only a finished run can be retried. Cancel it first, or wait for it.`,
    );
    this.name = "RunNotFinishedError";
  }
}

/** This worker's claim on a task expired and another worker took it over: its work is dropped. */
export class LeaseLostError extends Error {
  readonly retryable = false;
  constructor(readonly taskId: number) {
    super(
      `The lease on task ${taskId} was lost (another worker took it over); this worker's result is discarded.`,
    );
    this.name = "LeaseLostError";
  }
}

/** A report named an attempt by a key that is not `<run>/<step>/<attempt>[/compensate]`. */
export class InvalidAttemptKeyError extends Error {
  readonly retryable = false;
  constructor(readonly key: string) {
    super(
      `"${key}" is not an attempt's idempotency key: expected <run id>/<step>/<attempt>, or ` +
        "<run id>/<step>/<attempt>/compensate for a compensation (BATON_IDEMPOTENCY_KEY).",
    );
    this.name = "InvalidAttemptKeyError";
  }
}
