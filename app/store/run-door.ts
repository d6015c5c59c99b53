/**
 * The lock the runtime's door takes before it changes a run: the run's row (FOR UPDATE)
 * and only what the door checks, the state of the one step the input is about (its `steps`
 * row, migration 13), instead of the whole state. Optionally folds in the deletion of the task that reports (one
 * round trip), as `lockRunCompletingTask` does.
 */
import type { RunStatus, StepState } from "../engine/types.js";
import type { Queryable } from "./database.js";

export interface LockedRunStep {
  id: string;
  flowVersionId: string;
  status: RunStatus;
  repository: string;
  flow: string;
  actor: string;
  /** The state of the step asked for (undefined when the run has no such step yet). */
  step: StepState | undefined;
}

export async function lockRunStep(
  tx: Queryable,
  runId: string,
  step: string | undefined,
  completing?: { taskId: number; workerId: string },
): Promise<{ run: LockedRunStep | undefined; completed: boolean }> {
  const select = `SELECT r.id, r.flow_version_id, r.status, r.repository, r.flow, r.actor, 
    (SELECT s.state FROM steps AS s WHERE s.run_id = r.id AND s.step = $2::text) AS step`;
  const result = completing
    ? await tx.query<DbLocked & { task_completed: number }>(
        `WITH done AS (DELETE FROM tasks WHERE id = $3 AND locked_by = $4 RETURNING id)
         ${select}, (SELECT count(*)::int FROM done) AS task_completed
           FROM runs AS r WHERE r.id = $1 FOR UPDATE OF r`,
        [runId, step ?? "", completing.taskId, completing.workerId],
      )
    : await tx.query<DbLocked>(`${select} FROM runs AS r WHERE r.id = $1 FOR UPDATE OF r`, [
        runId,
        step ?? "",
      ]);
  const row = result.rows[0];
  if (!row) {
    if (!completing) return { run: undefined, completed: true };
    // No run: whether the task was deleted all the same (a row left was not ours).
    const left = await tx.query("SELECT 1 FROM tasks WHERE id = $1", [completing.taskId]);
    return { run: undefined, completed: left.rows.length === 0 };
  }
  const completed = "task_completed" in row ? Number(row.task_completed) > 0 : true;
  return {
    run: {
      id: row.id,
      flowVersionId: row.flow_version_id,
      status: row.status,
      repository: row.repository,
      flow: row.flow,
      actor: row.actor,
      step: step === undefined || row.step === null ? undefined : (row.step as StepState),
    },
    completed,
  };
}

interface DbLocked {
  id: string;
  flow_version_id: string;
  status: RunStatus;
  repository: string;
  flow: string;
  actor: string;
  step: unknown;
}
