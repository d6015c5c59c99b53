/**
 * The task queue: enqueue (inside the caller's transaction, with a notification), claim
 * with FOR UPDATE SKIP LOCKED and a lease, renew the lease, complete, retry later, release.
 */
import type { Queryable, Transaction } from "./database.js";
import { CHANNELS } from "./database.js";
import type { NewTask, Task } from "./model.js";
import { toTask } from "./model.js";
import type { DbTask } from "./rows.js";

/**
 * Insert tasks; a task whose key is already pending is skipped. Notifies the workers
 * (on commit) with the earliest run_at. Returns how many were inserted.
 */
export async function enqueueTasks(tx: Transaction, tasks: readonly NewTask[]): Promise<number> {
  if (tasks.length === 0) return 0;
  const now = Date.now();
  const rows = tasks.map((task) => ({
    kind: task.kind,
    run_id: task.runId ?? null,
    key: task.key ?? null,
    payload: task.payload ?? {},
    run_at: task.runAt?.getTime() ?? now,
  }));
  const result = await tx.query(
    `INSERT INTO tasks (kind, run_id, key, payload, run_at)
     SELECT t.kind, t.run_id, t.key, t.payload, to_timestamp(t.run_at / 1000.0)
       FROM jsonb_to_recordset($1::jsonb) AS t(kind text, run_id text, key text, payload jsonb, run_at double precision)
     ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING`,
    [JSON.stringify(rows)],
  );
  if (result.rowCount > 0) {
    await tx.notify(CHANNELS.tasks, String(Math.min(...rows.map((row) => row.run_at))));
  }
  return result.rowCount;
}

export interface ClaimOptions {
  workerId: string;
  /** At most this many tasks. */
  limit: number;
  /** How long the claim holds before another worker may take the task over. */
  leaseMs: number;
  /** Only these kinds. (Default: every kind) */
  kinds?: readonly string[];
}

/**
 * Claim due tasks: unlocked, or whose lease has expired (their worker died or stalled).
 * SKIP LOCKED lets concurrent claimers pass over each other's rows instead of waiting.
 * `attempts` counts claims, so a task that keeps killing its worker is visible.
 */
export async function claimTasks(db: Queryable, options: ClaimOptions): Promise<Task[]> {
  const result = await db.query<DbTask>(
    `WITH picked AS (
       SELECT id FROM tasks
        WHERE run_at <= clock_timestamp()
          AND (locked_until IS NULL OR locked_until < clock_timestamp())
          AND ($3::text[] IS NULL OR kind = ANY ($3::text[]))
        ORDER BY run_at, id
        LIMIT $2
        FOR UPDATE SKIP LOCKED
     )
     UPDATE tasks AS t
        SET locked_by = $1,
            locked_until = clock_timestamp() + $4 * interval '1 millisecond',
            attempts = t.attempts + 1
       FROM picked
      WHERE t.id = picked.id
     RETURNING t.*`,
    [options.workerId, options.limit, options.kinds ?? null, options.leaseMs],
  );
  return result.rows
    .map(toTask)
    .sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id);
}

/**
 * The moment the next task becomes claimable (its run_at, or its lease's end), or
 * undefined when there is no task at all. Workers sleep until then (or a notification).
 */
export async function nextTaskTime(db: Queryable): Promise<Date | undefined> {
  const result = await db.query<{ at: Date | null }>(
    `SELECT min(CASE WHEN locked_until IS NOT NULL AND locked_until > run_at THEN locked_until ELSE run_at END) AS at
       FROM tasks`,
  );
  return result.rows[0]?.at ?? undefined;
}

/** Extend a claim. False when the lease was lost (expired and taken over): stop working on it. */
export async function renewLease(
  db: Queryable,
  taskId: number,
  workerId: string,
  leaseMs: number,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE tasks SET locked_until = clock_timestamp() + $3 * interval '1 millisecond'
      WHERE id = $1 AND locked_by = $2`,
    [taskId, workerId, leaseMs],
  );
  return result.rowCount > 0;
}

/**
 * Delete a finished task, inside the transaction that records its work. False when this
 * worker no longer holds it: the caller must roll back, since another worker has it.
 */
export async function completeTask(
  tx: Queryable,
  taskId: number,
  workerId: string,
): Promise<boolean> {
  const result = await tx.query("DELETE FROM tasks WHERE id = $1 AND locked_by = $2", [
    taskId,
    workerId,
  ]);
  return result.rowCount > 0;
}

/** Give a failed task back, to be tried again at `runAt`, keeping the error for people. */
export async function retryTaskLater(
  tx: Transaction,
  taskId: number,
  workerId: string,
  runAt: Date,
  error: string,
): Promise<boolean> {
  const result = await tx.query(
    `UPDATE tasks SET locked_by = NULL, locked_until = NULL, run_at = $3, last_error = $4
      WHERE id = $1 AND locked_by = $2`,
    [taskId, workerId, runAt, error],
  );
  if (result.rowCount > 0) await tx.notify(CHANNELS.tasks, String(runAt.getTime()));
  return result.rowCount > 0;
}

/** Give back unfinished tasks at once (a clean shutdown), so that another worker need not wait for the lease. */
export async function releaseTasks(
  tx: Transaction,
  taskIds: readonly number[],
  workerId: string,
): Promise<number> {
  if (taskIds.length === 0) return 0;
  const result = await tx.query(
    `UPDATE tasks SET locked_by = NULL, locked_until = NULL, attempts = greatest(attempts - 1, 0)
      WHERE id = ANY ($1::bigint[]) AND locked_by = $2`,
    [taskIds, workerId],
  );
  if (result.rowCount > 0) await tx.notify(CHANNELS.tasks, String(Date.now()));
  return result.rowCount;
}

/** Drop a run's timers that nobody holds (the run has finished; they would find nothing to do). */
export async function deletePendingTimers(tx: Queryable, runId: string): Promise<number> {
  const result = await tx.query(
    "DELETE FROM tasks WHERE run_id = $1 AND kind = 'advance' AND locked_by IS NULL",
    [runId],
  );
  return result.rowCount;
}
