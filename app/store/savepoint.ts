/**
 * Part of a transaction that may be undone alone: `fn` runs inside a SAVEPOINT; when it
 * throws, what it wrote is rolled back and the rest of the transaction goes on (the
 * caller decides what the error means: a refused run is answered, not retried).
 */
import type { Transaction } from "./database.js";

export async function withSavepoint<T>(
  tx: Transaction,
  /** A fixed name: SAVEPOINT takes no parameters. */
  name: "start_sub_run" | "baton_draft_run",
  fn: () => Promise<T>,
): Promise<T> {
  await tx.query(`SAVEPOINT ${name}`);
  try {
    const value = await fn();
    await tx.query(`RELEASE SAVEPOINT ${name}`);
    return value;
  } catch (error: unknown) {
    await tx.query(`ROLLBACK TO SAVEPOINT ${name}`);
    throw error;
  }
}
