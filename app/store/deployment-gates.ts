/**
 * Deployment protection rule gates (`github_deployment_gates`, migration 000008): one per
 * run a `deployment_protection_rule` delivery started, answered once.
 */
import type { Queryable } from "./database.js";

/** The runs a delivery of `callbackUrl` started (in the delivery's transaction). */
export async function runsOfDeploymentCallback(
  db: Queryable,
  repository: string,
  callbackUrl: string,
): Promise<string[]> {
  const result = await db.query<{ id: string }>(
    `SELECT id FROM runs
      WHERE lower(repository) = lower($1) AND trigger_event = 'deployment_protection_rule'
        AND state->'trigger'->'payload'->>'deployment_callback_url' = $2`,
    [repository, callbackUrl],
  );
  return result.rows.map((row) => row.id);
}

export interface NewDeploymentGate {
  runId: string;
  installationId: number;
  repository: string;
  environment: string;
  workflowRunId: number;
  createdAt: Date;
}

/** Record a gate; a second for the same run is ignored. */
export async function insertDeploymentGate(db: Queryable, gate: NewDeploymentGate): Promise<void> {
  await db.query(
    `INSERT INTO github_deployment_gates
       (run_id, installation_id, repository, environment, workflow_run_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING`,
    [
      gate.runId,
      gate.installationId,
      gate.repository,
      gate.environment,
      gate.workflowRunId,
      gate.createdAt,
    ],
  );
}

export interface OpenDeploymentGate {
  runId: string;
  installationId: number;
  repository: string;
  environment: string;
  workflowRunId: number;
}

/** Gates not answered yet, oldest first (at most `limit`). */
export async function openDeploymentGates(
  db: Queryable,
  limit: number,
): Promise<OpenDeploymentGate[]> {
  const result = await db.query<{
    run_id: string;
    installation_id: string | number;
    repository: string;
    environment: string;
    workflow_run_id: string | number;
  }>(
    `SELECT run_id, installation_id, repository, environment, workflow_run_id
       FROM github_deployment_gates WHERE answered_state IS NULL ORDER BY created_at LIMIT $1`,
    [limit],
  );
  return result.rows.map((row) => ({
    runId: row.run_id,
    installationId: Number(row.installation_id),
    repository: row.repository,
    environment: row.environment,
    workflowRunId: Number(row.workflow_run_id),
  }));
}

/** Claim the answer of a gate: false when another process answered it first. */
export async function claimGateAnswer(
  db: Queryable,
  runId: string,
  state: "approved" | "rejected",
  at: Date,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE github_deployment_gates SET answered_state = $2, answered_at = $3
      WHERE run_id = $1 AND answered_state IS NULL`,
    [runId, state, at],
  );
  return result.rowCount > 0;
}
