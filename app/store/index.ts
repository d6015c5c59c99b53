/**
 * The store's public surface for the rest of Baton (CLI, HTTP, runtime entry points).
 * `Store` is the narrow database interface; `openStore` picks Postgres or PGlite.
 */
import type { Database } from "./database.js";
import { migrate } from "./migrate.js";
import { openPglite } from "./pglite.js";
import { openPostgres } from "./postgres.js";

export type {
  Database,
  Database as Store,
  Queryable,
  QueryResult,
  Transaction,
} from "./database.js";
export { CHANNELS, SchemaTooNewError, StoreLockedError } from "./database.js";
export { dataDirOf, openDatabase } from "./open-database.js";
export { readLockOwner, type LockOwner } from "./data-dir-lock.js";
export { migrate } from "./migrate.js";
export type { FlowVersion, Run, Step, StepLogChunk, Task } from "./model.js";

export interface OpenStoreOptions {
  /** A Postgres URL; when absent or empty, the embedded PGlite in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** The embedded database's directory (its files are in `pgdata/`, its lock is `lock`). */
  dataDir: string;
  /** Apply pending migrations. (Default: true) */
  migrate?: boolean;
  onError?: (error: unknown) => void;
}

/**
 * Open the store and migrate it. On the embedded database, throws `StoreLockedError`
 * (with `pid`, and `owner.url` when the owner recorded one) if another process has it open.
 */
export async function openStore(options: OpenStoreOptions): Promise<Database> {
  const db =
    options.databaseUrl !== undefined && options.databaseUrl !== ""
      ? openPostgres({
          connectionString: options.databaseUrl,
          ...(options.onError ? { onError: options.onError } : {}),
        })
      : await openPglite(options.dataDir);
  if (options.migrate ?? true) {
    try {
      await migrate(db);
    } catch (error: unknown) {
      await db.close();
      throw error;
    }
  }
  return db;
}
