/**
 * Apply the numbered migrations that the database lacks, one transaction each.
 *
 * Safe when several processes start at once: each migration's transaction first takes a
 * transaction-scoped advisory lock (so migrators queue instead of failing), then inserts
 * the migration's row before running it, so that even without the lock two migrators
 * would collide on the primary key instead of applying it twice.
 */
import type { Database } from "./database.js";
import { SchemaTooNewError } from "./database.js";
import { MIGRATIONS } from "./migrations/index.js";

/** An arbitrary constant: the advisory lock key that serialises migrators. */
const MIGRATION_LOCK = 7_262_501;

/** Returns the ids of the migrations this call applied. */
export async function migrate(db: Database): Promise<number[]> {
  const applied: number[] = [];
  const latestKnown = MIGRATIONS.at(-1)?.id ?? 0;
  for (const migration of MIGRATIONS) {
    const ran = await db.transaction(async (tx) => {
      await tx.query("SELECT pg_advisory_xact_lock($1)", [MIGRATION_LOCK]);
      await tx.exec(
        "CREATE TABLE IF NOT EXISTS baton_migrations (id integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
      );
      const latest = await tx.query<{ id: number | null }>(
        "SELECT max(id) AS id FROM baton_migrations",
      );
      const latestApplied = latest.rows[0]?.id ?? 0;
      if (latestApplied > latestKnown) throw new SchemaTooNewError(latestKnown, latestApplied);
      const inserted = await tx.query(
        "INSERT INTO baton_migrations (id) VALUES ($1) ON CONFLICT (id) DO NOTHING",
        [migration.id],
      );
      if (inserted.rowCount === 0) return false;
      await tx.exec(migration.sql);
      return true;
    });
    if (ran) applied.push(migration.id);
  }
  return applied;
}
