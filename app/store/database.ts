/**
 * The one narrow interface through which Baton reaches its database, so that the same
 * code (and the same test suite) runs on a Postgres server (`pg`) and on embedded PGlite.
 * Everything above the store speaks SQL through `query` and `transaction`, nothing else.
 */

export interface QueryResult<R> {
  rows: R[];
  /** Rows inserted, updated or deleted (or returned, for SELECT). */
  rowCount: number;
}

export interface Queryable {
  /** One parameterised statement (`$1`, `$2` …). Never build SQL from user strings. */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
  ): Promise<QueryResult<R>>;
}

export interface Transaction extends Queryable {
  /**
   * The backend, when the transaction says (wrappers may not). On Postgres a run's change
   * is announced only to watchers (`watchRun`); elsewhere always.
   */
  readonly kind?: "postgres" | "pglite";
  /** Several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
  /**
   * Tell listeners on `channel`, once (and only if) this transaction commits. On Postgres
   * this is `pg_notify`, seen by every process; on PGlite it is an in-process event.
   */
  notify(channel: NotifyChannel, payload: string): Promise<void>;
}

/** The notification channels Baton uses. Fixed names, because LISTEN takes no parameters. */
export const CHANNELS = {
  /** A task was enqueued; the payload is its `run_at` in ms (wake up at or before it). */
  tasks: "baton_tasks",
  /** A run changed; the payload is its id. */
  runs: "baton_runs",
  /** A step attempt must stop; the payload is its idempotency key. */
  cancel: "baton_cancel",
  /** A webhook delivery was stored; the payload is its id (wake a delivery worker). */
  deliveries: "baton_deliveries",
  /** A step was queued for self-hosted runners; the payload is its key (wake waiting claims). */
  runnerJobs: "baton_runner_jobs",
  /** A repository's schedules may have changed; the payload is the repository (wake the tickers). */
  schedules: "baton_schedules",
  /** A deployment protection rule waits for a run; the payload is the run id (wake the gate job). */
  gates: "baton_gates",
} as const;
export type NotifyChannel = (typeof CHANNELS)[keyof typeof CHANNELS];

export interface Database extends Queryable {
  readonly kind: "postgres" | "pglite";
  /** For people: "postgres 127.0.0.1:5432/baton" or "pglite /home/me/app/.baton/pgdata". */
  readonly description: string;
  /**
   * Run `fn` in one transaction: committed when it resolves, rolled back when it throws.
   * On PGlite, transactions (and single queries) are serialised: it has one connection.
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Call `onNotify` for every notification on `channel` until the returned function is called. */
  listen(channel: NotifyChannel, onNotify: (payload: string) => void): Promise<() => Promise<void>>;
  /**
   * Call `onChange` when run `runId` changes (a notification on `CHANNELS.runs`; an empty
   * payload after a reconnection) until the returned function is called. On Postgres the
   * watch is also registered in the database (a shared advisory lock held by the LISTEN
   * connection, `runWatchLockKey`), so that a decision notifies only runs someone watches;
   * the registration waits for a decision in progress to commit, so none is missed.
   * Without it (a wrapper), use `listen` on `CHANNELS.runs`.
   */
  watchRun?(runId: string, onChange: () => void): Promise<() => Promise<void>>;
  /**
   * Statements that go before work already waiting for the connection: the webhook
   * inbox's writes, which GitHub waits on (DESIGN.md rule 3). PGlite has one connection
   * that the workers share; a server has a pool, and needs no such lane (absent: use the
   * database itself).
   */
  urgent?(): Queryable;
  close(): Promise<void>;
}

/** The text whose `hashtextextended(…, 0)` is the advisory lock key of watching run `runId`. */
export function runWatchLockKey(runId: string): string {
  return `baton:watch:${runId}`;
}

/** Postgres error codes the runtime treats specially. */
export const PG_ERRORS = {
  uniqueViolation: "23505",
  serializationFailure: "40001",
  deadlockDetected: "40P01",
  objectInUse: "55006",
} as const;

export function pgErrorCode(error: unknown): string | undefined {
  if (typeof error === "object" && error !== null && "code" in error) {
    const code = error.code;
    return typeof code === "string" ? code : undefined;
  }
  return undefined;
}

/**
 * Another process has the embedded database (a PGlite data directory) open. PGlite is
 * in-process and single-connection, so a second process must not open it: talk to the
 * owning process instead (its HTTP API), or stop it, or set DATABASE_URL to share a server.
 */
export class StoreLockedError extends Error {
  constructor(
    readonly dataDir: string,
    readonly lockFile: string,
    readonly pid: number,
    /** What the owner wrote about itself (e.g. `url` of its HTTP API), if anything. */
    readonly owner: Record<string, unknown>,
  ) {
    super(
      `The Baton data directory ${dataDir} is in use by process ${pid}` +
        (typeof owner.url === "string" ? ` (serving ${owner.url})` : "") +
        `. Only one process can open the embedded database: talk to that process, stop it, ` +
        `or set DATABASE_URL to use a shared Postgres server.`,
    );
    this.name = "StoreLockedError";
  }
}

/** The database has migrations this version of Baton does not know: it is older than the schema. */
export class SchemaTooNewError extends Error {
  constructor(
    readonly latestKnown: number,
    readonly latestApplied: number,
  ) {
    super(
      `The database schema is at migration ${latestApplied}, but this Baton only knows up to ` +
        `${latestKnown}. Upgrade Baton, or point it at another database.`,
    );
    this.name = "SchemaTooNewError";
  }
}
