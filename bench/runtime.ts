/**
 * Runtime benchmarks on a real Postgres, each on its own fresh database, with an
 * in-process no-op executor for `run` steps (orchestration is measured, not bash). The
 * runtime runs alone in a child process (runtime-child.ts); this process creates the runs
 * and watches them, so watching costs the runtime nothing. Round trips are counted in
 * `pg` as they are sent (counting-database.ts).
 *
 * - throughput: many concurrent runs of parallel no-op steps, drained by one runtime,
 *   beside graphile-worker draining as many no-op jobs at the same concurrency, on the
 *   same server at the same durability (both read it back from their own connections);
 * - chain: chains of 40, 200 and 1,000 steps, one run at a time: per-step time from the
 *   engine's own timestamps, round trips and WAL bytes (pg_current_wal_lsn) per step;
 * - commits: database commits per executed step, from the server's counters.
 *
 * The memory of waiting runs is in waiting-runs.ts.
 */
import pg from "pg";
import type { RunEvent } from "../app/engine/types.js";
import { BatonService } from "../app/runtime/service.js";
import { openPostgres } from "../app/store/postgres.js";
import type { BenchDatabase } from "./bench-database.js";
import { settledCounters, sleep, waitFor, withBenchDatabase } from "./bench-database.js";
import type { FlowFile } from "./bench-flows.js";
import { chainFlow, createRuns, parallelFlow } from "./bench-flows.js";
import type { QueryCounts } from "./counting-database.js";
import { diffCounts } from "./counting-database.js";
import { GRAPHILE_APP, graphileDrain } from "./graphile-anchor.js";
import type { Durability } from "./runtime-child-protocol.js";
import { describeDurability, RuntimeChild } from "./runtime-process.js";
import type { Row } from "./table.js";
import { figure, fmt, median, percentile, printTable, say } from "./table.js";

export interface Sizes {
  /** Throughput: runs, parallel steps per run, rounds (each side, alternating). */
  throughputRuns: number;
  throughputWidth: number;
  throughputRounds: number;
  /**
   * Tasks handled at once, by the runtime and by graphile-worker alike. A no-op step is
   * a few round trips to Postgres and no work of its own, so on a 2-core machine (where
   * Postgres and Node share the cores) a handful in flight keep both cores busy; beyond
   * that, more only adds contention. 8 is also within `openPostgres`'s default pool (10).
   */
  concurrency: number;
  /** Chain lengths, and how many runs of each (after one warm-up run of the first). */
  chains: readonly { length: number; runs: number }[];
  commitRuns: number;
  /** The chain of the commits part. */
  commitChainLength: number;
  waitingRuns: number;
  idleWindowMs: number;
  /** Webhook deliveries sent at 200/s, per target (bench/webhooks.ts). */
  webhookDeliveries: number;
  /** Trigger deliveries, one at a time (bench/webhooks.ts). */
  triggerDeliveries: number;
  /** Runs of one workflow step, one at a time, per database (bench/workflows.ts). */
  workflowRuns: number;
}

export const FULL_SIZES: Sizes = {
  throughputRuns: 2000,
  throughputWidth: 4,
  throughputRounds: 2,
  concurrency: 8,
  chains: [
    { length: 40, runs: 5 },
    { length: 200, runs: 3 },
    { length: 1000, runs: 1 },
  ],
  commitRuns: 200,
  commitChainLength: 40,
  waitingRuns: 10_000,
  idleWindowMs: 5000,
  webhookDeliveries: 2000,
  triggerDeliveries: 100,
  workflowRuns: 20,
};

export const QUICK_SIZES: Sizes = {
  throughputRuns: 100,
  throughputWidth: 4,
  throughputRounds: 1,
  concurrency: 8,
  chains: [
    { length: 40, runs: 2 },
    { length: 200, runs: 1 },
  ],
  commitRuns: 20,
  commitChainLength: 40,
  waitingRuns: 500,
  idleWindowMs: 2000,
  webhookDeliveries: 400,
  triggerDeliveries: 30,
  workflowRuns: 10,
};

const TERMINAL = "('success', 'failure', 'cancelled')";
const RUNTIME_APP = "baton-bench-runtime";
const CLIENT_APP = "baton-bench-client";

// ---------------------------------------------------------------------------------------
// (a) Throughput
// ---------------------------------------------------------------------------------------

interface BatonDrain {
  steps: number;
  ms: number;
  perSecond: number;
  /** Runs that did not end in success (should be 0). */
  failed: number;
  /** What the runtime sent to Postgres while it drained. */
  counts: QueryCounts;
  durability: Durability;
  createMs: number;
}

/**
 * Create every run first (their first decisions enqueue every step's `execute` task, as
 * graphile's jobs are all enqueued first), then start the runtime child and time it from
 * its start to the engine's `at` of the last `run.finished`. Both clocks are Date.now()
 * of this machine. This process waits on the child's count of executed steps (over IPC),
 * then polls the runs once every step has run.
 */
async function batonDrain(bench: BenchDatabase, sizes: Sizes): Promise<BatonDrain> {
  const steps = sizes.throughputRuns * sizes.throughputWidth;
  const store = openPostgres({ connectionString: bench.urlFor(CLIENT_APP) });
  try {
    const service = new BatonService({ store });
    const flows = Array.from({ length: 4 }, (_, i) =>
      parallelFlow(`noop-${sizes.throughputWidth}-${i}`, sizes.throughputWidth),
    );
    const creating = Date.now();
    await createRuns(service, flows, sizes.throughputRuns);
    const createMs = Date.now() - creating;
    const { child, durability } = await RuntimeChild.fork(
      bench.urlFor(RUNTIME_APP),
      sizes.concurrency,
    );
    let counts: QueryCounts;
    let started: number;
    try {
      const before = await child.sample();
      started = await child.start();
      const deadline = Date.now() + 300_000;
      while ((await child.sample()).executed < steps) {
        if (Date.now() > deadline) throw new Error(`gave up waiting for ${steps} steps to run`);
        await sleep(50);
      }
      await waitFor(store, `SELECT count(*)::int AS n FROM runs WHERE status NOT IN ${TERMINAL}`);
      counts = diffCounts((await child.quiescent()).counts, before.counts);
    } finally {
      await child.stop();
    }
    const result = await store.query<{ last: number; failed: number }>(
      `SELECT max((data ->> 'at')::float8) AS last,
              count(*) FILTER (WHERE data ->> 'status' <> 'success')::int AS failed
         FROM run_events WHERE type = 'run.finished'`,
    );
    const ms = (result.rows[0]?.last ?? Number.NaN) - started;
    return {
      steps,
      ms,
      perSecond: (steps / ms) * 1000,
      failed: result.rows[0]?.failed ?? 0,
      counts,
      durability,
      createMs,
    };
  } finally {
    await store.close();
  }
}

export async function benchThroughput(sizes: Sizes): Promise<void> {
  const steps = sizes.throughputRuns * sizes.throughputWidth;
  const baton: BatonDrain[] = [];
  const graphile: Awaited<ReturnType<typeof graphileDrain>>[] = [];
  // Alternate the two, each on a fresh database, so that background load hits both alike.
  for (let round = 0; round < sizes.throughputRounds; round += 1) {
    say(`  throughput round ${round + 1} of ${sizes.throughputRounds}: graphile-worker…\n`);
    graphile.push(
      await withBenchDatabase({ migrated: false }, (bench) =>
        graphileDrain(bench.urlFor(GRAPHILE_APP), steps, sizes.concurrency),
      ),
    );
    say(`  throughput round ${round + 1} of ${sizes.throughputRounds}: Baton…\n`);
    baton.push(await withBenchDatabase({}, (bench) => batonDrain(bench, sizes)));
  }
  const batonRate = median(baton.map((r) => r.perSecond));
  const graphileRate = median(graphile.map((r) => r.perSecond));
  const failed = baton.reduce((total, r) => total + r.failed, 0);
  const durabilities = new Set([
    ...baton.map((r) => `Baton ${describeDurability(r.durability)}`),
    ...graphile.map((r) => `graphile-worker ${describeDurability(r.durability)}`),
  ]);
  const perStep = (counts: QueryCounts[], of: (c: QueryCounts) => number) =>
    fmt.fixed(median(counts.map(of)) / steps, 2);
  const rows: Row[] = [
    {
      label: `Baton: ${fmt.int(sizes.throughputRuns)} runs × ${sizes.throughputWidth} no-op steps`,
      value: `${fmt.int(batonRate)} steps/s`,
      figure: figure({
        figure: "throughput.noop_steps_per_s",
        baton: batonRate,
        anchor: graphileRate,
        unit: "steps/s",
        aim: { of: "ratio", op: ">=", value: 1 },
      }),
    },
    {
      label: `graphile-worker: ${fmt.int(steps)} no-op jobs (anchor)`,
      value: `${fmt.int(graphileRate)} jobs/s`,
    },
    { label: "ratio Baton / graphile-worker", value: fmt.ratio(batonRate / graphileRate) },
    {
      label: "round trips per step: Baton / graphile-worker (counted in pg)",
      value: `${perStep(
        baton.map((r) => r.counts),
        (c) => c.roundTrips,
      )} / ${perStep(
        graphile.map((r) => r.counts),
        (c) => c.roundTrips,
      )}`,
    },
    {
      label: "commits per step: Baton / graphile-worker (client side)",
      value: `${perStep(
        baton.map((r) => r.counts),
        (c) => c.commits,
      )} / ${perStep(
        graphile.map((r) => r.counts),
        (c) => c.commits,
      )}`,
    },
    { label: "Baton runs not successful", value: String(failed) },
  ];
  printTable(
    `(a) throughput: median of ${sizes.throughputRounds} rounds, concurrency ${sizes.concurrency}, fresh database each, same server`,
    rows,
    [
      `Durability, as each side's own connection reads it: ${[...durabilities].join("; ")}.`,
      "Both sides start with all work enqueued (Baton: runs created, their steps' execute tasks",
      "inserted; graphile: jobs added) and are timed from the worker's start: graphile to the",
      "last job's handler call, Baton to the engine's `at` of the last run.finished. Baton's",
      "runtime runs in a child process; graphile-worker in this one, with nothing else running.",
      `Rounds, ms for ${fmt.int(steps)} steps (Baton | graphile): ${baton.map((r, i) => `${fmt.int(r.ms)} | ${fmt.int(graphile[i]?.ms ?? Number.NaN)}`).join(", ")}; creating Baton's runs took ${baton.map((r) => `${fmt.int(r.createMs)} ms`).join(", ")} (not timed).`,
    ],
  );
}

// ---------------------------------------------------------------------------------------
// (b) Chains of 40, 200 and 1,000 steps
// ---------------------------------------------------------------------------------------

interface ChainMeasure {
  length: number;
  /** (run.finished − attempt.started of the first step) / steps, engine timestamps. */
  perStepMs: number;
  /** The same over the last tenth of the steps. */
  lastTenthPerStepMs: number;
  /** attempt.started → attempt.finished of each step. */
  stepMs: number[];
  roundTrips: number;
  /** pg_current_wal_lsn() after − before, run creation included. */
  walBytes: number;
}

function chainTiming(events: readonly RunEvent[], length: number) {
  const started = new Map<string, number>();
  const stepMs: number[] = [];
  let finished = Number.NaN;
  for (const event of events) {
    if (event.type === "attempt.started") {
      if (!started.has(event.step)) started.set(event.step, event.at);
    } else if (event.type === "attempt.finished") {
      stepMs.push(event.at - (started.get(event.step) ?? Number.NaN));
    } else if (event.type === "run.finished") {
      finished = event.at;
    }
  }
  const first = started.get("s1") ?? Number.NaN;
  const tenth = Math.max(1, Math.floor(length / 10));
  const lastTenth = started.get(`s${length - tenth + 1}`) ?? Number.NaN;
  return {
    perStepMs: (finished - first) / length,
    lastTenthPerStepMs: (finished - lastTenth) / tenth,
    stepMs,
  };
}

async function walLsn(admin: pg.Client): Promise<string> {
  const result = await admin.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return result.rows[0]?.lsn ?? "0/0";
}

async function walBytes(admin: pg.Client, from: string, to: string): Promise<number> {
  const result = await admin.query<{ n: string }>("SELECT pg_wal_lsn_diff($1, $2)::text AS n", [
    to,
    from,
  ]);
  return Number(result.rows[0]?.n ?? Number.NaN);
}

export async function benchChain(sizes: Sizes): Promise<void> {
  const first = sizes.chains[0];
  if (!first) return;
  const { measures, durability } = await withBenchDatabase({}, async (bench) => {
    const store = openPostgres({ connectionString: bench.urlFor(CLIENT_APP), max: 2 });
    const admin = new pg.Client({ connectionString: bench.urlFor("baton-bench-wal") });
    await admin.connect();
    const { child, durability } = await RuntimeChild.fork(
      bench.urlFor(RUNTIME_APP),
      sizes.concurrency,
    );
    try {
      await child.start();
      const service = new BatonService({ store });
      const runOne = async (length: number): Promise<ChainMeasure> => {
        const flow = chainFlow(`chain-${length}`, length);
        const before = await child.quiescent();
        const lsn0 = await walLsn(admin);
        const { runId } = await service.startRun({ flowFile: flow, actor: "bench" });
        // A primary-key read every 20 ms: the watcher costs the runtime next to nothing.
        await waitFor(
          store,
          `SELECT count(*)::int AS n FROM runs WHERE id = $1 AND status NOT IN ${TERMINAL}`,
          { params: [runId], everyMs: 20, timeoutMs: 600_000 },
        );
        // The run's last task (run-ended) may still be in flight: let the runtime go quiet.
        const after = await child.quiescent();
        const lsn1 = await walLsn(admin);
        const details = await service.getRun(runId);
        if (details.run.status !== "success")
          throw new Error(`chain run ${runId} ended ${details.run.status}`);
        return {
          length,
          ...chainTiming(details.events, length),
          roundTrips: diffCounts(after.counts, before.counts).roundTrips,
          walBytes: await walBytes(admin, lsn0, lsn1),
        };
      };
      await runOne(first.length); // warm-up: JIT, caches, connections
      const measures: ChainMeasure[][] = [];
      for (const chain of sizes.chains) {
        say(`  chain of ${chain.length}: ${chain.runs} run(s)…\n`);
        const runs: ChainMeasure[] = [];
        for (let i = 0; i < chain.runs; i += 1) runs.push(await runOne(chain.length));
        measures.push(runs);
      }
      return { measures, durability };
    } finally {
      await child.stop();
      await admin.end();
      await store.close();
    }
  });
  const summary = measures.map((runs) => ({
    length: runs[0]?.length ?? 0,
    runs: runs.length,
    perStepMs: median(runs.map((r) => r.perStepMs)),
    lastTenthMs: median(runs.map((r) => r.lastTenthPerStepMs)),
    p50: percentile(
      runs.flatMap((r) => r.stepMs),
      50,
    ),
    p95: percentile(
      runs.flatMap((r) => r.stepMs),
      95,
    ),
    roundTrips: median(runs.map((r) => r.roundTrips / r.length)),
    wal: median(runs.map((r) => r.walBytes / r.length)),
    all: runs.map((r) => r.perStepMs.toFixed(2)).join(", "),
  }));
  const base = summary[0];
  const rows: Row[] = [];
  for (const chain of summary) {
    const isBase = chain === base;
    rows.push({
      label: `${fmt.int(chain.length)} steps: per step (run.finished − first attempt.started) / steps`,
      value: fmt.ms(chain.perStepMs, 2),
      figure: isBase
        ? figure({
            figure: `chain.${chain.length}.ms_per_step`,
            baton: chain.perStepMs,
            unit: "ms",
            aim: { of: "baton", op: "<", value: 3 },
          })
        : figure({
            figure: `chain.${chain.length}.ms_per_step`,
            baton: chain.perStepMs,
            anchor: base?.perStepMs ?? Number.NaN,
            unit: "ms",
            aim: { of: "ratio", op: "<=", value: 1.3 },
          }),
    });
    rows.push({
      label: `  last tenth of the steps, per step; runs (ms per step)`,
      value: `${fmt.ms(chain.lastTenthMs, 2)}; ${chain.all}`,
    });
    rows.push({
      label: `  one step, attempt.started → attempt.finished: p50 / p95`,
      value: `${fmt.ms(chain.p50, 2)} / ${fmt.ms(chain.p95, 2)}`,
    });
    rows.push({
      label: `  round trips per step (runtime, counted in pg)`,
      value: fmt.fixed(chain.roundTrips, 2),
    });
    rows.push({
      label: `  WAL per step (pg_current_wal_lsn)`,
      value: fmt.kib(chain.wal),
      ...(isBase
        ? {}
        : {
            figure: figure({
              figure: `chain.${chain.length}.wal_bytes_per_step`,
              baton: chain.wal,
              anchor: base?.wal ?? Number.NaN,
              unit: "bytes",
              aim: { of: "ratio", op: "<=", value: 1.2 },
            }),
          }),
    });
  }
  printTable(
    `(b) chains of no-op steps (each needs the previous), one run at a time, median of ${summary.map((c) => `${c.runs} × ${fmt.int(c.length)}`).join(", ")} after a warm-up; Postgres ${describeDurability(durability)}`,
    rows,
    [
      "Longer chains are compared with the first: per-step time and WAL per step should not grow",
      "with the run's length. Engine timestamps (`at` of run_events); attempt.finished of step n",
      "and attempt.started of step n+1 are one decision with one `at`, so the gap between steps is",
      "inside each step's started → finished. The runtime runs in a child process; this one starts",
      "each run and polls its status by primary key every 20 ms. WAL is the server's: run creation",
      "and autovacuum of the bench database count, and so would other databases' writes.",
    ],
  );
}

// ---------------------------------------------------------------------------------------
// (c) Commits per step
// ---------------------------------------------------------------------------------------

interface CommitMeasure {
  steps: number;
  /** Δ xact_commit − Δ sessions − the benchmark's own polls: the runtime's commits. */
  serverCommits: number;
  client: QueryCounts;
  /** Autovacuum and autoanalyze passes on the bench database (their commits count too). */
  autovacuums: number;
}

/**
 * Create the runs, close every connection and read the server's counters; then start a
 * runtime child, wait until every run has finished and no task is left, stop it, and read
 * them again. What the runtime committed is the difference, less each session's start-up
 * transaction, the child's own reads before it started, and the benchmark's polls.
 */
async function measureCommits(
  bench: BenchDatabase,
  flows: readonly FlowFile[],
  runs: number,
  concurrency: number,
): Promise<CommitMeasure> {
  const setup = openPostgres({ connectionString: bench.url });
  try {
    await createRuns(new BatonService({ store: setup }), flows, runs);
  } finally {
    await setup.close();
  }
  const before = await settledCounters(bench.name);
  const { child } = await RuntimeChild.fork(bench.urlFor(RUNTIME_APP), concurrency);
  const poller = openPostgres({ connectionString: bench.url, max: 1 });
  let polls = 0;
  let ready: QueryCounts;
  let client: QueryCounts;
  try {
    ready = (await child.sample()).counts;
    await child.start();
    polls = await waitFor(
      poller,
      `SELECT ((SELECT count(*) FROM tasks) + (SELECT count(*) FROM runs WHERE status NOT IN ${TERMINAL}))::int AS n`,
      { everyMs: 100 },
    );
    client = diffCounts((await child.quiescent()).counts, ready);
  } finally {
    await child.stop();
    await poller.close();
  }
  const after = await settledCounters(bench.name);
  const check = openPostgres({ connectionString: bench.url, max: 1 });
  try {
    const steps = await check.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM run_events WHERE type = 'attempt.finished'",
    );
    const maintenance = await check.query<{ n: number }>(
      "SELECT coalesce(sum(autovacuum_count + autoanalyze_count), 0)::int AS n FROM pg_stat_all_tables",
    );
    return {
      steps: steps.rows[0]?.n ?? 0,
      autovacuums: maintenance.rows[0]?.n ?? 0,
      serverCommits:
        after.xactCommit -
        before.xactCommit -
        (after.sessions - before.sessions) -
        polls -
        ready.commits,
      client,
    };
  } finally {
    await check.close();
  }
}

export async function benchCommits(sizes: Sizes): Promise<void> {
  const length = sizes.commitChainLength;
  const workloads: { label: string; id: string; flows: FlowFile[]; runs: number }[] = [
    {
      label: `${sizes.commitRuns} runs × 1 step`,
      id: "one_step_runs",
      flows: Array.from({ length: 4 }, (_, i) => parallelFlow(`one-${i}`, 1)),
      runs: sizes.commitRuns,
    },
    {
      label: `1 run × ${length}-step chain`,
      id: `chain_${length}`,
      flows: [chainFlow(`chain-${length}`, length)],
      runs: 1,
    },
  ];
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const workload of workloads) {
    const measure = await withBenchDatabase({}, (bench) =>
      measureCommits(bench, workload.flows, workload.runs, sizes.concurrency),
    );
    const perStep = measure.serverCommits / measure.steps;
    rows.push({
      label: `${workload.label}: commits per executed step (server)`,
      value: fmt.fixed(perStep, 2),
      figure: figure({
        figure: `commits.${workload.id}.per_step`,
        baton: perStep,
        unit: "commits",
        aim: { of: "baton", op: "<=", value: 2 },
      }),
    });
    rows.push({
      label: `  committed by the runtime's pool (client side)`,
      value: fmt.fixed(measure.client.commits / measure.steps, 2),
    });
    rows.push({
      label: `  not sent by the runtime's pool (server − client)`,
      value: fmt.fixed((measure.serverCommits - measure.client.commits) / measure.steps, 2),
    });
    const parts = Object.entries(measure.client.statements)
      .sort(([, a], [, b]) => b - a)
      .map(([label, n]) => `${label} ${fmt.fixed(n / measure.steps, 2)}`);
    notes.push(
      `${workload.label} (${measure.steps} steps; server ${measure.serverCommits} commits, client ${measure.client.commits}, autovacuum/analyze passes ${measure.autovacuums}), round trips per step ${fmt.fixed(measure.client.roundTrips / measure.steps, 2)}: ${parts.join(", ")}`,
    );
  }
  printTable(
    "(c) database commits per step transition (an executed step: its attempt from started to finished)",
    rows,
    [
      ...notes,
      "Server: Δ pg_stat_database.xact_commit of the bench database while a fresh runtime drains",
      "runs created beforehand, less session start-ups and the benchmark's polls. Every committed",
      "transaction counts, read-only autocommit statements included; run-ended tasks are included.",
      "Server − client: the LISTEN connection's own transactions (Postgres reads each batch of",
      "delivered notifications in a transaction).",
    ],
  );
}
