/** The SQL of approvals through GitHub (tables of migration 000008). */
import type { Queryable } from "./database.js";
import type { Run } from "./model.js";
import { toRun } from "./model.js";
import type { DbRun } from "./rows.js";
import { RUN_SELECT } from "./runs.js";

const UNFINISHED = "('queued', 'running', 'compensating')";

/** The pull request whose reviews decide `step` of `runId` (a flow's `approval.pull-request`). */
export async function recordApprovalRequest(
  tx: Queryable,
  request: {
    runId: string;
    step: string;
    attempt: number;
    repository: string;
    pullRequest: number;
    at: Date;
  },
): Promise<void> {
  await tx.query(
    `INSERT INTO github_approval_requests (run_id, step, attempt, repository, pull_request, requested_at)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (run_id, step) DO UPDATE
       SET attempt = EXCLUDED.attempt, pull_request = EXCLUDED.pull_request,
           requested_at = EXCLUDED.requested_at
       WHERE github_approval_requests.attempt <= EXCLUDED.attempt`,
    [
      request.runId,
      request.step,
      request.attempt,
      request.repository,
      request.pullRequest,
      request.at,
    ],
  );
}

/** The pull request recorded for a step (its `approval.pull-request`), if any. */
export async function recordedPullRequest(
  db: Queryable,
  runId: string,
  step: string,
): Promise<number | undefined> {
  const result = await db.query<{ pull_request: number }>(
    "SELECT pull_request FROM github_approval_requests WHERE run_id = $1 AND step = $2",
    [runId, step],
  );
  return result.rows[0]?.pull_request;
}

/**
 * Unfinished runs of `repository` that a pull request or issue concerns: runs it started
 * or a comment on it asked for (`runs.pull_request`, `runs.issue`), and runs with an
 * approval step whose `approval.pull-request` names it. Oldest first.
 */
export async function unfinishedRunsAbout(
  db: Queryable,
  repository: string,
  number: number,
): Promise<Run[]> {
  const result = await db.query<DbRun>(
    `SELECT ${RUN_SELECT} FROM runs r
      WHERE lower(r.repository) = lower($1) AND r.status IN ${UNFINISHED}
        AND (r.pull_request = $2 OR r.issue = $2 OR EXISTS (
          SELECT 1 FROM github_approval_requests a
           WHERE a.run_id = r.id AND lower(a.repository) = lower($1) AND a.pull_request = $2))
      ORDER BY r.id`,
    [repository, number],
  );
  return result.rows.map(toRun);
}
