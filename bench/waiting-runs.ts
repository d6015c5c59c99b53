/**
 * (d) Many runs waiting on a signal: the runtime's resident memory, and proof that it does
 * not poll while nothing happens. The runtime runs in a child process (runtime-child.ts)
 * so that its memory is not mixed with the benchmark's (which creates the runs).
 *
 * Each run is one step waiting for the signal `go`: the decision that creates the run parks
 * it at once (step.waiting, plus a timer task for the run's 30-day timeout), and the
 * runtime is notified of each new task as in production. Once all wait, and after
 * a quiet spell long enough for Postgres to report every backend's statistics (an idle
 * backend may hold them for up to 10 s), an idle window is watched three ways: the round trips
 * the runtime sent (counted in `pg`, counting-database.ts), the commits of the bench database
 * (pg_stat_database) and the runtime's connections' last activity (pg_stat_activity, which
 * is live). Finally a few runs are signalled and must finish.
 */
import { BatonService } from "../app/runtime/service.js";
import { openPostgres } from "../app/store/postgres.js";
import type { BenchDatabase } from "./bench-database.js";
import { readCounters, sleep, waitFor, withAdmin, withBenchDatabase } from "./bench-database.js";
import { createRuns, waitingFlow } from "./bench-flows.js";
import { diffCounts } from "./counting-database.js";
import { RuntimeChild } from "./runtime-process.js";
import type { Sizes } from "./runtime.js";
import { figure, fmt, printTable } from "./table.js";

const RUNTIME_APP = "baton-bench-runtime";
/** Longer than Postgres's PGSTAT_IDLE_INTERVAL (10 s): every backend has reported by then. */
const QUIET_MS = 11_000;
const SIGNALLED = 5;

export async function benchWaitingRuns(sizes: Sizes): Promise<void> {
  await withBenchDatabase({}, (bench) => measure(bench, sizes));
}

async function measure(bench: BenchDatabase, sizes: Sizes): Promise<void> {
  const { child } = await RuntimeChild.fork(bench.urlFor(RUNTIME_APP), sizes.concurrency);
  try {
    await child.start();
    await sleep(500);
    const empty = await child.sample();

    // Create the runs in batches through BatonService, while the runtime works on them.
    const started = Date.now();
    const client = openPostgres({ connectionString: bench.urlFor("baton-bench-client") });
    let ids: string[];
    let createdMs: number;
    let waitingMs: number;
    try {
      const flows = Array.from({ length: 8 }, (_, i) => waitingFlow(`wait-${i}`));
      ids = await createRuns(new BatonService({ store: client }), flows, sizes.waitingRuns);
      createdMs = Date.now() - started;
      await waitFor(
        client,
        "SELECT ($1::int - count(*))::int AS n FROM steps WHERE step = 'go' AND status = 'waiting'",
        { params: [sizes.waitingRuns], everyMs: 250, timeoutMs: 600_000 },
      );
      waitingMs = Date.now() - started;
    } finally {
      await client.close();
    }

    // Quiet spell, then the idle window.
    await sleep(QUIET_MS);
    const before = await child.sample();
    const window = await withAdmin(async (admin) => {
      const counters0 = await readCounters(admin, bench.name);
      const t0 = await admin.query<{ t: Date }>("SELECT clock_timestamp() AS t");
      await sleep(sizes.idleWindowMs);
      const counters1 = await readCounters(admin, bench.name);
      const activity = await admin.query<{ connections: number; active: number }>(
        `SELECT count(*)::int AS connections,
                count(*) FILTER (WHERE state <> 'idle' OR state_change > $3)::int AS active
           FROM pg_stat_activity WHERE datname = $1 AND application_name = $2`,
        [bench.name, RUNTIME_APP, t0.rows[0]?.t],
      );
      return {
        commits: counters1.xactCommit - counters0.xactCommit,
        connections: activity.rows[0]?.connections ?? 0,
        active: activity.rows[0]?.active ?? 0,
      };
    });
    const after = await child.sample();
    const inWindow = diffCounts(after.counts, before.counts);
    const queries = inWindow.roundTrips;
    const cpuMs = (after.cpuMicros - before.cpuMicros) / 1000;

    // Sanity: signalled runs finish.
    const signal = openPostgres({ connectionString: bench.urlFor("baton-bench-client") });
    let finished = 0;
    try {
      const service = new BatonService({ store: signal });
      const chosen = ids.slice(0, SIGNALLED);
      for (const id of chosen) await service.signal(id, "go", { from: "bench" }, "bench");
      for (const id of chosen) {
        const details = await service.waitForRun(id, { signal: AbortSignal.timeout(30_000) });
        if (details.run.status === "success") finished += 1;
      }
    } finally {
      await signal.close();
    }

    const seconds = sizes.idleWindowMs / 1000;
    printTable(
      `(d) ${fmt.int(sizes.waitingRuns)} runs waiting on a signal; the runtime in a child process (concurrency ${sizes.concurrency})`,
      [
        {
          label: "runtime child RSS, all runs waiting",
          value: fmt.mb(after.rss),
          figure: figure({
            figure: `memory.rss_mb.${sizes.waitingRuns}_waiting_runs`,
            baton: after.rss / 1024 / 1024,
            unit: "MB",
            aim: { of: "baton", op: "<", value: 200 },
          }),
        },
        { label: "  (heap used)", value: fmt.mb(after.heapUsed) },
        { label: "runtime child RSS before any run", value: fmt.mb(empty.rss) },
        {
          label: `round trips by the runtime in ${seconds} s idle (counted in pg)`,
          value: String(queries),
          figure: figure({
            figure: `memory.idle_round_trips_in_${seconds}s`,
            baton: queries,
            unit: "round trips",
            aim: { of: "baton", op: "<=", value: 2 },
          }),
        },
        {
          label: `commits on the bench database in ${seconds} s idle (server)`,
          value: String(window.commits),
          figure: figure({
            figure: `memory.idle_server_commits_in_${seconds}s`,
            baton: window.commits,
            unit: "commits",
            aim: { of: "baton", op: "<=", value: 2 },
          }),
        },
        {
          label: `runtime connections active during the window (of ${window.connections})`,
          value: String(window.active),
        },
        {
          label: `runtime CPU time in ${seconds} s idle`,
          value: fmt.ms(cpuMs),
          figure: figure({
            figure: `memory.idle_cpu_ms_in_${seconds}s`,
            baton: cpuMs,
            unit: "ms",
            aim: { of: "baton", op: "<", value: 50 * seconds },
          }),
        },
        {
          label: `created ${fmt.int(sizes.waitingRuns)} runs / all waiting after`,
          value: `${fmt.fixed(createdMs / 1000)} s / ${fmt.fixed(waitingMs / 1000)} s`,
        },
        {
          label: `signalled ${SIGNALLED} runs with go: finished`,
          value: `${finished} of ${SIGNALLED}`,
          figure: figure({
            figure: "memory.signalled_runs_finished",
            baton: finished,
            unit: "runs",
            aim: { of: "baton", op: ">=", value: SIGNALLED },
          }),
        },
      ],
      [
        `The window starts ${QUIET_MS / 1000} s after the last run was seen waiting. With no task due, the`,
        "runtime sleeps until a notification, or the next task's time (the runs' 30-day timeouts),",
        "at most maxIdleMs (Default: 30 s), so one claim and one look at the next task's time may",
        "land in any window: 2 queries in 30 s at most.",
      ],
    );
  } finally {
    await child.stop();
  }
}
