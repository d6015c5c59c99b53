/**
 * Fresh databases for tests: every test file gets its own, cloned from a migrated
 * template (Postgres: CREATE DATABASE … TEMPLATE; PGlite: a copy of a migrated data
 * directory), and drops it afterwards. Nothing is shared between test files.
 */
import { createHash, randomBytes } from "node:crypto";
import { cp, mkdtemp, rename, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import type { Database } from "../../app/store/database.js";
import { PG_ERRORS, pgErrorCode } from "../../app/store/database.js";
import { migrate } from "../../app/store/migrate.js";
import { MIGRATIONS } from "../../app/store/migrations/index.js";
import { openPglite } from "../../app/store/pglite.js";
import { openPostgres } from "../../app/store/postgres.js";
import { DEFAULT_TEST_DATABASE_URL } from "./test-postgres-server.js";

export type Backend = "postgres" | "pglite";
export const BACKENDS: readonly Backend[] = ["postgres", "pglite"];

/**
 * The server test databases are made on: TEST_DATABASE_URL, which `npm test`'s runner
 * (test/run-tests.ts) always sets, to the server it picked or started.
 */
export function adminUrl(): string {
  return process.env.TEST_DATABASE_URL ?? DEFAULT_TEST_DATABASE_URL;
}

const schemaHash = createHash("sha256")
  .update(MIGRATIONS.map((m) => `${m.id}:${m.sql}`).join("\n"))
  .digest("hex")
  .slice(0, 12);

export interface TestDatabase {
  backend: Backend;
  db: Database;
  /** Postgres: the database's URL (for child processes). */
  url?: string;
  /** PGlite: the data directory. */
  dataDir?: string;
  /** Close and delete the database. */
  drop(): Promise<void>;
}

export async function createTestDatabase(backend: Backend): Promise<TestDatabase> {
  if (backend === "postgres") {
    const created = await createPostgresDatabase();
    const url = created.url;
    const db = openPostgres({ connectionString: url, max: 20 });
    return {
      backend,
      db,
      url,
      async drop() {
        await db.close();
        await created.drop();
      },
    };
  }
  const dataDir = await createPgliteDataDir();
  const db = await openPglite(dataDir);
  return {
    backend,
    db,
    dataDir,
    async drop() {
      await db.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** An empty (unmigrated) database, for migration tests. */
export async function createEmptyPostgresDatabase(): Promise<{
  url: string;
  drop(): Promise<void>;
}> {
  return createPostgresDatabase("template0");
}

/** A new migrated Postgres database; `drop` removes it (disconnecting anyone left). */
export async function createPostgresDatabase(
  template?: string,
): Promise<{ url: string; drop(): Promise<void> }> {
  const source = template ?? (await ensurePostgresTemplate());
  const name = `baton_test_${randomBytes(6).toString("hex")}`;
  await withAdmin(async (admin) => {
    for (let tries = 0; ; tries++) {
      try {
        await admin.query(`CREATE DATABASE ${name} TEMPLATE ${source}`);
        return;
      } catch (error: unknown) {
        // Another test file is creating from the same template at this moment.
        if (pgErrorCode(error) !== PG_ERRORS.objectInUse || tries > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 200));
      }
    }
  });
  const url = new URL(adminUrl());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      await withAdmin((admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

async function ensurePostgresTemplate(): Promise<string> {
  const template = `baton_template_${schemaHash}`;
  await withAdmin(async (admin) => {
    // One builder at a time, across test processes.
    await admin.query("SELECT pg_advisory_lock(727001)");
    try {
      const exists = await admin.query("SELECT 1 FROM pg_database WHERE datname = $1", [template]);
      if (exists.rows.length > 0) return;
      const building = `${template}_building_${process.pid}`;
      await admin.query(`DROP DATABASE IF EXISTS ${building}`);
      await admin.query(`CREATE DATABASE ${building} TEMPLATE template0`);
      const url = new URL(adminUrl());
      url.pathname = `/${building}`;
      const db = openPostgres({ connectionString: url.toString(), max: 1 });
      try {
        await migrate(db);
      } finally {
        await db.close();
      }
      await admin.query(`ALTER DATABASE ${building} RENAME TO ${template}`);
    } finally {
      await admin.query("SELECT pg_advisory_unlock(727001)");
    }
  });
  return template;
}

async function withAdmin<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: adminUrl() });
  try {
    await client.connect();
  } catch (error: unknown) {
    // A test file run with plain `node --test`, and no server where it looked.
    const code = (error as { code?: unknown }).code;
    if (code !== "ECONNREFUSED" && code !== "ENOTFOUND" && code !== "EHOSTUNREACH") throw error;
    const where = process.env.TEST_DATABASE_URL === undefined ? "default" : "TEST_DATABASE_URL";
    throw new Error(
      `no Postgres for the tests at the ${where} address (${String(error)}): run them through ` +
        "`node dist/test/run-tests.js <files>` (what `npm test` does), which starts one, or " +
        "set TEST_DATABASE_URL to a server.",
      { cause: error },
    );
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** A new migrated PGlite data directory (a copy of a cached, migrated template). */
export async function createPgliteDataDir(): Promise<string> {
  const template = join(tmpdir(), `baton-pglite-template-${schemaHash}`);
  if (!(await exists(template))) {
    const building = await mkdtemp(join(tmpdir(), "baton-pglite-building-"));
    const db = await openPglite(building);
    await migrate(db);
    await db.close();
    try {
      await rename(building, template);
    } catch {
      // Another test process published it first.
      await rm(building, { recursive: true, force: true });
    }
  }
  const dir = await mkdtemp(join(tmpdir(), "baton-pglite-test-"));
  await cp(template, dir, { recursive: true });
  return dir;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
