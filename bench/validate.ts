/**
 * How fast is `parseFlow` next to the floor, YAML parsing alone? Generates 1,000 varied,
 * realistic flow files in memory (5 to 40 steps of every kind, wired with `needs` and
 * expressions; about one in ten carries a mistake), validates them all, and prints a small
 * table of medians over several rounds after a warm-up.
 */
import { LineCounter, parseDocument, stringify } from "yaml";
import { parseFlow } from "../flows-schema/index.js";
import { say } from "./table.js";

const FILES = 1_000;
const ROUNDS = 7;

/** A small seeded PRNG (mulberry32): the same files on every run, so runs compare. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const WORDS = [
  "build",
  "test",
  "lint",
  "package",
  "deploy",
  "notify",
  "review",
  "extract",
  "load",
  "sync",
  "report",
  "scan",
  "publish",
  "train",
  "index",
  "archive",
];

function generateFlow(next: () => number, index: number): string {
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T;
  const count = 5 + Math.floor(next() * 36);
  const ids: string[] = [];
  const steps: Record<string, unknown> = {};
  for (let n = 0; n < count; n += 1) {
    const id = `${pick(WORDS)}-${n}`;
    const need = ids.length > 0 && next() < 0.8 ? pick(ids) : undefined;
    const reads =
      need &&
      !("approval" in (steps[need] as object)) &&
      !("wait" in (steps[need] as object)) &&
      !("github" in (steps[need] as object))
        ? need
        : undefined;
    const common: Record<string, unknown> = need ? { needs: next() < 0.5 ? need : [need] } : {};
    const kind = pick([
      "run",
      "run",
      "run",
      "workflow",
      "workflow",
      "approval",
      "wait",
      "github",
      "agent",
    ] as const);
    let step: Record<string, unknown>;
    switch (kind) {
      case "run":
        step = {
          ...common,
          "runs-on": ["self-hosted", pick(["linux", "etl", "gpu"])],
          env: reads
            ? { VALUE: `\${{ steps.${reads}.outputs.out }}` }
            : { VERSION: "${{ inputs.version }}" },
          run: `./scripts/${id}.sh "$VERSION"\necho "out=$(date +%s)" >> "$BATON_OUTPUT"\n`,
          outputs: ["out"],
          timeout: pick(["5m", "30m", "1h"]),
          ...(next() < 0.3 ? { retry: { attempts: 3, delay: "30s" } } : {}),
        };
        break;
      case "workflow":
        step = {
          ...common,
          workflow: `${id}.yml`,
          with: {
            version: "${{ inputs.version }}",
            ...(reads ? { value: `\${{ steps.${reads}.outputs.out }}` } : {}),
          },
          outputs: ["out"],
        };
        break;
      case "agent":
        step = {
          ...common,
          "runs-on": ["agent"],
          agent: {
            prompt: `Do ${id} for \${{ inputs.version }} and write out=<result> to $BATON_OUTPUT.`,
          },
          outputs: ["out"],
        };
        break;
      case "approval":
        step = { ...common, approval: { approvers: { teams: ["acme/release"] }, timeout: "2d" } };
        break;
      case "wait":
        step = {
          ...common,
          wait: next() < 0.5 ? { signal: `${id}-done`, timeout: "1h" } : { for: "10m" },
        };
        break;
      case "github":
        step = {
          ...common,
          ...(need ? { if: "${{ always() }}" } : {}),
          github: {
            request: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
            with: { issue_number: 1, body: need ? `\${{ steps.${need}.result }}` : "done" },
          },
        };
        break;
    }
    // About one file in ten has a mistake somewhere: an unknown need.
    if (n === count - 1 && index % 10 === 0) step.needs = "missing-step";
    steps[id] = step;
    ids.push(id);
  }
  const flow = {
    name: `Generated flow ${index}`,
    on: {
      manual: { inputs: { version: { type: "string", required: true } } },
      ...(next() < 0.5 ? { schedule: [{ cron: "0 9 * * 1", timezone: "Europe/Oslo" }] } : {}),
    },
    concurrency: { group: "flow-${{ inputs.version }}", mode: "queue" },
    timeout: "2d",
    steps,
  };
  return stringify(flow, { lineWidth: 0 });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

function time(run: () => void): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

export async function benchValidate(): Promise<void> {
  const next = random(20261123);
  const files = Array.from({ length: FILES }, (_, index) => generateFlow(next, index));
  const bytes = files.reduce((total, file) => total + file.length, 0);
  let invalid = 0;
  const yamlOnly = () => {
    for (const file of files) parseDocument(file, { lineCounter: new LineCounter() });
  };
  const validate = () => {
    invalid = 0;
    for (const [index, file] of files.entries())
      if (!parseFlow(file, `flow-${index}.yml`).flow) invalid += 1;
  };
  // Warm-up: let the JIT compile both paths before measuring.
  yamlOnly();
  validate();
  const yamlTimes: number[] = [];
  const flowTimes: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    yamlTimes.push(time(yamlOnly));
    flowTimes.push(time(validate));
  }
  const yamlMs = median(yamlTimes);
  const flowMs = median(flowTimes);
  const rows: [string, string][] = [
    ["files", `${FILES} (${Math.round(bytes / 1024)} KiB, ${invalid} invalid)`],
    ["yaml alone (parseDocument)", `${yamlMs.toFixed(1)} ms`],
    ["parseFlow", `${flowMs.toFixed(1)} ms`],
    ["ratio", `${(flowMs / yamlMs).toFixed(2)}x`],
    ["parseFlow per file", `${((flowMs * 1000) / FILES).toFixed(0)} µs`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  say(`\nvalidate: median of ${ROUNDS} rounds after a warm-up\n`);
  for (const [label, value] of rows) say(`  ${label.padEnd(width)}  ${value}\n`);
  await Promise.resolve();
}
