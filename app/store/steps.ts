/** The steps projection: one row per step of a run, from the engine's state. */
import type { Queryable } from "./database.js";
import type { Step } from "./model.js";
import { toStep } from "./model.js";
import type { DbStep } from "./rows.js";

export async function getSteps(db: Queryable, runId: string): Promise<Step[]> {
  const result = await db.query<DbStep>(
    "SELECT * FROM steps WHERE run_id = $1 ORDER BY started_at NULLS LAST, step",
    [runId],
  );
  return result.rows.map(toStep);
}

export async function getStep(
  db: Queryable,
  runId: string,
  step: string,
): Promise<Step | undefined> {
  const result = await db.query<DbStep>("SELECT * FROM steps WHERE run_id = $1 AND step = $2", [
    runId,
    step,
  ]);
  const row = result.rows[0];
  return row ? toStep(row) : undefined;
}
