/** Tasks not yet claimed by a worker, dropped by key (a watcher replaced or made useless). */
import type { Queryable } from "./database.js";

/** Delete the tasks with these keys that no worker holds; returns how many. */
export async function deleteUnclaimedTasks(
  tx: Queryable,
  keys: readonly string[],
): Promise<number> {
  if (keys.length === 0) return 0;
  const result = await tx.query(
    "DELETE FROM tasks WHERE key = ANY ($1::text[]) AND locked_by IS NULL",
    [keys],
  );
  return result.rowCount;
}
