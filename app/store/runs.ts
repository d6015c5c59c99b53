/** The runs table: numbering, creation, locking, the state projection and lookups. */
import type { Json, RunStatus } from "../engine/types.js";
import type { Queryable } from "./database.js";
import type { Run, RunGitHub } from "./model.js";
import { toRun } from "./model.js";
import type { DbRun } from "./rows.js";

/** The columns of `runs` but its state (as `r`): each step's state is in its `steps` row. */
const RUN_FIELDS = `r.id, r.flow_version_id, r.repository, r.flow, r.number, r.status, r.concurrency_group,
  r.parent_run_id, r.parent_step, r.parent_attempt, r.actor, r.trigger_event, r.inputs, r.last_seq,
  r.created_at, r.updated_at, r.finished_at, r.installation_id, r.head_sha, r.pull_request, r.issue`;

/**
 * SQL: run `r`'s whole state, assembled from its run-level part (runs.state) and its steps'
 * rows (steps.state, migration 13): a decision rewrites only the steps it changed.
 */
export const RUN_STATE_SQL = `(r.state || jsonb_build_object('steps', coalesce(
  (SELECT jsonb_object_agg(s.step, s.state) FROM steps AS s WHERE s.run_id = r.id AND s.state IS NOT NULL),
  r.state -> 'steps', '{}'::jsonb)))`;

/** SQL: the columns of run `r` that `toRun` reads, its state assembled. `SELECT ${RUN_SELECT} FROM runs AS r`. */
export const RUN_SELECT = `${RUN_FIELDS}, ${RUN_STATE_SQL} AS state`;

/** The next run number of a flow, from 1. Rolled back with the transaction that took it. */
export async function allocateRunNumber(
  tx: Queryable,
  repository: string,
  flow: string,
): Promise<number> {
  const result = await tx.query<{ last_number: number }>(
    `INSERT INTO run_numbers (repository, flow, last_number) VALUES ($1, $2, 1)
     ON CONFLICT (repository, flow) DO UPDATE SET last_number = run_numbers.last_number + 1
     RETURNING last_number`,
    [repository, flow],
  );
  const number = result.rows[0]?.last_number;
  if (number === undefined) throw new Error("run number allocation returned nothing");
  return number;
}

export interface NewRun {
  id: string;
  flowVersionId: string;
  repository: string;
  flow: string;
  number: number;
  concurrencyGroup?: string;
  parent?: { runId: string; step: string; attempt: number };
  actor: string;
  triggerEvent: string;
  inputs: Record<string, Json>;
  createdAt: Date;
  github?: RunGitHub;
}

/** A new run starts `queued`; the first decision moves it on. */
export async function insertRun(tx: Queryable, run: NewRun): Promise<void> {
  await tx.query(
    `INSERT INTO runs (id, flow_version_id, repository, flow, number, status, concurrency_group,
                       parent_run_id, parent_step, parent_attempt, actor, trigger_event, inputs, created_at, updated_at,
                       installation_id, head_sha, pull_request, issue)
     VALUES ($1, $2, $3, $4, $5, 'queued', $6, $7, $8, $9, $10, $11, $12::jsonb, $13, $13, $14, $15, $16, $17)`,
    [
      run.id,
      run.flowVersionId,
      run.repository,
      run.flow,
      run.number,
      run.concurrencyGroup ?? null,
      run.parent?.runId ?? null,
      run.parent?.step ?? null,
      run.parent?.attempt ?? null,
      run.actor,
      run.triggerEvent,
      JSON.stringify(run.inputs),
      run.createdAt,
      run.github?.installationId ?? null,
      run.github?.headSha ?? null,
      run.github?.pullRequest ?? null,
      run.github?.issue ?? null,
    ],
  );
}

/**
 * Lock a run's row for the rest of the transaction: every change to a run (appending
 * events, deciding) happens under this lock, so one run's history is written by one
 * transaction at a time, whichever process it is in.
 */
export async function lockRun(
  tx: Queryable,
  id: string,
  /** Without the state (a decision's lock: it has the state from the history). (Default: with) */
  options: { state?: boolean } = {},
): Promise<Run | undefined> {
  const result = await tx.query<DbRun>(
    options.state === false
      ? `SELECT ${RUN_FIELDS}, NULL::jsonb AS state FROM runs AS r WHERE r.id = $1 FOR UPDATE OF r`
      : `SELECT ${RUN_SELECT} FROM runs AS r WHERE r.id = $1 FOR UPDATE OF r`,
    [id],
  );
  const row = result.rows[0];
  return row ? toRun(row) : undefined;
}

/**
 * `completeTask` and `lockRun` (without the state) in one statement (one round trip):
 * delete the finished task if this worker still holds it, and lock the run's row. `completed` is false when
 * the task was lost (the caller must roll back); the run is undefined when it is gone.
 */
export async function lockRunCompletingTask(
  tx: Queryable,
  id: string,
  task: { taskId: number; workerId: string },
): Promise<{ run: Run | undefined; completed: boolean }> {
  const result = await tx.query<DbRun & { task_completed: number }>(
    `WITH done AS (DELETE FROM tasks WHERE id = $2 AND locked_by = $3 RETURNING id)
     SELECT ${RUN_FIELDS}, NULL::jsonb AS state, (SELECT count(*)::int FROM done) AS task_completed
       FROM runs AS r WHERE r.id = $1 FOR UPDATE OF r`,
    [id, task.taskId, task.workerId],
  );
  const row = result.rows[0];
  if (!row) {
    // No run: say whether the task was deleted all the same (a row left was not ours).
    const check = await tx.query("SELECT 1 FROM tasks WHERE id = $1", [task.taskId]);
    return { run: undefined, completed: check.rows.length === 0 };
  }
  const { task_completed: completed, ...run } = row;
  return { run: toRun(run), completed: completed > 0 };
}

export async function getRunById(db: Queryable, id: string): Promise<Run | undefined> {
  const result = await db.query<DbRun>(`SELECT ${RUN_SELECT} FROM runs AS r WHERE r.id = $1`, [id]);
  const row = result.rows[0];
  return row ? toRun(row) : undefined;
}

/** Runs whose id starts with `prefix` (at most `limit`), of one repository when given. */
export async function findRunsByIdPrefix(
  db: Queryable,
  prefix: string,
  limit = 2,
  repository?: string,
): Promise<Run[]> {
  // The prefix is data, not a pattern: escape LIKE's wildcards.
  const escaped = prefix.replace(/[\\%_]/g, (c) => `\\${c}`);
  const result = await db.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs AS r WHERE r.id LIKE $1 AND ($3::text IS NULL OR r.repository = $3)
      ORDER BY r.id LIMIT $2`,
    [`${escaped}%`, limit, repository ?? null],
  );
  return result.rows.map(toRun);
}

export async function findRunsByNumber(
  db: Queryable,
  flow: string,
  number: number,
  /** Only runs of this repository (`owner/repo`, or `local`). */
  repository?: string,
): Promise<Run[]> {
  const result = await db.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs AS r WHERE r.flow = $1 AND r.number = $2 AND ($3::text IS NULL OR r.repository = $3)
      ORDER BY r.created_at`,
    [flow, number, repository ?? null],
  );
  return result.rows.map(toRun);
}

export async function findChildRun(
  db: Queryable,
  parent: { runId: string; step: string; attempt: number },
): Promise<Run | undefined> {
  const result = await db.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs AS r WHERE r.parent_run_id = $1 AND r.parent_step = $2 AND r.parent_attempt = $3`,
    [parent.runId, parent.step, parent.attempt],
  );
  const row = result.rows[0];
  return row ? toRun(row) : undefined;
}

export interface RunFilter {
  flow?: string;
  status?: RunStatus | readonly RunStatus[];
  repository?: string;
  /** (Default: 20) */
  limit?: number;
}

/** Newest first. */
export async function listRuns(db: Queryable, filter: RunFilter = {}): Promise<Run[]> {
  const statuses =
    filter.status === undefined
      ? null
      : Array.isArray(filter.status)
        ? filter.status
        : [filter.status];
  const result = await db.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs AS r
      WHERE ($1::text IS NULL OR r.flow = $1)
        AND ($2::text[] IS NULL OR r.status = ANY ($2::text[]))
        AND ($3::text IS NULL OR r.repository = $3)
      ORDER BY r.created_at DESC, r.id DESC
      LIMIT $4`,
    [filter.flow ?? null, statuses, filter.repository ?? null, filter.limit ?? 20],
  );
  return result.rows.map(toRun);
}

/**
 * A concurrency group is the group key a flow evaluates, within one repository (locally:
 * the data directory, whose runs all have repository `local`). Two repositories that
 * name the same group share nothing (DESIGN.md rule 12).
 */
export interface ConcurrencyScope {
  repository: string;
  group: string;
}

/**
 * Serialise everything that decides who may run in a concurrency group, for the rest of
 * the transaction, across processes (a transaction-scoped advisory lock on the group key).
 */
export async function lockConcurrencyGroup(tx: Queryable, scope: ConcurrencyScope): Promise<void> {
  // JSON keeps the two parts apart: no repository and group can spell another pair's key.
  await tx.query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))", [
    `baton:concurrency:${JSON.stringify([scope.repository, scope.group])}`,
  ]);
}

/** Runs of a group that are not finished, oldest first: active (admitted) and queued. */
export async function unfinishedRunsInGroup(
  tx: Queryable,
  scope: ConcurrencyScope,
): Promise<Run[]> {
  const result = await tx.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs AS r
      WHERE r.repository = $1 AND r.concurrency_group = $2 AND r.status IN ('queued', 'running', 'compensating')
      ORDER BY r.created_at, r.number`,
    [scope.repository, scope.group],
  );
  return result.rows.map(toRun);
}
