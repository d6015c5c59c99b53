/**
 * Self-hosted runners (issue 7), on Postgres, with a real `baton runner` child process
 * talking HTTP to a server (runtime + runner protocol route) in this process:
 *
 * - claim latency: from the moment a step is ready (its `attempt.started` event) to the
 *   moment its command runs on an idle runner (the command prints the time), one run at a
 *   time. Anchor, in the same run: the same step without `runs-on`, executed by the
 *   runtime's in-process local shell.
 * - throughput: no-op steps (`true`) through one runner with 8 slots, many runs with
 *   parallel steps started at once. Anchor: the same runs on the in-process local shell
 *   with the runtime's 8 slots.
 *
 * Both sides spawn a shell per step (fork/exec is part of the figure); the runner adds
 * the queue row, the long poll, the claim and the result over HTTP.
 */
import { spawn } from "node:child_process";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { runnerTaskHandlers } from "../app/runners/runner-queue.js";
import { createRunnerRoute, localRunnerAdmin } from "../app/runners/runner-route.js";
import { createRegistrationToken } from "../app/store/runner-jobs.js";
import { silentLogger } from "../app/runtime/log.js";
import { startRuntime } from "../app/runtime/runtime.js";
import { BatonService } from "../app/runtime/service.js";
import type { Database } from "../app/store/database.js";
import { openPostgres } from "../app/store/postgres.js";
import { sleep, waitFor, withBenchDatabase } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { figure, fmt, median, percentile, printTable } from "./table.js";

const BIN = fileURLToPath(new URL("../../bin/baton.js", import.meta.url));
const SLOTS = 8;

export async function benchRunners(sizes: Sizes): Promise<void> {
  const samples = Math.max(10, Math.min(50, Math.round(sizes.throughputRuns / 10)));
  const runs = Math.max(10, Math.round(sizes.throughputRuns / 5));
  const width = sizes.throughputWidth;
  await withBenchDatabase({}, async (bench) => {
    const store = openPostgres({ connectionString: bench.url, max: 12 });
    const dir = await mkdtemp(join(tmpdir(), "baton-bench-runners-"));
    const server = await startServer(store);
    const runner = await startRunnerChild(store, server.url, dir);
    try {
      const service = new BatonService({ store });
      // Warm up both paths (JIT, connections, the runner's first poll).
      await latencies(store, service, 3, true);
      await latencies(store, service, 3, false);
      const viaRunner = await latencies(store, service, samples, true);
      const local = await latencies(store, service, samples, false);
      const runnerRate = await throughput(store, service, runs, width, true);
      const localRate = await throughput(store, service, runs, width, false);
      printTable(
        `Runners: claim latency (step ready → its command running), ${samples} steps one at a time; throughput, ${runs} runs × ${width} no-op steps`,
        [
          {
            label: "anchor: in-process local shell, p50 / p99",
            value: `${fmt.ms(median(local), 1)} / ${fmt.ms(percentile(local, 99), 1)}`,
          },
          {
            label: "idle runner (long poll), p50 / p99",
            value: `${fmt.ms(median(viaRunner), 1)} / ${fmt.ms(percentile(viaRunner, 99), 1)}`,
            figure: figure({
              figure: "runners.claim_p99_ms",
              baton: percentile(viaRunner, 99),
              anchor: percentile(local, 99),
              unit: "ms",
              aim: { of: "baton", op: "<", value: 250 },
            }),
          },
          {
            label: `anchor: in-process local shell, ${SLOTS} slots`,
            value: `${fmt.int(localRate)} steps/s`,
          },
          { label: `one runner, --concurrency ${SLOTS}`, value: `${fmt.int(runnerRate)} steps/s` },
        ],
        [
          "Latency is wall clock on one machine: the event's time (server) to `date` in the step's shell.",
          "The runner is a `baton runner` child process; the server is this process (runtime + HTTP route).",
        ],
      );
    } finally {
      runner.kill("SIGTERM");
      await runner.exited;
      await server.stop();
      await store.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
}

async function startServer(store: Database): Promise<{ url: string; stop(): Promise<void> }> {
  // The app sends every run step to a runner; the anchor's steps (no `runs-on`) stay in this
  // process's local shell, as `baton run` runs them, so both are measured on one runtime.
  const runners = runnerTaskHandlers();
  const runtime = startRuntime({
    store,
    concurrency: SLOTS,
    handlers: {
      ...runners,
      execute: (ctx, task, next) => {
        const spec = (task.payload as { spec?: Record<string, unknown> }).spec;
        return spec?.["runs-on"] === undefined ? next() : runners.execute!(ctx, task, next);
      },
    },
    log: silentLogger,
  });
  const route = createRunnerRoute({
    store,
    log: silentLogger,
    admin: localRunnerAdmin("bench", "bench"),
  });
  const server = createServer((request, response) => {
    void route(request, response, new URL(request.url ?? "/", "http://localhost")).then(
      (answered) => {
        if (!answered) response.writeHead(404).end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await runtime.stop({ graceMs: 1000 });
    },
  };
}

async function startRunnerChild(
  store: Database,
  url: string,
  dir: string,
): Promise<{ kill(signal: NodeJS.Signals): void; exited: Promise<void> }> {
  const { token } = await createRegistrationToken(store, {
    scope: { kind: "local", name: "*" },
    createdBy: "bench",
    expiresInMs: 600_000,
  });
  const child = spawn(
    process.execPath,
    [BIN, "--url", url, "runner", "--token", token, "--label", "bench"].concat([
      "--concurrency",
      String(SLOTS),
      "--state-dir",
      join(dir, "runner"),
      "--name",
      "bench",
    ]),
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let stderr = "";
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const deadline = Date.now() + 30_000;
  while (!stderr.includes("is waiting for steps")) {
    if (Date.now() > deadline || child.exitCode !== null)
      throw new Error(`the runner did not start:\n${stderr}`);
    await sleep(20);
  }
  return { kill: (signal) => child.kill(signal), exited };
}

function flow(viaRunner: boolean, steps: number, command: string): string {
  const lines = ["name: bench", "steps:"];
  for (let i = 0; i < steps; i++) {
    lines.push(`  s${i}:`);
    if (viaRunner) lines.push("    runs-on: bench");
    lines.push(`    run: ${JSON.stringify(command)}`);
  }
  return `${lines.join("\n")}\n`;
}

async function latencies(
  store: Database,
  service: BatonService,
  count: number,
  viaRunner: boolean,
): Promise<number[]> {
  const source = flow(viaRunner, 1, 'echo "t=$(date +%s%3N)" >> "$BATON_OUTPUT"');
  const values: number[] = [];
  for (let i = 0; i < count; i++) {
    const { runId } = await service.startRun({
      flowFile: { path: "bench.yml", source },
      actor: "bench",
    });
    await waitFor(
      store,
      "SELECT count(*)::int AS n FROM runs WHERE id = $1 AND status NOT IN ('success', 'failure', 'cancelled')",
      { params: [runId], everyMs: 5 },
    );
    const result = await store.query<{ ready: string; outputs: { t?: string } }>(
      `SELECT (SELECT extract(epoch FROM e.at) * 1000 FROM run_events e
                WHERE e.run_id = s.run_id AND e.type = 'attempt.started' ORDER BY e.seq LIMIT 1) AS ready,
              s.outputs
         FROM steps s WHERE s.run_id = $1`,
      [runId],
    );
    const row = result.rows[0];
    if (!row?.outputs.t || !row.ready)
      throw new Error(`run ${runId} has no timing: ${JSON.stringify(row)}`);
    values.push(Number(row.outputs.t) - Number(row.ready));
  }
  return values;
}

async function throughput(
  store: Database,
  service: BatonService,
  runs: number,
  width: number,
  viaRunner: boolean,
): Promise<number> {
  const source = flow(viaRunner, width, "true");
  const started = Date.now();
  const ids: string[] = [];
  for (let i = 0; i < runs; i++) {
    ids.push(
      (await service.startRun({ flowFile: { path: "bench.yml", source }, actor: "bench" })).runId,
    );
  }
  await waitFor(
    store,
    "SELECT count(*)::int AS n FROM runs WHERE id = ANY ($1::text[]) AND status NOT IN ('success', 'failure', 'cancelled')",
    { params: [ids], everyMs: 20, timeoutMs: 600_000 },
  );
  const failed = await store.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM runs WHERE id = ANY ($1::text[]) AND status <> 'success'",
    [ids],
  );
  if ((failed.rows[0]?.n ?? 0) > 0)
    throw new Error(`${failed.rows[0]?.n} bench runs did not succeed`);
  return (runs * width) / ((Date.now() - started) / 1000);
}
