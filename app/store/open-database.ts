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

export interface OpenStoreOptions {
  /** A Postgres URL; when absent or empty, the embedded PGlite in `dataDir` is used. */
  databaseUrl?: string | undefined;
  /** The embedded database's directory (its files are in `pgdata/`, its lock is `lock`). */
  dataDir: string;
  /** Apply pending migrations. (Default: true) */
  migrate?: boolean;
  /** Background connection errors (the LISTEN connection reconnects by itself). */
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

export interface OpenDatabaseOptions {
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Apply pending migrations. (Default: true) */
  migrate?: boolean;
  onError?: (error: unknown) => void;
}

/** Where the embedded database lives for this environment and working directory. */
export function dataDirOf(env: NodeJS.ProcessEnv, cwd: string): string {
  // An empty value means unset: never open the database in the working directory itself.
  return resolve(cwd, env.BATON_DATA_DIR || ".baton");
}

/** `openStore` from the environment: DATABASE_URL, else BATON_DATA_DIR (Default: `<cwd>/.baton`). */
export function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  return openStore({
    databaseUrl: options.env.DATABASE_URL,
    dataDir: dataDirOf(options.env, options.cwd),
    ...(options.migrate !== undefined ? { migrate: options.migrate } : {}),
    ...(options.onError ? { onError: options.onError } : {}),
  });
}
