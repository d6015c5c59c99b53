/**
 * The `Database` embedded in this process: PGlite (Postgres compiled to WebAssembly) on a
 * data directory, so that `baton` works with nothing to install. One connection, one
 * process: queries and transactions are serialised here, and the data directory is locked
 * against other processes (`StoreLockedError`). Notifications are in-process events.
 */
import { EventEmitter } from "node:events";
import { join, resolve } from "node:path";
import { PGlite } from "@electric-sql/pglite";
import { acquireDataDirLock, type DataDirLock } from "./data-dir-lock.js";
import type { Database, NotifyChannel, Queryable, QueryResult, Transaction } from "./database.js";
import { Mutex } from "./mutex.js";
import { makePrivate } from "./private-dir.js";

export interface PgliteDatabase extends Database {
  readonly kind: "pglite";
  readonly dataDir: string;
  /** The lock on the data directory; `update({ url })` tells other processes where to go. */
  readonly lock: DataDirLock;
}

/**
 * Open (creating if needed) the embedded database in `dataDir` (its Postgres files are in
 * `pgdata/`). The directory is made private first (0700, its files 0600; see
 * private-dir.ts), or refused with `DataDirPermissionsError` saying how to fix it.
 */
export async function openPglite(dataDir: string): Promise<PgliteDatabase> {
  const dir = resolve(dataDir);
  // Before anything is written into it: a directory others can enter is closed first.
  makePrivate(dir);
  const lock = acquireDataDirLock(dir);
  let db: PGlite;
  try {
    db = await PGlite.create(join(dir, "pgdata"));
    // PGlite extracted its cluster with the archive's modes (0666): tighten them now.
    makePrivate(dir);
  } catch (error: unknown) {
    lock.release();
    throw error;
  }
  const mutex = new Mutex();
  const events = new EventEmitter();
  events.setMaxListeners(0);
  let closed = false;
  return {
    kind: "pglite",
    description: `pglite ${join(dir, "pgdata")}`,
    dataDir: dir,
    lock,
    query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
      return mutex.run(async () => {
        const result = await db.query<R>(sql, params as unknown[] | undefined);
        return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
      });
    },
    urgent(): Queryable {
      return {
        query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
          return mutex.run(
            async () => {
              const result = await db.query<R>(sql, params as unknown[] | undefined);
              return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
            },
            { urgent: true },
          );
        },
      };
    },
    transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
      return mutex.run(async () => {
        const pending: [NotifyChannel, string][] = [];
        const value = await db.transaction(async (ptx) => {
          const tx: Transaction = {
            async query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
              const result = await ptx.query<R>(sql, params as unknown[] | undefined);
              return { rows: result.rows, rowCount: result.affectedRows || result.rows.length };
            },
            async exec(sql: string): Promise<void> {
              await ptx.exec(sql);
            },
            notify(channel: NotifyChannel, payload: string): Promise<void> {
              pending.push([channel, payload]);
              return Promise.resolve();
            },
          };
          return fn(tx);
        });
        // Committed: now, and only now, wake the listeners.
        for (const [channel, payload] of pending) events.emit(channel, payload);
        return value;
      });
    },
    listen(
      channel: NotifyChannel,
      onNotify: (payload: string) => void,
    ): Promise<() => Promise<void>> {
      events.on(channel, onNotify);
      return Promise.resolve(() => {
        events.off(channel, onNotify);
        return Promise.resolve();
      });
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await mutex.run(() => db.close());
      try {
        // PGlite rewrites a few files as 0644 while it runs (pg_internal.init).
        makePrivate(dir);
      } finally {
        lock.release();
      }
    },
  };
}
