/**
 * What runs a step attempt: the contract between the runtime and the things that execute
 * steps (the in-process local shell, later self-hosted runners and GitHub Actions).
 */
import type { Json } from "../engine/types.js";

export type LogStream = "stdout" | "stderr" | "system";

export interface StepExecution {
  runId: string;
  step: string;
  attempt: number;
  /** `${runId}/${step}/${attempt}` (or `…/compensate`): the same for every repetition of this attempt. */
  key: string;
  kind: "workflow" | "run" | "agent" | "github";
  /** The step's definition with every expression expanded. */
  spec: Json;
  env: Record<string, string>;
  /** Stop and fail (as timed out) at this moment (ms since the epoch). */
  deadline?: number;
  /** Aborted when the attempt must stop (cancelled, or the process shuts down); kill everything. */
  signal: AbortSignal;
  /** Output as it arrives; the runtime stores it in bounded chunks. */
  log(stream: LogStream, text: string): void;
}

export interface StepOutcome {
  outcome: "success" | "failure";
  outputs: Record<string, string>;
  /** For failures: what went wrong, for people. */
  error?: string;
  /** False for failures that no retry can fix. (Default: true) */
  retryable?: boolean;
}

export type Executor = (execution: StepExecution) => Promise<StepOutcome>;

/**
 * Steps that need the GitHub App (or a self-hosted runner) fail at once, without retries,
 * in local mode, with what to do about it.
 */
export function unavailableLocally(kind: StepExecution["kind"]): Executor {
  const how = kind === "agent" ? "a self-hosted Baton runner with an agent" : "the GitHub App";
  return refusing(
    `\`${kind}\` steps need ${how}; run \`baton\` against an app (BATON_URL) or change the step ` +
      `(local mode runs only \`run\`, \`approval\`, \`wait\` and \`flow\` steps).`,
  );
}

/** An executor that fails every step at once, without retries, saying `error`. */
export function refusing(error: string): Executor {
  return () => Promise.resolve({ outcome: "failure", outputs: {}, retryable: false, error });
}
