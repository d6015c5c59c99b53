/**
 * Round trips counted as they happen: every `query` a `pg` client sends (pools call it
 * too) is one round trip to the server, since `pg` waits for each answer before it sends
 * the next. Counting there, below the store, sees exactly what the store sends (BEGIN,
 * COMMIT, a `pg_notify(…); COMMIT` sent as one, named prepared statements, LISTEN) and
 * leaves the store the benchmark measures the real one, not a wrapper.
 *
 * Clients are told apart by their `application_name` (see `BenchDatabase.urlFor`), so one
 * process can count the runtime's pool and graphile-worker's apart from its own polls.
 * Connection start-ups are not counted (pooled connections open once).
 */
import pg from "pg";

export interface QueryCounts {
  /** Queries sent: round trips. */
  roundTrips: number;
  /** Transactions committed: statements outside BEGIN … COMMIT, and each COMMIT. */
  commits: number;
  /** BEGIN … COMMIT blocks. */
  transactions: number;
  /** Round trips by what they do (see `classify`). */
  statements: Record<string, number>;
}

const counters = new Map<string, QueryCounts>();
const inTransaction = new WeakSet<object>();
let installed = false;

/**
 * Count the queries of every `pg` client whose application_name is `applicationName`
 * (in this process). Returns a reader of the counts so far.
 */
export function countQueries(applicationName: string): { snapshot(): QueryCounts } {
  install();
  if (!counters.has(applicationName)) counters.set(applicationName, emptyCounts());
  return {
    snapshot: () => {
      const counts = counters.get(applicationName) ?? emptyCounts();
      return { ...counts, statements: { ...counts.statements } };
    },
  };
}

function emptyCounts(): QueryCounts {
  return { roundTrips: 0, commits: 0, transactions: 0, statements: {} };
}

function install(): void {
  if (installed) return;
  installed = true;
  type Query = (this: pg.Client, ...args: unknown[]) => unknown;
  const prototype = pg.Client.prototype as unknown as { query: Query };
  const original = prototype.query;
  prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const name = (this as unknown as { connectionParameters?: { application_name?: string } })
      .connectionParameters?.application_name;
    const counts = name === undefined ? undefined : counters.get(name);
    if (counts) count(this, counts, textOf(args[0]));
    return original.apply(this, args);
  };
}

function textOf(query: unknown): string {
  if (typeof query === "string") return query;
  if (typeof query === "object" && query !== null && "text" in query) {
    const text = query.text;
    if (typeof text === "string") return text;
  }
  return "";
}

function count(client: object, counts: QueryCounts, sql: string): void {
  counts.roundTrips += 1;
  const label = classify(sql);
  counts.statements[label] = (counts.statements[label] ?? 0) + 1;
  const begins = /^\s*(BEGIN|START TRANSACTION)\b/i.test(sql);
  const ends = /\b(COMMIT|ROLLBACK)\s*;?\s*$/i.test(sql);
  if (begins) {
    inTransaction.add(client);
    counts.transactions += 1;
  }
  if (ends && inTransaction.has(client)) {
    inTransaction.delete(client);
    if (/\bCOMMIT\s*;?\s*$/i.test(sql)) counts.commits += 1;
  } else if (!begins && !inTransaction.has(client)) {
    counts.commits += 1; // an autocommitted statement, reads included (Postgres counts them)
  }
}

export function diffCounts(after: QueryCounts, before: QueryCounts): QueryCounts {
  const statements: Record<string, number> = {};
  for (const [label, n] of Object.entries(after.statements)) {
    const d = n - (before.statements[label] ?? 0);
    if (d !== 0) statements[label] = d;
  }
  return {
    roundTrips: after.roundTrips - before.roundTrips,
    commits: after.commits - before.commits,
    transactions: after.transactions - before.transactions,
    statements,
  };
}

/**
 * A short name for a statement, for the breakdown notes. The names follow today's SQL;
 * what they no longer recognise counts as "other read" or "other write".
 */
function classify(sql: string): string {
  if (/^\s*(BEGIN|START TRANSACTION)\b/i.test(sql)) return "begin";
  if (/^\s*(COMMIT|ROLLBACK)\b/i.test(sql) || /pg_notify[\s\S]*COMMIT\s*;?\s*$/i.test(sql))
    return "commit";
  if (sql.includes("FOR UPDATE SKIP LOCKED")) return "claim tasks (write)";
  if (/SELECT min\(/.test(sql) && sql.includes("FROM tasks")) return "next task time (read)";
  if (/^\s*UPDATE tasks SET locked_until/.test(sql)) return "renew lease (write)";
  if (/^\s*(LISTEN|UNLISTEN)\b/i.test(sql)) return "listen";
  if (/^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql)) return "other write";
  if (/^\s*WITH\b/i.test(sql) && /\b(INSERT|UPDATE|DELETE)\b/i.test(sql)) return "other write";
  return "other read";
}
