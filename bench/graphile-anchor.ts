/**
 * The anchor for step throughput: graphile-worker (a well-tuned Postgres job queue)
 * draining the same number of no-op jobs on the same Postgres, with the same concurrency,
 * on a connection of the same durability (read back from its own pool). Baton does more
 * per step (an event history, a pure engine, projections), so matching it is the aim, not
 * a given. Its round trips are counted as Baton's are (counting-database.ts).
 */
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";
import pg from "pg";
import type { QueryCounts } from "./counting-database.js";
import { countQueries, diffCounts } from "./counting-database.js";
import type { Durability } from "./runtime-child-protocol.js";

// graphile-worker logs every job at info level; the benchmark prints its own table.
const quietLogger = new Logger(() => () => {});

export const GRAPHILE_APP = "baton-bench-graphile";

export interface DrainResult {
  jobs: number;
  ms: number;
  perSecond: number;
  /** What the worker sent while it drained (not the enqueueing). */
  counts: QueryCounts;
  durability: Durability;
}

/** `connectionString` must carry `application_name=GRAPHILE_APP` (its round trips are counted by it). */
export async function graphileDrain(
  connectionString: string,
  jobs: number,
  concurrency: number,
): Promise<DrainResult> {
  // Our own pool (graphile's default size, 10, as Baton's), ended and awaited here: the pool
  // graphile makes from a connection string is ended without waiting, and dropping the
  // database afterwards would then kill its idle connections under an unhandled error.
  const pgPool = new pg.Pool({ connectionString, max: 10 });
  pgPool.on("error", () => {});
  pgPool.on("connect", (client) => client.on("error", () => {}));
  try {
    return await drain(pgPool, jobs, concurrency);
  } finally {
    await pgPool.end();
  }
}

async function drain(pgPool: pg.Pool, jobs: number, concurrency: number): Promise<DrainResult> {
  const counter = countQueries(GRAPHILE_APP);
  const show = async (name: string) =>
    Object.values((await pgPool.query(`SHOW ${name}`)).rows[0] as Record<string, string>)[0] ?? "?";
  const durability = {
    synchronousCommit: await show("synchronous_commit"),
    fsync: await show("fsync"),
  };
  await runMigrations({ pgPool, logger: quietLogger });
  const utils = await makeWorkerUtils({ pgPool, logger: quietLogger });
  try {
    for (let start = 0; start < jobs; start += 1000) {
      const batch = Array.from({ length: Math.min(1000, jobs - start) }, (_, i) => ({
        identifier: "noop",
        payload: { i: start + i },
      }));
      await utils.addJobs(batch);
    }
  } finally {
    await utils.release();
  }
  let done = 0;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const before = counter.snapshot();
  const started = performance.now();
  const runner = await run({
    pgPool,
    concurrency,
    noHandleSignals: true,
    pollInterval: 1000,
    logger: quietLogger,
    taskList: {
      noop: () => {
        done += 1;
        if (done === jobs) finish();
        return Promise.resolve();
      },
    },
  });
  await finished;
  const ms = performance.now() - started;
  await runner.stop();
  return {
    jobs,
    ms,
    perSecond: (jobs / ms) * 1000,
    counts: diffCounts(counter.snapshot(), before),
    durability,
  };
}
