/**
 * Durations as flows write them: `30s`, `10m`, `2h`, `2d`, `500ms`, or a sum (`1h30m`).
 * The format (flows-schema) defines them; the engine needs a number or a clear error.
 */
import { parseDuration as parseFlowDuration } from "../../flows-schema/durations.js";

export class DurationError extends Error {
  constructor(readonly text: string) {
    super(`"${text}" is not a duration; write e.g. "30s", "10m", "2h", "2d" or "1h30m"`);
    this.name = "DurationError";
  }
}

/** Parses a duration into milliseconds. Throws `DurationError` for anything else. */
export function parseDuration(text: string): number {
  const ms = parseFlowDuration(text);
  if (ms === undefined) throw new DurationError(text);
  return ms;
}

/** Default step timeout for `run`, `agent`, `workflow` and `github` steps. */
export const DEFAULT_STEP_TIMEOUT = "6h";
/** Default run timeout. */
export const DEFAULT_RUN_TIMEOUT = "30d";
/** Default longest wait between retries. */
export const DEFAULT_MAX_RETRY_DELAY = "1h";
