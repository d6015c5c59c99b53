/**
 * The store's public surface for the rest of Baton (CLI, HTTP, runtime entry points).
 * `Store` is the narrow database interface; `openStore`/`openDatabase` pick Postgres or PGlite.
 */
export type {
  Database,
  Database as Store,
  Queryable,
  QueryResult,
  Transaction,
} from "./database.js";
export { CHANNELS, SchemaTooNewError, StoreLockedError } from "./database.js";
export {
  dataDirOf,
  openDatabase,
  openStore,
  type OpenDatabaseOptions,
  type OpenStoreOptions,
} from "./open-database.js";
export { readLockOwner, type LockOwner } from "./data-dir-lock.js";
export type { PgliteDatabase } from "./pglite.js";
export { migrate } from "./migrate.js";
export type { FlowVersion, Run, Step, StepLogChunk, Task } from "./model.js";
