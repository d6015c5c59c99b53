/**
 * Work under a savepoint of a shared transaction: a failure rolls back this work only, and
 * the transaction goes on (one run's refusal among several started in one delivery, a
 * sub-run or draft run refused by its concurrency group). The caller decides what the error
 * means. One fixed name serves nested uses too: a savepoint name refers to the newest one.
 */
import type { Transaction } from "./database.js";

const SAVEPOINT = "baton_savepoint";

/** Runs `work`; if it throws, its writes are rolled back and the error rethrown. */
export async function underSavepoint<T>(tx: Transaction, work: () => Promise<T>): Promise<T> {
  await tx.query(`SAVEPOINT ${SAVEPOINT}`);
  try {
    const result = await work();
    await tx.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
    return result;
  } catch (error: unknown) {
    await tx.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
    throw error;
  }
}
