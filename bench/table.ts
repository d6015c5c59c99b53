/**
 * The benchmark's output: plain-text tables (a title, then aligned label / value / aim rows)
 * and, under `--json`, one JSON line per figure on stdout while the tables and all progress
 * go to stderr (see index.ts).
 */

/**
 * A figure with an aim: what `--json` prints, one object per line. `aim` reads
 * `<baton|ratio> <op> <number>`, e.g. "ratio >= 1" or "baton < 3": the field it bounds, so
 * a reader can check `met` again. `anchor` and `ratio` (baton / anchor) are null when the
 * aim is absolute and nothing was measured beside it.
 */
export interface Figure {
  figure: string;
  baton: number;
  anchor: number | null;
  ratio: number | null;
  aim: string;
  met: boolean;
  unit: string;
}

export type Op = "<" | "<=" | ">=" | ">";

/** An aim on Baton's figure itself ("baton < 3") or on its ratio to the anchor ("ratio <= 1.3"). */
export interface Aim {
  of: "baton" | "ratio";
  op: Op;
  value: number;
}

export function figure(spec: {
  figure: string;
  baton: number;
  anchor?: number;
  unit: string;
  aim: Aim;
}): Figure {
  const anchor = spec.anchor ?? null;
  const ratio = anchor === null ? null : spec.baton / anchor;
  const subject = spec.aim.of === "baton" ? spec.baton : ratio;
  const met = subject !== null && Number.isFinite(subject) && compare(subject, spec.aim);
  return {
    figure: spec.figure,
    baton: spec.baton,
    anchor,
    ratio,
    aim: `${spec.aim.of} ${spec.aim.op} ${spec.aim.value}`,
    met,
    unit: spec.unit,
  };
}

function compare(value: number, aim: Aim): boolean {
  switch (aim.op) {
    case "<":
      return value < aim.value;
    case "<=":
      return value <= aim.value;
    case ">=":
      return value >= aim.value;
    case ">":
      return value > aim.value;
  }
}

export interface Row {
  label: string;
  value: string;
  /** A figure with its aim: shown as "aim …: met / MISSED", and printed under `--json`. */
  figure?: Figure;
}

let json = false;
const figures: Figure[] = [];

/** Under `--json`, stdout carries only the figures' JSON lines; everything else goes to stderr. */
export function setJsonOutput(on: boolean): void {
  json = on;
}

/** Text for people: stdout normally, stderr under `--json`. */
export function say(text: string): void {
  (json ? process.stderr : process.stdout).write(text);
}

/** Every figure printed so far (for the summary at the end). */
export function printedFigures(): readonly Figure[] {
  return figures;
}

export function printTable(
  title: string,
  rows: readonly Row[],
  notes: readonly string[] = [],
): void {
  const labelWidth = Math.max(...rows.map((row) => row.label.length));
  const valueWidth = Math.max(...rows.map((row) => row.value.length));
  const lines = [`\n${title}`];
  for (const row of rows) {
    const aim = row.figure
      ? `  aim ${aimText(row.figure)}: ${row.figure.met ? "met" : "MISSED"}`
      : "";
    lines.push(`  ${row.label.padEnd(labelWidth)}  ${row.value.padStart(valueWidth)}${aim}`);
  }
  for (const note of notes) lines.push(`  ${note}`);
  say(`${lines.join("\n")}\n`);
  for (const row of rows) {
    if (!row.figure) continue;
    figures.push(row.figure);
    if (json) process.stdout.write(`${JSON.stringify(row.figure)}\n`);
  }
}

/** "ratio >= 1" as people read it beside a value: "≥ 1× the anchor", "< 3 ms". */
function aimText(f: Figure): string {
  const [of, op, value] = f.aim.split(" ");
  const sign = { "<": "<", "<=": "≤", ">=": "≥", ">": ">" }[op as Op];
  return of === "ratio" ? `${sign} ${value}× anchor` : `${sign} ${value} ${f.unit}`;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The p-th percentile (0..100), nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

export const fmt = {
  int: (n: number) => Math.round(n).toLocaleString("en-US"),
  fixed: (n: number, digits = 1) => n.toFixed(digits),
  ms: (n: number, digits = 1) => `${n.toFixed(digits)} ms`,
  mb: (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MB`,
  kib: (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`,
  ratio: (n: number) => `${n >= 10 ? n.toFixed(0) : n.toFixed(2)}×`,
};
