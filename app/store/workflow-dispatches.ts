/** The `workflow_dispatches` and `step_token_rejections` tables (migration 10). */
import type { Queryable } from "./database.js";

export type DispatchPurpose = "attempt" | "compensation";

export type DispatchStatus = "dispatched" | "queued" | "in_progress" | "waiting" | "completed";

export interface WorkflowDispatch {
  /** The attempt's idempotency key: `<run>/<step>/<attempt>`. */
  key: string;
  runId: string;
  step: string;
  attempt: number;
  /** A step's attempt, or the compensation of the step's successful attempt. */
  purpose: DispatchPurpose;
  installationId: number;
  /** Where the workflow lives: owner/repo. */
  repository: string;
  /** Its path, e.g. `.github/workflows/build.yml`. */
  workflow: string;
  ref: string;
  status: DispatchStatus;
  workflowRunId?: number;
  htmlUrl?: string;
  detail?: string;
  conclusion?: string;
  outputs?: Record<string, string>;
  cancelRequestedAt?: Date;
  dispatchedAt: Date;
}

interface DbWorkflowDispatch {
  key: string;
  run_id: string;
  step: string;
  attempt: number;
  purpose: DispatchPurpose;
  installation_id: string | number;
  repository: string;
  workflow: string;
  ref: string;
  status: DispatchStatus;
  workflow_run_id: string | number | null;
  html_url: string | null;
  detail: string | null;
  conclusion: string | null;
  outputs: Record<string, string> | null;
  cancel_requested_at: Date | null;
  dispatched_at: Date;
}

function toDispatch(row: DbWorkflowDispatch): WorkflowDispatch {
  return {
    key: row.key,
    runId: row.run_id,
    step: row.step,
    attempt: row.attempt,
    purpose: row.purpose,
    installationId: Number(row.installation_id),
    repository: row.repository,
    workflow: row.workflow,
    ref: row.ref,
    status: row.status,
    ...(row.workflow_run_id !== null ? { workflowRunId: Number(row.workflow_run_id) } : {}),
    ...(row.html_url !== null ? { htmlUrl: row.html_url } : {}),
    ...(row.detail !== null ? { detail: row.detail } : {}),
    ...(row.conclusion !== null ? { conclusion: row.conclusion } : {}),
    ...(row.outputs !== null ? { outputs: row.outputs } : {}),
    ...(row.cancel_requested_at !== null ? { cancelRequestedAt: row.cancel_requested_at } : {}),
    dispatchedAt: row.dispatched_at,
  };
}

export type NewWorkflowDispatch = Pick<
  WorkflowDispatch,
  | "key"
  | "runId"
  | "step"
  | "attempt"
  | "purpose"
  | "installationId"
  | "repository"
  | "workflow"
  | "ref"
  | "workflowRunId"
  | "htmlUrl"
>;

/** Record a dispatch; a second record of the same attempt (a repeated task) keeps the first. */
export async function insertDispatch(db: Queryable, dispatch: NewWorkflowDispatch): Promise<void> {
  await db.query(
    `INSERT INTO workflow_dispatches
       (key, run_id, step, attempt, purpose, installation_id, repository, workflow, ref, workflow_run_id, html_url)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
     ON CONFLICT (key) DO NOTHING`,
    [
      dispatch.key,
      dispatch.runId,
      dispatch.step,
      dispatch.attempt,
      dispatch.purpose,
      dispatch.installationId,
      dispatch.repository,
      dispatch.workflow,
      dispatch.ref,
      dispatch.workflowRunId ?? null,
      dispatch.htmlUrl ?? null,
    ],
  );
}

export async function getDispatch(
  db: Queryable,
  key: string,
): Promise<WorkflowDispatch | undefined> {
  const result = await db.query<DbWorkflowDispatch>(
    "SELECT * FROM workflow_dispatches WHERE key = $1",
    [key],
  );
  return result.rows[0] ? toDispatch(result.rows[0]) : undefined;
}

export async function getDispatchOfWorkflowRun(
  db: Queryable,
  workflowRunId: number,
): Promise<WorkflowDispatch | undefined> {
  const result = await db.query<DbWorkflowDispatch>(
    "SELECT * FROM workflow_dispatches WHERE workflow_run_id = $1",
    [workflowRunId],
  );
  return result.rows[0] ? toDispatch(result.rows[0]) : undefined;
}

export async function listDispatchesOfRun(
  db: Queryable,
  runId: string,
): Promise<WorkflowDispatch[]> {
  const result = await db.query<DbWorkflowDispatch>(
    "SELECT * FROM workflow_dispatches WHERE run_id = $1 ORDER BY dispatched_at, key",
    [runId],
  );
  return result.rows.map(toDispatch);
}

/**
 * Tie a dispatch to its workflow run (the 204 fallback), locking the row. Undefined when
 * the dispatch already follows a run (another one: a dispatch repeated after a crash).
 */
export async function correlateDispatch(
  db: Queryable,
  key: string,
  run: { workflowRunId: number; htmlUrl: string },
): Promise<WorkflowDispatch | undefined> {
  const result = await db.query<DbWorkflowDispatch>(
    `UPDATE workflow_dispatches SET workflow_run_id = $2, html_url = $3, updated_at = now()
      WHERE key = $1 AND workflow_run_id IS NULL
      RETURNING *`,
    [key, run.workflowRunId, run.htmlUrl],
  );
  return result.rows[0] ? toDispatch(result.rows[0]) : undefined;
}

/** Move a dispatch on; a completed one stays completed (events arrive in any order). */
export async function updateDispatchStatus(
  db: Queryable,
  key: string,
  change: { status: DispatchStatus; detail?: string; conclusion?: string; htmlUrl?: string },
): Promise<WorkflowDispatch | undefined> {
  const result = await db.query<DbWorkflowDispatch>(
    `UPDATE workflow_dispatches
        SET status = $2, detail = $3, conclusion = COALESCE($4, conclusion),
            html_url = COALESCE(html_url, $5), updated_at = now()
      WHERE key = $1 AND status <> 'completed'
      RETURNING *`,
    [key, change.status, change.detail ?? null, change.conclusion ?? null, change.htmlUrl ?? null],
  );
  return result.rows[0] ? toDispatch(result.rows[0]) : undefined;
}

/** Keep the action's outputs; false when they were reported before (a replay). */
export async function recordOutputs(
  db: Queryable,
  key: string,
  outputs: Record<string, string>,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE workflow_dispatches SET outputs = $2::jsonb, outputs_at = now(), updated_at = now()
      WHERE key = $1 AND outputs_at IS NULL`,
    [key, JSON.stringify(outputs)],
  );
  return (result.rowCount ?? 0) > 0;
}

/** Note that the attempt was stopped: a run found later (the 204 fallback) is cancelled then. */
export async function markCancelRequested(
  db: Queryable,
  key: string,
): Promise<WorkflowDispatch | undefined> {
  const result = await db.query<DbWorkflowDispatch>(
    `UPDATE workflow_dispatches SET cancel_requested_at = COALESCE(cancel_requested_at, now()), updated_at = now()
      WHERE key = $1
      RETURNING *`,
    [key],
  );
  return result.rows[0] ? toDispatch(result.rows[0]) : undefined;
}

export type TokenRejectionReason = "malformed" | "forged" | "expired" | "replayed" | "not-running";

export async function recordTokenRejection(
  db: Queryable,
  rejection: {
    reason: TokenRejectionReason;
    key?: string;
    tokenSha256: string;
    remoteAddress?: string;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO step_token_rejections (reason, key, token_sha256, remote_address) VALUES ($1, $2, $3, $4)`,
    [
      rejection.reason,
      rejection.key ?? null,
      rejection.tokenSha256,
      rejection.remoteAddress ?? null,
    ],
  );
}

export interface TokenRejection {
  at: Date;
  reason: TokenRejectionReason;
  key?: string;
}

export async function listTokenRejections(db: Queryable, limit = 100): Promise<TokenRejection[]> {
  const result = await db.query<{ at: Date; reason: TokenRejectionReason; key: string | null }>(
    "SELECT at, reason, key FROM step_token_rejections ORDER BY id DESC LIMIT $1",
    [limit],
  );
  return result.rows.map((row) => ({
    at: row.at,
    reason: row.reason,
    ...(row.key !== null ? { key: row.key } : {}),
  }));
}
