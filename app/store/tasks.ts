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
  const { inserted } = await enqueueAndClaimTasks(tx, tasks);
  return inserted;
}

/** Claim some of the tasks being enqueued for this worker (see `enqueueAndClaimTasks`). */
export interface ClaimOnEnqueue {
  workerId: string;
  leaseMs: number;
  /** At most this many tasks are claimed. */
  limit: number;
  /** Not these kinds (another lane's). (Default: none excluded) */
  excludeKinds?: readonly string[];
}

/**
 * Insert tasks like `enqueueTasks`, and insert up to `claim.limit` of those due now
 * already claimed by `claim.workerId` (locked_by, a lease, attempts 1), for the caller to
 * hand straight to its own loop once the transaction commits: no claim query and no
 * notification for those (nor, with `announceWithinMs`, for tasks due much later). If that worker dies, the lease expires and any worker takes
 * them over, exactly as for a claimed task. Notifies only when an unclaimed task was
 * inserted. Returns the claimed tasks (inserted ones only: a duplicate key is skipped).
 */
export async function enqueueAndClaimTasks(
  tx: Transaction,
  tasks: readonly NewTask[],
  options: EnqueueOptions = {},
): Promise<{ inserted: number; claimed: Task[] }> {
  if (tasks.length === 0) return { inserted: 0, claimed: [] };
  const prepared = prepareEnqueue(tasks, options);
  const result = await tx.query<DbTask>(prepared.insert(1), prepared.params);
  return prepared.finish(tx, result.rows);
}

export interface EnqueueOptions {
  claim?: ClaimOnEnqueue;
  /**
   * Notify only for unclaimed tasks due within this many ms: a caller that looks at the
   * queue at least this often (and every other worker too) needs no notification for
   * later ones. (Default: notify for every task)
   */
  announceWithinMs?: number;
}

/** An enqueue as an INSERT … RETURNING * that another statement may embed (a CTE). */
export interface PreparedEnqueue {
  /** The INSERT, its three parameters numbered from `first`. */
  insert(first: number): string;
  params: unknown[];
  /** With the rows the INSERT returned: notify if needed; the inserted count and claimed tasks. */
  finish(
    tx: Transaction,
    inserted: readonly DbTask[],
  ): Promise<{ inserted: number; claimed: Task[] }>;
}

export function prepareEnqueue(
  tasks: readonly NewTask[],
  options: EnqueueOptions = {},
): PreparedEnqueue {
  const { claim } = options;
  const now = Date.now();
  let claimable = claim?.limit ?? 0;
  const rows = tasks.map((task) => {
    const due = task.runAt === undefined || task.runAt.getTime() <= now;
    const claimed = due && claimable > 0 && !claim?.excludeKinds?.includes(task.kind);
    if (claimed) claimable -= 1;
    return {
      kind: task.kind,
      run_id: task.runId ?? null,
      key: task.key ?? null,
      payload: task.payload ?? {},
      run_at: task.runAt?.getTime() ?? now,
      claimed,
    };
  });
  const horizon = now + (options.announceWithinMs ?? Number.POSITIVE_INFINITY);
  return {
    insert: (first) =>
      `INSERT INTO tasks (kind, run_id, key, payload, run_at, locked_by, locked_until, attempts)
       SELECT t.kind, t.run_id, t.key, t.payload, to_timestamp(t.run_at / 1000.0),
              CASE WHEN t.claimed THEN $${first + 1}::text END,
              CASE WHEN t.claimed THEN clock_timestamp() + $${first + 2} * interval '1 millisecond' END,
              CASE WHEN t.claimed THEN 1 ELSE 0 END
         FROM jsonb_to_recordset($${first}::jsonb)
           AS t(kind text, run_id text, key text, payload jsonb, run_at double precision, claimed boolean)
       ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING
       RETURNING *`,
    params: [JSON.stringify(rows), claim?.workerId ?? null, claim?.leaseMs ?? 0],
    async finish(tx, inserted) {
      const claimed = claim
        ? inserted.filter((row) => row.locked_by === claim.workerId).map(toTask)
        : [];
      const announced = inserted
        .filter((row) => row.locked_by === null && row.run_at.getTime() <= horizon)
        .map((row) => row.run_at.getTime());
      if (announced.length > 0) await tx.notify(CHANNELS.tasks, String(Math.min(...announced)));
      return { inserted: inserted.length, claimed };
    },
  };
}

/** Run a prepared enqueue's INSERT on its own (no decision to embed it in): the rows it inserted. */
export async function insertPrepared(tx: Queryable, enqueue: PreparedEnqueue): Promise<DbTask[]> {
  return (await tx.query<DbTask>(enqueue.insert(1), enqueue.params)).rows;
}

export interface ClaimOptions {
  workerId: string;
  /** At most this many tasks. */
  limit: number;
  /** How long the claim holds before another worker may take the task over. */
  leaseMs: number;
  /** Only these kinds. (Default: every kind) */
  kinds?: readonly string[];
  /** Not these kinds (another lane's). (Default: none excluded) */
  excludeKinds?: readonly string[];
}

/**
 * In one statement (one round trip, one commit): claim due tasks, oldest first, at most
 * one of each run, with `FOR UPDATE SKIP LOCKED` and a lease (`attempts` counts claims, so a task that keeps
 * killing its worker is visible); and, when fewer than `limit` were due, the moment the
 * next one becomes claimable (its run_at, or its lease's end; the tasks just claimed
 * excluded). For `execute` tasks it also says whether
 * the attempt was still running (the steps projection) when claimed, in `stepCurrent`.
 */
export async function claimDueTasks(
  db: Queryable,
  options: ClaimOptions,
): Promise<{ tasks: Task[]; nextAt?: Date }> {
  const result = await db.query<
    Omit<DbTask, "id"> & { id: number | null; step_current: boolean | null; next_at: Date | null }
  >(
    `WITH candidates AS (
       SELECT id, run_id, run_at FROM tasks
        WHERE run_at <= clock_timestamp()
          AND (locked_until IS NULL OR locked_until < clock_timestamp())
          AND ($3::text[] IS NULL OR kind = ANY ($3::text[]))
          AND ($5::text[] IS NULL OR kind <> ALL ($5::text[]))
        ORDER BY run_at, id
        LIMIT $2 * 4
        FOR UPDATE SKIP LOCKED
     ), picked AS (
       -- At most one task of a run: siblings claimed together would only queue on the
       -- run's lock (each change to a run takes it), holding slots and connections.
       SELECT id FROM (
         SELECT DISTINCT ON (coalesce(run_id, id::text)) id, run_at
           FROM candidates ORDER BY coalesce(run_id, id::text), run_at, id
       ) AS one_per_run
        ORDER BY run_at, id
        LIMIT $2
     ), claimed AS (
       UPDATE tasks AS t
          SET locked_by = $1,
              locked_until = clock_timestamp() + $4 * interval '1 millisecond',
              attempts = t.attempts + 1
         FROM picked
        WHERE t.id = picked.id
       RETURNING t.*
     )
     SELECT c.*,
            CASE WHEN c.kind = 'execute' THEN EXISTS (
              SELECT 1 FROM steps s
               WHERE s.run_id = c.run_id AND s.step = c.payload ->> 'step'
                 AND s.status = 'running' AND s.attempt = (c.payload ->> 'attempt')::integer
            ) END AS step_current,
            CASE WHEN (SELECT count(*) FROM picked) < $2 THEN (
              SELECT min(CASE WHEN locked_until IS NOT NULL AND locked_until > run_at THEN locked_until ELSE run_at END)
                FROM tasks WHERE id NOT IN (SELECT id FROM picked)
                 AND ($3::text[] IS NULL OR kind = ANY ($3::text[]))
                 AND ($5::text[] IS NULL OR kind <> ALL ($5::text[]))
            ) END AS next_at
       FROM (VALUES (1)) AS one (x) LEFT JOIN claimed AS c ON true`,
    [
      options.workerId,
      options.limit,
      options.kinds ?? null,
      options.leaseMs,
      options.excludeKinds ?? null,
    ],
  );
  const tasks: Task[] = [];
  let nextAt: Date | undefined;
  for (const row of result.rows) {
    nextAt ??= row.next_at ?? undefined;
    if (row.id === null) continue;
    const task = toTask({ ...row, id: row.id });
    if (row.step_current !== null) task.stepCurrent = row.step_current;
    tasks.push(task);
  }
  tasks.sort((a, b) => a.runAt.getTime() - b.runAt.getTime() || a.id - b.id);
  return { tasks, ...(nextAt !== undefined ? { nextAt } : {}) };
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
