/**
 * A fresh database per benchmark on the Postgres server of DATABASE_URL (Default:
 * postgres://postgres@127.0.0.1:5432/postgres, the admin connection), dropped at the end,
 * so that measurements never share state. Also reads the server's per-database counters
 * (pg_stat_database), which are what "commits" means in the commit benchmark.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import type { Database } from "../app/store/database.js";
import { migrate } from "../app/store/migrate.js";
import { openPostgres } from "../app/store/postgres.js";

export function adminUrl(): string {
  const url = process.env.DATABASE_URL;
  return url !== undefined && url !== "" ? url : "postgres://postgres@127.0.0.1:5432/postgres";
}

export interface BenchDatabase {
  name: string;
  /** The database's URL, for `openPostgres`, graphile-worker and child processes. */
  url: string;
  /** The URL with an `application_name`, to tell one process's connections apart in pg_stat_activity. */
  urlFor(applicationName: string): string;
  drop(): Promise<void>;
}

export async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** `CREATE DATABASE baton_bench_<random>`, with Baton's migrations applied unless `migrated` is false. */
export async function createBenchDatabase(
  options: { migrated?: boolean } = {},
): Promise<BenchDatabase> {
  const name = `baton_bench_${randomBytes(5).toString("hex")}`;
  // The name is ours (hex), never user input: CREATE DATABASE takes no parameters.
  await withAdmin((admin) => admin.query(`CREATE DATABASE ${name}`));
  const urlFor = (applicationName?: string) => {
    const url = new URL(adminUrl());
    url.pathname = `/${name}`;
    if (applicationName !== undefined) url.searchParams.set("application_name", applicationName);
    return url.toString();
  };
  const bench: BenchDatabase = {
    name,
    url: urlFor(),
    urlFor,
    async drop() {
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
  if (options.migrated ?? true) {
    const db = openPostgres({ connectionString: bench.url, max: 1 });
    try {
      await migrate(db);
    } catch (error: unknown) {
      await db.close();
      await bench.drop();
      throw error;
    }
    await db.close();
  }
  return bench;
}

/** Run `fn` on a fresh database and drop it afterwards, whatever happens. */
export async function withBenchDatabase<T>(
  options: { migrated?: boolean },
  fn: (bench: BenchDatabase) => Promise<T>,
): Promise<T> {
  const bench = await createBenchDatabase(options);
  try {
    return await fn(bench);
  } finally {
    await bench.drop();
  }
}

export interface DatabaseCounters {
  /** Committed transactions, read-only ones included (an autocommit SELECT is one). */
  xactCommit: number;
  /** Sessions established: each one's start-up is itself one committed transaction. */
  sessions: number;
}

/**
 * The server's counters for one database, once every connection to it has closed and the
 * counters have settled. Backends report their statistics asynchronously (an idle backend
 * may hold them for up to 10 s), but always when they exit; so the caller closes its
 * connections first, and this waits for the backends to go and the figures to stop moving.
 */
export async function settledCounters(database: string): Promise<DatabaseCounters> {
  return withAdmin(async (admin) => {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const left = await admin.query<{ n: number }>(
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1",
        [database],
      );
      if ((left.rows[0]?.n ?? 0) === 0 || Date.now() > deadline) break;
      await sleep(50);
    }
    let last: DatabaseCounters | undefined;
    for (;;) {
      const now = await readCounters(admin, database);
      if (last && now.xactCommit === last.xactCommit && now.sessions === last.sessions) return now;
      if (Date.now() > deadline) return now;
      last = now;
      await sleep(300);
    }
  });
}

export async function readCounters(admin: pg.Client, database: string): Promise<DatabaseCounters> {
  // PG15+: flush this backend's own pending statistics; the snapshot is dropped so that
  // the next read sees what the other backends have reported since.
  await admin.query("SELECT pg_stat_force_next_flush()").catch(() => undefined);
  await admin.query("SELECT pg_stat_clear_snapshot()");
  const result = await admin.query<{ xact_commit: string; sessions: string }>(
    "SELECT xact_commit, sessions FROM pg_stat_database WHERE datname = $1",
    [database],
  );
  const row = result.rows[0];
  return { xactCommit: Number(row?.xact_commit ?? 0), sessions: Number(row?.sessions ?? 0) };
}

/** Poll `sql` (one row, column `n`) until n is 0. Returns how many polls it took. */
export async function waitFor(
  db: Database,
  sql: string,
  options: { params?: unknown[]; everyMs?: number; timeoutMs?: number } = {},
): Promise<number> {
  const { params, everyMs = 20, timeoutMs = 180_000 } = options;
  const deadline = Date.now() + timeoutMs;
  for (let polls = 1; ; polls += 1) {
    const result = await db.query<{ n: number }>(sql, params);
    const left = result.rows[0]?.n ?? 0;
    if (left === 0) return polls;
    if (Date.now() > deadline)
      throw new Error(`gave up after ${timeoutMs} ms: ${left} left for ${sql.slice(0, 80)}…`);
    await sleep(everyMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * "PGlite (fsync=off)", "Postgres (synchronous_commit=on, fsync=on)": the store's
 * durability as its own connection reads it, for the figures' labels (PGlite is opened
 * by app/store/pglite.ts with PGlite's defaults, and those include fsync=off).
 */
export async function describeStore(store: Database): Promise<string> {
  const show = async (name: string) =>
    String(
      Object.values((await store.query<Record<string, string>>(`SHOW ${name}`)).rows[0] ?? {})[0] ??
        "?",
    );
  return store.kind === "pglite"
    ? `PGlite (fsync=${await show("fsync")})`
    : `Postgres (synchronous_commit=${await show("synchronous_commit")}, fsync=${await show("fsync")})`;
}

/** The short name of a store for a figure's id: "pglite_fsync_off", "postgres". */
export function figureKey(description: string): string {
  return description.startsWith("PGlite")
    ? `pglite_fsync_${/fsync=(\w+)/.exec(description)?.[1] ?? "unknown"}`
    : "postgres";
}
