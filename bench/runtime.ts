/**
 * Runtime benchmarks on a real Postgres, each on its own fresh database, with an
 * in-process no-op executor for `run` steps (orchestration is measured, not bash):
 *
 * - throughput: many concurrent runs of parallel no-op steps, drained by one runtime,
 *   beside graphile-worker draining as many no-op jobs at the same concurrency;
 * - chain: the per-step overhead of a sequential chain, from the engine's own timestamps;
 * - commits: database commits per executed step, from the server's counters.
 *
 * The memory of waiting runs is in waiting-runs.ts (it needs a child process).
 */
import type { Runtime } from "../app/runtime/runtime.js";
import { startRuntime } from "../app/runtime/runtime.js";
import { BatonService } from "../app/runtime/service.js";
import type { RunEvent } from "../app/engine/types.js";
import type { Database } from "../app/store/database.js";
import { openPostgres } from "../app/store/postgres.js";
import type { BenchDatabase } from "./bench-database.js";
import { settledCounters, waitFor, withBenchDatabase } from "./bench-database.js";
import type { FlowFile } from "./bench-flows.js";
import { benchLogger, chainFlow, createRuns, noopExecutor, parallelFlow } from "./bench-flows.js";
import type { QueryCounts } from "./counting-database.js";
import { commitsOf, countingDatabase, diffCounts, roundTripsOf } from "./counting-database.js";
import { graphileDrain } from "./graphile-anchor.js";
import type { Row } from "./table.js";
import { fmt, median, percentile, printTable } from "./table.js";

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
  chainLength: number;
  chainRuns: number;
  commitRuns: number;
  waitingRuns: number;
  idleWindowMs: number;
  /** Webhook deliveries sent at 200/s, per target (bench/webhooks.ts). */
  webhookDeliveries: number;
  /** Trigger deliveries, one at a time (bench/webhooks.ts). */
  triggerDeliveries: number;
}

export const FULL_SIZES: Sizes = {
  throughputRuns: 500,
  throughputWidth: 4,
  throughputRounds: 3,
  concurrency: 8,
  chainLength: 40,
  chainRuns: 5,
  commitRuns: 200,
  waitingRuns: 10_000,
  idleWindowMs: 5000,
  webhookDeliveries: 2000,
  triggerDeliveries: 200,
};

export const QUICK_SIZES: Sizes = {
  throughputRuns: 50,
  throughputWidth: 4,
  throughputRounds: 1,
  concurrency: 8,
  chainLength: 40,
  chainRuns: 2,
  commitRuns: 20,
  waitingRuns: 500,
  idleWindowMs: 2000,
  webhookDeliveries: 400,
  triggerDeliveries: 30,
};

const TERMINAL = "('success', 'failure', 'cancelled')";

// ---------------------------------------------------------------------------------------
// (a) Throughput
// ---------------------------------------------------------------------------------------

interface BatonDrain {
  steps: number;
  ms: number;
  perSecond: number;
  /** Runs that did not end in success (should be 0). */
  failed: number;
  /** What the runtime sent to Postgres. */
  counts: QueryCounts;
}

/**
 * Create every run first (their first decisions enqueue every step's `execute` task, as
 * graphile's jobs are all enqueued first), then start a runtime and time it from its start
 * to the engine's `at` of the last `run.finished`. Both clocks are this process's Date.now.
 */
async function batonDrain(bench: BenchDatabase, sizes: Sizes): Promise<BatonDrain> {
  const steps = sizes.throughputRuns * sizes.throughputWidth;
  const store = openPostgres({ connectionString: bench.url });
  try {
    const service = new BatonService({ store });
    const flows = Array.from({ length: 4 }, (_, i) =>
      parallelFlow(`noop-${sizes.throughputWidth}-${i}`, sizes.throughputWidth),
    );
    await createRuns(service, flows, sizes.throughputRuns);
    let executed = 0;
    let allExecuted: () => void = () => {};
    const executedAll = new Promise<void>((resolve) => (allExecuted = resolve));
    const runtimeStore = countingDatabase(openPostgres({ connectionString: bench.url }));
    const started = Date.now();
    const runtime = startRuntime({
      store: runtimeStore.db,
      concurrency: sizes.concurrency,
      executors: {
        run: noopExecutor(() => {
          executed += 1;
          if (executed === steps) allExecuted();
        }),
      },
      log: benchLogger,
    });
    try {
      await withTimeout(executedAll, 300_000, `${steps} steps to be executed`);
      // Every step has run; wait for the last outcomes to commit.
      await waitFor(store, `SELECT count(*)::int AS n FROM runs WHERE status NOT IN ${TERMINAL}`);
    } finally {
      await stopRuntime(runtime, runtimeStore.db);
    }
    const result = await store.query<{ last: number; failed: number }>(
      `SELECT max((data ->> 'at')::float8) AS last,
              count(*) FILTER (WHERE data ->> 'status' <> 'success')::int AS failed
         FROM run_events WHERE type = 'run.finished'`,
    );
    const last = result.rows[0]?.last ?? Number.NaN;
    const ms = last - started;
    return {
      steps,
      ms,
      perSecond: (steps / ms) * 1000,
      failed: result.rows[0]?.failed ?? 0,
      counts: runtimeStore.snapshot(),
    };
  } finally {
    await store.close();
  }
}

export async function benchThroughput(sizes: Sizes): Promise<void> {
  const steps = sizes.throughputRuns * sizes.throughputWidth;
  const baton: BatonDrain[] = [];
  const graphile: { ms: number; perSecond: number }[] = [];
  // Alternate the two, each on a fresh database, so that background load hits both alike.
  for (let round = 0; round < sizes.throughputRounds; round += 1) {
    graphile.push(
      await withBenchDatabase({ migrated: false }, (bench) =>
        graphileDrain(bench.url, steps, sizes.concurrency),
      ),
    );
    baton.push(await withBenchDatabase({}, (bench) => batonDrain(bench, sizes)));
  }
  const batonRate = median(baton.map((r) => r.perSecond));
  const graphileRate = median(graphile.map((r) => r.perSecond));
  const failed = baton.reduce((total, r) => total + r.failed, 0);
  const rows: Row[] = [
    {
      label: `Baton: ${fmt.int(sizes.throughputRuns)} runs × ${sizes.throughputWidth} no-op steps`,
      value: `${fmt.int(batonRate)} steps/s`,
      aim: { text: "≥ graphile-worker", met: batonRate >= graphileRate },
    },
    {
      label: `graphile-worker: ${fmt.int(steps)} no-op jobs (anchor)`,
      value: `${fmt.int(graphileRate)} jobs/s`,
    },
    {
      label: "ratio Baton / graphile-worker",
      value: `${batonRate / graphileRate >= 10 ? fmt.fixed(batonRate / graphileRate, 0) : fmt.fixed(batonRate / graphileRate, 2)}×`,
    },
    {
      label: "Baton per step: round trips / commits (client side)",
      value: `${fmt.fixed(median(baton.map((r) => roundTripsOf(r.counts) / r.steps)))} / ${fmt.fixed(median(baton.map((r) => commitsOf(r.counts) / r.steps)))}`,
    },
    { label: "Baton runs not successful", value: String(failed) },
  ];
  printTable(
    `(a) throughput: median of ${sizes.throughputRounds} rounds, concurrency ${sizes.concurrency}, fresh database each`,
    rows,
    [
      "Both sides start with all work enqueued (Baton: runs created, their steps' execute tasks",
      "inserted; graphile: jobs added) and are timed from the worker's start: graphile to the",
      "last job's handler call, Baton to the engine's `at` of the last run.finished.",
      `Rounds, ms for ${fmt.int(steps)} steps (Baton | graphile): ${baton.map((r, i) => `${fmt.int(r.ms)} | ${fmt.int(graphile[i]?.ms ?? Number.NaN)}`).join(", ")}.`,
    ],
  );
}

// ---------------------------------------------------------------------------------------
// (b) Per-step overhead of a chain
// ---------------------------------------------------------------------------------------

interface ChainTiming {
  /** (run.finished − attempt.started of the first step) / steps, engine timestamps. */
  perStepMs: number;
  /** attempt.started → attempt.finished of each step. */
  stepMs: number[];
  counts: QueryCounts;
}

function chainTiming(
  events: readonly RunEvent[],
  length: number,
  counts: QueryCounts,
): ChainTiming {
  const started = new Map<string, number>();
  const stepMs: number[] = [];
  let first = Number.NaN;
  let finished = Number.NaN;
  for (const event of events) {
    if (event.type === "attempt.started") {
      started.set(event.step, event.at);
      if (event.step === "s1") first = event.at;
    } else if (event.type === "attempt.finished") {
      stepMs.push(event.at - (started.get(event.step) ?? Number.NaN));
    } else if (event.type === "run.finished") {
      finished = event.at;
    }
  }
  return { perStepMs: (finished - first) / length, stepMs, counts };
}

export async function benchChain(sizes: Sizes): Promise<void> {
  const timings = await withBenchDatabase({}, async (bench) => {
    const store = openPostgres({ connectionString: bench.url });
    const counted = countingDatabase(openPostgres({ connectionString: bench.url }));
    const runtime = startRuntime({
      store: counted.db,
      concurrency: sizes.concurrency,
      executors: { run: noopExecutor() },
      log: benchLogger,
    });
    try {
      const service = new BatonService({ store });
      const flow = chainFlow(`chain-${sizes.chainLength}`, sizes.chainLength);
      const runOne = async (): Promise<ChainTiming> => {
        const before = counted.snapshot();
        const { runId } = await service.startRun({ flowFile: flow, actor: "bench" });
        const details = await service.waitForRun(runId);
        if (details.run.status !== "success")
          throw new Error(`chain run ${runId} ended ${details.run.status}`);
        // The run's last task (run-ended) may still be in flight: let it finish.
        await waitFor(store, "SELECT count(*)::int AS n FROM tasks");
        return chainTiming(
          details.events,
          sizes.chainLength,
          diffCounts(counted.snapshot(), before),
        );
      };
      await runOne(); // warm-up: JIT, caches, connections
      const measured: ChainTiming[] = [];
      for (let i = 0; i < sizes.chainRuns; i += 1) measured.push(await runOne());
      return measured;
    } finally {
      await stopRuntime(runtime, counted.db);
      await store.close();
    }
  });
  const perStep = median(timings.map((t) => t.perStepMs));
  const allSteps = timings.flatMap((t) => t.stepMs);
  const statements = timings.map((t) => commitsOf(t.counts) / sizes.chainLength);
  printTable(
    `(b) chain of ${sizes.chainLength} no-op steps (each needs the previous), one run at a time, median of ${sizes.chainRuns} runs after a warm-up`,
    [
      {
        label: "per step: (run.finished − first attempt.started) / steps",
        value: fmt.ms(perStep, 2),
        aim: { text: "< 5 ms", met: perStep < 5 },
      },
      { label: "runs (ms per step)", value: timings.map((t) => t.perStepMs.toFixed(2)).join(", ") },
      {
        label: "one step, attempt.started → attempt.finished: p50 / p95",
        value: `${fmt.ms(percentile(allSteps, 50), 2)} / ${fmt.ms(percentile(allSteps, 95), 2)}`,
      },
      {
        label: "runtime commits / round trips per step (client side, median)",
        value: `${fmt.fixed(median(statements), 2)} / ${fmt.fixed(median(timings.map((t) => roundTripsOf(t.counts) / sizes.chainLength)), 1)}`,
      },
    ],
    [
      "Engine timestamps (`at` of run_events). attempt.finished of step n and attempt.started of",
      "step n+1 are one decision with one `at`, so the gap between steps is inside each step's",
      "started → finished: notification, claim, checks, executor, and the commit of the outcome.",
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
 * runtime on a fresh pool, wait until every run has finished and no task is left, stop
 * it, close, and read them again. What the runtime committed is the difference, less each
 * session's start-up transaction and the benchmark's own polls (one commit each).
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
  const counted = countingDatabase(openPostgres({ connectionString: bench.url }));
  const poller = openPostgres({ connectionString: bench.url, max: 1 });
  let polls = 0;
  const runtime = startRuntime({
    store: counted.db,
    concurrency,
    executors: { run: noopExecutor() },
    log: benchLogger,
  });
  try {
    polls = await waitFor(
      poller,
      `SELECT ((SELECT count(*) FROM tasks) + (SELECT count(*) FROM runs WHERE status NOT IN ${TERMINAL}))::int AS n`,
      { everyMs: 100 },
    );
  } finally {
    await stopRuntime(runtime, counted.db);
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
        after.xactCommit - before.xactCommit - (after.sessions - before.sessions) - polls,
      client: counted.snapshot(),
    };
  } finally {
    await check.close();
  }
}

export async function benchCommits(sizes: Sizes): Promise<void> {
  const workloads: { label: string; flows: FlowFile[]; runs: number }[] = [
    {
      label: `${sizes.commitRuns} runs × 1 step`,
      flows: Array.from({ length: 4 }, (_, i) => parallelFlow(`one-${i}`, 1)),
      runs: sizes.commitRuns,
    },
    {
      label: `1 run × ${sizes.chainLength}-step chain`,
      flows: [chainFlow(`chain-${sizes.chainLength}`, sizes.chainLength)],
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
      aim: { text: "≤ 2", met: perStep <= 2 },
    });
    const writes =
      measure.client.transactions +
      Object.entries(measure.client.statements)
        .filter(([label]) => label.includes("write"))
        .reduce((total, [, n]) => total + n, 0);
    rows.push({
      label: `  of which writing (client side)`,
      value: fmt.fixed(writes / measure.steps, 2),
    });
    rows.push({
      label: `  not sent by the runtime's pool (server − client)`,
      value: fmt.fixed((measure.serverCommits - commitsOf(measure.client)) / measure.steps, 2),
    });
    const parts = [
      `transactions ${fmt.fixed(measure.client.transactions / measure.steps, 2)}`,
      ...Object.entries(measure.client.statements)
        .sort(([, a], [, b]) => b - a)
        .map(([label, n]) => `${label} ${fmt.fixed(n / measure.steps, 2)}`),
    ];
    notes.push(
      `${workload.label} (${measure.steps} steps; server ${measure.serverCommits} commits, client ${commitsOf(measure.client)}, autovacuum/analyze passes ${measure.autovacuums}), per step: ${parts.join(", ")}`,
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
      "delivered notifications in a transaction), and LISTEN/UNLISTEN at start and stop.",
    ],
  );
}

// ---------------------------------------------------------------------------------------

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`gave up after ${ms} ms waiting for ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

async function stopRuntime(runtime: Runtime, store: Database): Promise<void> {
  await runtime.stop({ graceMs: 5000 });
  await store.close();
}
