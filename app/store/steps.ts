/** The steps projection: one row per step of a run, from the engine's state. */
import type { StepState } from "../engine/types.js";
import type { Queryable } from "./database.js";
import type { Step } from "./model.js";
import { toStep } from "./model.js";
import type { DbStep } from "./rows.js";

export async function upsertSteps(
  tx: Queryable,
  runId: string,
  steps: readonly StepState[],
): Promise<void> {
  if (steps.length === 0) return;
  const rows = steps.map((step) => ({
    step: step.id,
    status: step.status,
    result: step.result ?? null,
    attempt: step.attempt,
    outputs: step.outputs,
    started_at: step.startedAt ?? null,
    finished_at: step.finishedAt ?? null,
    reason: step.reason ?? null,
  }));
  await tx.query(
    `INSERT INTO steps (run_id, step, status, result, attempt, outputs, started_at, finished_at, reason)
     SELECT $1, s.step, s.status, s.result, s.attempt, s.outputs,
            to_timestamp(s.started_at / 1000.0), to_timestamp(s.finished_at / 1000.0), s.reason
       FROM jsonb_to_recordset($2::jsonb)
         AS s(step text, status text, result text, attempt integer, outputs jsonb,
              started_at double precision, finished_at double precision, reason text)
     ON CONFLICT (run_id, step) DO UPDATE SET
       status = excluded.status, result = excluded.result, attempt = excluded.attempt,
       outputs = excluded.outputs, started_at = excluded.started_at,
       finished_at = excluded.finished_at, reason = excluded.reason`,
    [runId, JSON.stringify(rows)],
  );
}

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
