/**
 * A `Database` that counts what goes through it: transactions, and statements run outside
 * one (each of those is its own transaction on Postgres). The runtime takes its store by
 * injection, so the benchmark sees its traffic without touching it. LISTEN/UNLISTEN on the
 * notification connection are not counted (they bypass `query`); they happen at start and
 * stop only.
 */
import type { Database, QueryResult, Transaction } from "../app/store/database.js";

export interface QueryCounts {
  /** `transaction()` calls that committed (the runtime's writes go through these). */
  transactions: number;
  /** Statements outside a transaction, by what they do (see `classify`). */
  statements: Record<string, number>;
  /** Statements inside transactions, BEGIN and COMMIT included: round trips. */
  inTransactions: number;
}

export interface CountingDatabase {
  db: Database;
  /** A copy of the counts so far. */
  snapshot(): QueryCounts;
}

export function countingDatabase(inner: Database): CountingDatabase {
  let transactions = 0;
  let inTransactions = 0;
  const statements: Record<string, number> = {};
  const db: Database = {
    kind: inner.kind,
    description: inner.description,
    query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      const label = classify(sql);
      statements[label] = (statements[label] ?? 0) + 1;
      return inner.query<R>(sql, params);
    },
    async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      inTransactions += 2; // BEGIN, COMMIT (or ROLLBACK)
      const value = await inner.transaction((tx) =>
        fn({
          ...(tx.kind !== undefined ? { kind: tx.kind } : {}),
          query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
            inTransactions += 1;
            return tx.query<R>(sql, params);
          },
          exec(sql: string): Promise<void> {
            inTransactions += 1;
            return tx.exec(sql);
          },
          notify(channel, payload): Promise<void> {
            inTransactions += 1;
            return tx.notify(channel, payload);
          },
        }),
      );
      transactions += 1;
      return value;
    },
    listen: (channel, onNotify) => inner.listen(channel, onNotify),
    ...(inner.watchRun
      ? {
          watchRun: (runId: string, onChange: () => void) =>
            inner.watchRun?.(runId, onChange) ?? Promise.reject(new Error("no watchRun")),
        }
      : {}),
    close: () => inner.close(),
  };
  return {
    db,
    snapshot: () => ({ transactions, statements: { ...statements }, inTransactions }),
  };
}

/** Total commits: transactions plus statements outside one. */
export function commitsOf(counts: QueryCounts): number {
  return counts.transactions + autocommitted(counts);
}

/** Round trips to the server: statements outside transactions, and everything inside them. */
export function roundTripsOf(counts: QueryCounts): number {
  return counts.inTransactions + autocommitted(counts);
}

function autocommitted(counts: QueryCounts): number {
  return Object.values(counts.statements).reduce((a, b) => a + b, 0);
}

export function diffCounts(after: QueryCounts, before: QueryCounts): QueryCounts {
  const statements: Record<string, number> = {};
  for (const [label, n] of Object.entries(after.statements)) {
    const d = n - (before.statements[label] ?? 0);
    if (d !== 0) statements[label] = d;
  }
  return {
    transactions: after.transactions - before.transactions,
    statements,
    inTransactions: after.inTransactions - before.inTransactions,
  };
}

/** A short name for a statement of the runtime's, for the breakdown tables. */
function classify(sql: string): string {
  if (sql.includes("FOR UPDATE SKIP LOCKED")) return "claim tasks (write)";
  if (/SELECT min\(/.test(sql) && sql.includes("FROM tasks")) return "next task time (read)";
  if (/^\s*UPDATE tasks SET locked_until/.test(sql)) return "renew lease (write)";
  if (sql.includes("FROM steps WHERE run_id = $1 AND step = $2")) return "attempt current? (read)";
  if (/^\s*(INSERT|UPDATE|DELETE)\b/i.test(sql)) return "other write";
  return "other read";
}
