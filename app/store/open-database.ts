/**
 * Open Baton's database the way every entry point does: Postgres when DATABASE_URL is set,
 * else the embedded PGlite in BATON_DATA_DIR (Default: `.baton/` under the working
 * directory). Migrations are applied before it is returned.
 */
import { resolve } from "node:path";
import type { Database } from "./database.js";
import { migrate } from "./migrate.js";
import { openPglite } from "./pglite.js";
import { openPostgres } from "./postgres.js";

export interface OpenDatabaseOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Apply pending migrations. (Default: true) */
  migrate?: boolean;
  onError?: (error: unknown) => void;
}

/** Where the embedded database lives for this environment and working directory. */
export function dataDirOf(env: NodeJS.ProcessEnv, cwd: string): string {
  return resolve(cwd, env.BATON_DATA_DIR ?? ".baton");
}

/**
 * Throws `StoreLockedError` (with the owner's pid and, when it serves one, its URL) when
 * another process has the embedded database open.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const url = options.env.DATABASE_URL;
  const db =
    url !== undefined && url !== ""
      ? openPostgres({
          connectionString: url,
          ...(options.onError ? { onError: options.onError } : {}),
        })
      : await openPglite(dataDirOf(options.env, options.cwd));
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
