/**
 * Durations as flows write them: `30s`, `10m`, `2h`, `2d`, `500ms`, or a sum (`1h30m`).
 * The schema checks the syntax; this turns it into milliseconds.
 */
import { DURATION_PATTERN } from "../../flows-schema/schema.js";

const UNIT_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

export class DurationError extends Error {
  constructor(readonly text: string) {
    super(`"${text}" is not a duration; write e.g. "30s", "10m", "2h", "2d" or "1h30m"`);
    this.name = "DurationError";
  }
}

/** Parses a duration into milliseconds. Throws `DurationError` for anything else. */
export function parseDuration(text: string): number {
  if (!DURATION_PATTERN.test(text)) throw new DurationError(text);
  let total = 0;
  for (const match of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(match[1]) * (UNIT_MS[match[2] ?? ""] ?? 0);
  }
  return total;
}

/** Default step timeout for `run`, `agent`, `workflow` and `github` steps. */
export const DEFAULT_STEP_TIMEOUT = "6h";
/** Default run timeout. */
export const DEFAULT_RUN_TIMEOUT = "30d";
/** Default longest wait between retries. */
export const DEFAULT_MAX_RETRY_DELAY = "1h";
