import { InputError } from "./errors.js";

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;
const PART = /(\d+)(ms|s|m|h)/g;

/** A duration such as `30m`, `5s`, `1h30m` or `250ms`, in milliseconds. */
export function parseDuration(text: string, input: string): number {
  const trimmed = text.trim();
  if (!/^(\d+(ms|s|m|h))+$/.test(trimmed))
    throw new InputError(
      `\`${input}\` must be a duration such as 30s, 30m, 6h or 1h30m (got '${text}').`,
    );
  let total = 0;
  for (const [, amount = "0", unit] of trimmed.matchAll(PART))
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  if (total <= 0) throw new InputError(`\`${input}\` must be longer than zero (got '${text}').`);
  return total;
}

/** Milliseconds as the user wrote them back, e.g. 21600000 → 6h. */
export function formatDuration(ms: number): string {
  for (const [unit, size] of [
    ["h", UNIT_MS.h],
    ["m", UNIT_MS.m],
    ["s", UNIT_MS.s],
  ] as const)
    if (ms % size === 0) return `${ms / size}${unit}`;
  return `${ms}ms`;
}
