/**
 * Durations as flows write them (`30s`, `10m`, `1h30m`) and the ranges each field accepts.
 * The ranges are part of the format: they are checked by `check-semantics.ts` and listed
 * in the format reference.
 */
import { DURATION_PATTERN } from "./schema.js";

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;

/** Milliseconds of a duration string, or undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  if (!DURATION_PATTERN.test(text)) return undefined;
  let total = 0;
  for (const match of text.matchAll(/(\d+)(ms|s|m|h|d)/g)) {
    total += Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS];
  }
  return total;
}

/** The shortest exact rendering: 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return "0s";
  let rest = ms;
  let text = "";
  for (const unit of ["d", "h", "m", "s", "ms"] as const) {
    const count = Math.floor(rest / UNIT_MS[unit]);
    if (count > 0) {
      text += `${count}${unit}`;
      rest -= count * UNIT_MS[unit];
    }
  }
  return text;
}

export interface DurationRange {
  min: number;
  max: number;
  /** What the field is, for messages: "a step timeout". */
  what: string;
}

const SECOND = UNIT_MS.s;
const MINUTE = UNIT_MS.m;
const DAY = UNIT_MS.d;

/**
 * The accepted range of every duration field. Why these numbers:
 * - step timeout ≤ 30d: longer work should be split or be a `wait`; runners and Actions
 *   (6h per job on hosted runners) cannot hold one attempt longer anyway.
 * - run timeout ≤ 365d: a run may wait on people for a long time, but not forever.
 * - retry delay ≤ 1d: longer pauses are a `wait` step, which shows up in the history.
 * - approval timeout ≥ 1m: shorter gives nobody a chance to answer.
 */
export const DURATION_RANGES = {
  stepTimeout: { min: SECOND, max: 30 * DAY, what: "a step timeout" },
  runTimeout: { min: SECOND, max: 365 * DAY, what: "a run timeout" },
  retryDelay: { min: 0, max: DAY, what: "a retry delay" },
  retryMaxDelay: { min: SECOND, max: DAY, what: "a retry max-delay" },
  approvalTimeout: { min: MINUTE, max: 365 * DAY, what: "an approval timeout" },
  approvalReminder: { min: MINUTE, max: 365 * DAY, what: "an approval reminder" },
  waitFor: { min: SECOND, max: 365 * DAY, what: "a wait's `for`" },
  waitTimeout: { min: SECOND, max: 365 * DAY, what: "a wait timeout" },
} satisfies Record<string, DurationRange>;

/** Whole-number limits checked beside the durations (retry and approval counts are in the schema). */
export const NUMBER_RANGES = {
  /** GitHub's `workflow_dispatch` accepts at most 25 inputs. */
  workflowInputs: { max: 25 },
} as const;
