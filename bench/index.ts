/**
 * `npm run bench`: every benchmark, one after the other, printing a table each.
 *
 *   node dist/bench/index.js [part …] [--quick] [--json]
 *   npm run bench -- chain throughput --json
 *
 * Parts: validate, throughput, chain, commits, memory, webhooks, trigger, runners,
 * workflows. Names pick parts, run in the order given (Default: all, in that order).
 * `--quick` uses small sizes, to try changes; its figures are not the ones to quote.
 *
 * `--json`: stdout carries only JSON Lines, one object per figure as soon as it is
 * measured: {"figure","baton","anchor","ratio","aim","met","unit"} (see `Figure` in
 * table.ts). `aim` reads "<baton|ratio> <op> <number>" (`ratio` is baton / anchor; anchor
 * and ratio are null for an absolute aim), e.g. {"figure":"chain.1000.ms_per_step",
 * "baton":18.2,"anchor":5.1,"ratio":3.57,"aim":"ratio <= 1.3","met":false,"unit":"ms"}.
 * Lines, not one array, so that the figures of the parts that finished survive a part
 * that fails. The tables, notes and progress go to stderr. Collect with
 * `node dist/bench/index.js --json > figures.jsonl` (or `| jq -s` for an array).
 * The exit code is 0 whether or not aims are met (a missed aim is a figure, not an error).
 *
 * Figures and their aims (issue 13's "Done when", and earlier issues' for the others):
 * - throughput.noop_steps_per_s: ratio to graphile-worker >= 1, same server and durability;
 * - chain.40.ms_per_step < 3; chain.200 / chain.1000 .ms_per_step: ratio to the 40-step
 *   chain's <= 1.3; chain.200 / chain.1000 .wal_bytes_per_step: ratio to the 40-step
 *   chain's <= 1.2 (flat);
 * - workflows.dispatch_p50_ms.<db> < 30, while the installation's check runs are paced;
 * - webhooks.ack_p99_ms.<db> < 25 at 200 deliveries/s;
 * - trigger.first_step_p50_ms.<db> < 20; runners.claim_p99_ms < 250;
 *   commits.<workload>.per_step <= 2; memory.* (RSS < 200 MB, nothing done while idle).
 * <db> is "postgres" or "pglite_fsync_off" (PGlite's fsync setting, read from PGlite).
 *
 * The runtime parts need Postgres: DATABASE_URL is the admin connection (Default:
 * postgres://postgres@127.0.0.1:5432/postgres); each part creates its own database and
 * drops it. Whole run: about 6 minutes on 2 cores.
 */
import { cpus, loadavg } from "node:os";
import { adminUrl } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { FULL_SIZES, QUICK_SIZES, benchChain, benchCommits, benchThroughput } from "./runtime.js";
import { benchRunners } from "./runners.js";
import { printedFigures, say, setJsonOutput } from "./table.js";
import { benchValidate } from "./validate.js";
import { benchWaitingRuns } from "./waiting-runs.js";
import { benchTriggerToStep, benchWebhookAck } from "./webhooks.js";
import { benchWorkflowSteps } from "./workflows.js";

const PARTS: Record<string, (sizes: Sizes) => Promise<void>> = {
  validate: () => benchValidate(),
  throughput: benchThroughput,
  chain: benchChain,
  commits: benchCommits,
  memory: benchWaitingRuns,
  webhooks: benchWebhookAck,
  trigger: benchTriggerToStep,
  runners: benchRunners,
  workflows: benchWorkflowSteps,
};
const FLAGS = ["--quick", "--json"];

const args = process.argv.slice(2);
const quick = args.includes("--quick");
setJsonOutput(args.includes("--json"));
const names = args.filter((arg) => !arg.startsWith("--"));
const unknown = [
  ...names.filter((name) => !(name in PARTS)),
  ...args.filter((arg) => arg.startsWith("--") && !FLAGS.includes(arg)),
];
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown ${unknown.map((name) => `"${name}"`).join(", ")}; the parts are ${Object.keys(PARTS).join(", ")}, the flags ${FLAGS.join(", ")}\n`,
  );
  process.exit(2);
}
const chosen = names.length > 0 ? names : Object.keys(PARTS);
const sizes = quick ? QUICK_SIZES : FULL_SIZES;

const load = loadavg().map((n) => n.toFixed(2));
say(
  `baton bench: ${chosen.join(", ")}${quick ? " (--quick: small sizes)" : ""}\n` +
    `  node ${process.version}, ${cpus().length} cores, load average ${load.join(" ")} at start, postgres ${new URL(adminUrl()).host}\n`,
);
const started = Date.now();
for (const name of chosen) {
  const part = PARTS[name];
  const partStarted = Date.now();
  if (part) await part(sizes);
  say(`  (${name}: ${((Date.now() - partStarted) / 1000).toFixed(0)} s)\n`);
}
const end = loadavg().map((n) => n.toFixed(2));
const figures = printedFigures();
const missed = figures.filter((f) => !f.met).map((f) => f.figure);
say(
  `\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${end.join(" ")} at the end\n` +
    `aims met: ${figures.length - missed.length} of ${figures.length}${missed.length > 0 ? `; missed: ${missed.join(", ")}` : ""}\n`,
);
