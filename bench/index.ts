/**
 * `npm run bench`: every benchmark, one after the other, printing a table each.
 *
 *   node dist/bench/index.js [validate] [throughput] [chain] [commits] [memory] [webhooks] [trigger] [runners] [workflows] [--quick]
 *
 * Names pick parts (Default: all). `--quick` uses small sizes, to try changes; its figures
 * are not the ones to quote. The runtime parts need Postgres: DATABASE_URL is the admin
 * connection (Default: postgres://postgres@127.0.0.1:5432/postgres); each part creates its
 * own database and drops it.
 */
import { cpus, loadavg } from "node:os";
import { adminUrl } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { FULL_SIZES, QUICK_SIZES, benchChain, benchCommits, benchThroughput } from "./runtime.js";
import { benchRunners } from "./runners.js";
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

const args = process.argv.slice(2);
const quick = args.includes("--quick");
const names = args.filter((arg) => !arg.startsWith("--"));
const unknown = names.filter((name) => !(name in PARTS));
if (unknown.length > 0) {
  process.stderr.write(
    `bench: unknown part ${unknown.map((name) => `"${name}"`).join(", ")}; the parts are ${Object.keys(PARTS).join(", ")} (and --quick for small sizes)\n`,
  );
  process.exit(2);
}
const chosen = names.length > 0 ? names : Object.keys(PARTS);
const sizes = quick ? QUICK_SIZES : FULL_SIZES;

const load = loadavg().map((n) => n.toFixed(2));
process.stdout.write(
  `baton bench: ${chosen.join(", ")}${quick ? " (--quick: small sizes)" : ""}\n` +
    `  node ${process.version}, ${cpus().length} cores, load average ${load.join(" ")} at start, postgres ${new URL(adminUrl()).host}\n`,
);
const started = Date.now();
for (const name of chosen) {
  const part = PARTS[name];
  if (part) await part(sizes);
}
const end = loadavg().map((n) => n.toFixed(2));
process.stdout.write(
  `\ndone in ${((Date.now() - started) / 1000).toFixed(0)} s; load average ${end.join(" ")} at the end\n`,
);
