/** Plain-text tables for the benchmark's output: a title, then aligned label / value / aim rows. */

export interface Row {
  label: string;
  value: string;
  /** The aim, e.g. "< 5 ms", and whether the figure meets it. */
  aim?: { text: string; met: boolean };
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
    const aim = row.aim ? `  aim ${row.aim.text}: ${row.aim.met ? "met" : "MISSED"}` : "";
    lines.push(`  ${row.label.padEnd(labelWidth)}  ${row.value.padStart(valueWidth)}${aim}`);
  }
  for (const note of notes) lines.push(`  ${note}`);
  process.stdout.write(`${lines.join("\n")}\n`);
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
};
