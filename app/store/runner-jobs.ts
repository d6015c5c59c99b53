/**
 * The runner tables (migration 9): registration tokens, runners, and the job queue that
 * hands step attempts to runners. Every statement is here; callers pass a transaction or
 * the database.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import type { Json } from "../engine/types.js";
import type { Queryable } from "./database.js";

/** Who a runner (or a registration token) belongs to. */
export interface RunnerScope {
  /** `local`: every run of a local Baton (`baton serve`); only the local user creates such tokens. */
  kind: "repository" | "organization" | "local";
  /** `owner/repo`, an organisation login, or `*`. */
  name: string;
  /** The GitHub App's installation on the scope; a runner claims only its steps. */
  installationId?: number;
}

export interface Runner {
  id: string;
  name: string;
  labels: string[];
  scope: RunnerScope;
  registeredBy: string;
  createdAt: Date;
  lastSeenAt?: Date;
  revokedAt?: Date;
}

/** What a runner is given when it claims a job. */
export interface RunnerJob {
  key: string;
  runId: string;
  step: string;
  attempt: number;
  kind: "execute" | "compensate";
  labels: string[];
  repository: string;
  installationId?: number;
  /** The engine's effect: `kind` (run, agent), `spec`, `env`, `deadline`. */
  payload: Record<string, Json>;
  status: "queued" | "running" | "finished" | "lost" | "dropped";
  runnerId?: string;
  leaseId?: string;
  leaseUntil?: Date;
  claims: number;
}

export interface LateResult {
  runnerId: string;
  leaseId: string;
  at: string;
  outcome: Json;
  /** Why it was ignored. */
  reason: string;
}

/** Registration tokens say what they are: `baton_rr_…`; runner tokens `baton_rt_…`. */
export const REGISTRATION_TOKEN_PREFIX = "baton_rr_";
export const RUNNER_TOKEN_PREFIX = "baton_rt_";

export function newToken(prefix: string): string {
  return `${prefix}${randomBytes(24).toString("base64url")}`;
}

/** Tokens are kept only as their SHA-256 (they are random: no salt or slow hash is needed). */
export function hashToken(token: string): string {
  return createHash("sha256").update(token).digest("hex");
}

interface DbRunner {
  id: string;
  name: string;
  labels: string[];
  scope_kind: RunnerScope["kind"];
  scope: string;
  installation_id: string | number | null;
  registered_by: string;
  created_at: Date;
  last_seen_at: Date | null;
  revoked_at: Date | null;
}

function toRunner(row: DbRunner): Runner {
  return {
    id: row.id,
    name: row.name,
    labels: row.labels,
    scope: {
      kind: row.scope_kind,
      name: row.scope,
      ...(row.installation_id !== null ? { installationId: Number(row.installation_id) } : {}),
    },
    registeredBy: row.registered_by,
    createdAt: row.created_at,
    ...(row.last_seen_at ? { lastSeenAt: row.last_seen_at } : {}),
    ...(row.revoked_at ? { revokedAt: row.revoked_at } : {}),
  };
}

interface DbRunnerJob {
  key: string;
  run_id: string;
  step: string;
  attempt: number;
  kind: RunnerJob["kind"];
  labels: string[];
  repository: string;
  installation_id: string | number | null;
  payload: Record<string, Json>;
  status: RunnerJob["status"];
  runner_id: string | null;
  lease_id: string | null;
  lease_until: Date | null;
  claims: number;
}

function toJob(row: DbRunnerJob): RunnerJob {
  return {
    key: row.key,
    runId: row.run_id,
    step: row.step,
    attempt: row.attempt,
    kind: row.kind,
    labels: row.labels,
    repository: row.repository,
    ...(row.installation_id !== null ? { installationId: Number(row.installation_id) } : {}),
    payload: row.payload,
    status: row.status,
    ...(row.runner_id !== null ? { runnerId: row.runner_id } : {}),
    ...(row.lease_id !== null ? { leaseId: row.lease_id } : {}),
    ...(row.lease_until !== null ? { leaseUntil: row.lease_until } : {}),
    claims: row.claims,
  };
}

// ---------------------------------------------------------------------------------------
// Registration tokens and runners
// ---------------------------------------------------------------------------------------

export async function createRegistrationToken(
  db: Queryable,
  request: { scope: RunnerScope; createdBy: string; expiresInMs: number },
): Promise<{ token: string; id: number; expiresAt: Date }> {
  const token = newToken(REGISTRATION_TOKEN_PREFIX);
  const result = await db.query<{ id: string | number; expires_at: Date }>(
    `INSERT INTO runner_registration_tokens (token_hash, scope_kind, scope, installation_id, created_by, expires_at)
     VALUES ($1, $2, $3, $4, $5, clock_timestamp() + $6 * interval '1 millisecond')
     RETURNING id, expires_at`,
    [
      hashToken(token),
      request.scope.kind,
      request.scope.name,
      request.scope.installationId ?? null,
      request.createdBy,
      request.expiresInMs,
    ],
  );
  const row = result.rows[0];
  if (!row) throw new Error("the registration token was not stored");
  return { token, id: Number(row.id), expiresAt: row.expires_at };
}

/** Revoke every registration token of a scope; runners already registered keep working. */
export async function revokeRegistrationTokens(db: Queryable, scope: RunnerScope): Promise<number> {
  const result = await db.query(
    `UPDATE runner_registration_tokens SET revoked_at = clock_timestamp()
      WHERE scope_kind = $1 AND lower(scope) = lower($2) AND revoked_at IS NULL`,
    [scope.kind, scope.name],
  );
  return result.rowCount;
}

/**
 * Register a runner with a registration token: a new runner token, returned once. Undefined
 * when the token is unknown, expired or revoked.
 */
export async function registerRunner(
  db: Queryable,
  request: { registrationToken: string; name: string; labels: readonly string[] },
): Promise<{ runner: Runner; token: string } | undefined> {
  const token = newToken(RUNNER_TOKEN_PREFIX);
  const result = await db.query<DbRunner>(
    `INSERT INTO runners (id, name, labels, token_hash, scope_kind, scope, installation_id,
                          registration_token_id, registered_by)
     SELECT $1, $2, $3::text[], $4, r.scope_kind, r.scope, r.installation_id, r.id, r.created_by
       FROM runner_registration_tokens r
      WHERE r.token_hash = $5 AND r.revoked_at IS NULL AND r.expires_at > clock_timestamp()
     RETURNING *`,
    [
      randomUUID(),
      request.name,
      [...request.labels],
      hashToken(token),
      hashToken(request.registrationToken),
    ],
  );
  const row = result.rows[0];
  return row ? { runner: toRunner(row), token } : undefined;
}

/** The runner a token belongs to, revoked or not (the caller refuses revoked ones, saying so). */
export async function runnerByToken(db: Queryable, token: string): Promise<Runner | undefined> {
  const result = await db.query<DbRunner>(
    `UPDATE runners SET last_seen_at = clock_timestamp() WHERE token_hash = $1 RETURNING *`,
    [hashToken(token)],
  );
  const row = result.rows[0];
  return row ? toRunner(row) : undefined;
}

export async function listRunners(db: Queryable, scope?: RunnerScope): Promise<Runner[]> {
  const result = await db.query<DbRunner>(
    `SELECT * FROM runners
      WHERE $1::text IS NULL OR (scope_kind = $1 AND lower(scope) = lower($2))
      ORDER BY created_at, id`,
    [scope?.kind ?? null, scope?.name ?? null],
  );
  return result.rows.map(toRunner);
}

export async function getRunner(db: Queryable, id: string): Promise<Runner | undefined> {
  const result = await db.query<DbRunner>("SELECT * FROM runners WHERE id = $1", [id]);
  const row = result.rows[0];
  return row ? toRunner(row) : undefined;
}

/** Revoke a runner's token: its next request is refused, and its leases run out. */
export async function revokeRunner(db: Queryable, id: string): Promise<boolean> {
  const result = await db.query(
    "UPDATE runners SET revoked_at = clock_timestamp() WHERE id = $1 AND revoked_at IS NULL",
    [id],
  );
  return result.rowCount > 0;
}

// ---------------------------------------------------------------------------------------
// The job queue
// ---------------------------------------------------------------------------------------

export interface NewRunnerJob {
  key: string;
  runId: string;
  step: string;
  attempt: number;
  kind: RunnerJob["kind"];
  labels: readonly string[];
  repository: string;
  installationId?: number;
  payload: Json;
}

/** Queue a job; a key already queued (a repeated execute task) is left alone. */
export async function enqueueRunnerJob(db: Queryable, job: NewRunnerJob): Promise<boolean> {
  const result = await db.query(
    `INSERT INTO runner_jobs (key, run_id, step, attempt, kind, labels, repository, installation_id, payload, status)
     VALUES ($1, $2, $3, $4, $5, $6::text[], $7, $8, $9::jsonb, 'queued')
     ON CONFLICT (key) DO NOTHING`,
    [
      job.key,
      job.runId,
      job.step,
      job.attempt,
      job.kind,
      [...job.labels],
      job.repository,
      job.installationId ?? null,
      JSON.stringify(job.payload),
    ],
  );
  return result.rowCount > 0;
}

/** SQL: whether job `j`'s attempt (or compensation) is still the current one of its run. */
const JOB_CURRENT = `(CASE WHEN j.kind = 'execute' THEN EXISTS (
    SELECT 1 FROM steps s
     WHERE s.run_id = j.run_id AND s.step = j.step AND s.status = 'running' AND s.attempt = j.attempt)
  ELSE EXISTS (
    SELECT 1 FROM steps s
     WHERE s.run_id = j.run_id AND s.step = j.step AND s.state ->> 'compensation' = 'running') END)`;

/**
 * SQL: whether runner `$1`'s scope covers job `j`. A repository runner takes its
 * repository's jobs, an organisation runner its organisation's; a runner registered for
 * an installation takes only that installation's jobs; a local runner takes local jobs.
 */
const IN_SCOPE = `(CASE ru.scope_kind
    WHEN 'local' THEN j.installation_id IS NULL
    WHEN 'repository' THEN lower(j.repository) = lower(ru.scope)
    ELSE lower(split_part(j.repository, '/', 1)) = lower(ru.scope) END
  AND (ru.installation_id IS NULL OR j.installation_id = ru.installation_id))`;

/**
 * Claim up to `limit` queued jobs for a runner: jobs of its scope whose labels it all
 * has, whose attempt is still current, oldest first, with a fresh lease each.
 */
export async function claimRunnerJobs(
  db: Queryable,
  runnerId: string,
  limit: number,
  leaseMs: number,
): Promise<RunnerJob[]> {
  const result = await db.query<DbRunnerJob>(
    `WITH picked AS (
       SELECT j.key FROM runner_jobs j, runners ru
        WHERE ru.id = $1 AND ru.revoked_at IS NULL
          AND j.status = 'queued' AND j.labels <@ ru.labels
          AND ${IN_SCOPE} AND ${JOB_CURRENT}
        ORDER BY j.created_at, j.key
        LIMIT $2
        FOR UPDATE OF j SKIP LOCKED
     )
     UPDATE runner_jobs AS t
        SET status = 'running', runner_id = $1, lease_id = gen_random_uuid()::text,
            lease_until = clock_timestamp() + $3 * interval '1 millisecond',
            claims = t.claims + 1, claimed_at = clock_timestamp()
       FROM picked WHERE t.key = picked.key
     RETURNING t.*`,
    [runnerId, limit, leaseMs],
  );
  return result.rows.map(toJob).sort((a, b) => a.key.localeCompare(b.key));
}

/** Queued jobs whose attempt is no longer current (cancelled, timed out) are dropped. */
export async function dropStaleQueuedJobs(db: Queryable): Promise<number> {
  const result = await db.query(
    `UPDATE runner_jobs AS j SET status = 'dropped', finished_at = clock_timestamp()
      WHERE j.status = 'queued' AND NOT ${JOB_CURRENT}`,
  );
  return result.rowCount;
}

export interface LeaseState {
  key: string;
  /** False when the lease is not this runner's any more (lost, finished): stop the job. */
  held: boolean;
  /** False when the attempt is no longer current (the run or step was cancelled, timed out). */
  current: boolean;
}

/** Renew a runner's leases; say for each whether it is still held and its attempt current. */
export async function renewRunnerLeases(
  db: Queryable,
  runnerId: string,
  leases: readonly { key: string; leaseId: string }[],
  leaseMs: number,
): Promise<LeaseState[]> {
  if (leases.length === 0) return [];
  const result = await db.query<{ key: string; held: boolean; current: boolean | null }>(
    `WITH asked AS (
       SELECT a ->> 'key' AS key, a ->> 'leaseId' AS lease_id FROM jsonb_array_elements($2::jsonb) AS a
     ), renewed AS (
       UPDATE runner_jobs AS j SET lease_until = clock_timestamp() + $3 * interval '1 millisecond'
         FROM asked
        WHERE j.key = asked.key AND j.lease_id = asked.lease_id AND j.runner_id = $1
          AND j.status = 'running'
       RETURNING j.key
     )
     SELECT asked.key, renewed.key IS NOT NULL AS held,
            (SELECT ${JOB_CURRENT} FROM runner_jobs j WHERE j.key = asked.key) AS current
       FROM asked LEFT JOIN renewed ON renewed.key = asked.key`,
    [runnerId, JSON.stringify(leases), leaseMs],
  );
  return result.rows.map((row) => ({
    key: row.key,
    held: row.held,
    current: row.current === true,
  }));
}

/** The job under this runner's lease, locked for the caller's transaction; undefined if the lease is not held. */
export async function lockHeldJob(
  db: Queryable,
  lease: { key: string; leaseId: string; runnerId: string },
): Promise<RunnerJob | undefined> {
  const result = await db.query<DbRunnerJob>(
    `SELECT * FROM runner_jobs
      WHERE key = $1 AND lease_id = $2 AND runner_id = $3 AND status = 'running'
      FOR UPDATE`,
    [lease.key, lease.leaseId, lease.runnerId],
  );
  const row = result.rows[0];
  return row ? toJob(row) : undefined;
}

export async function getRunnerJob(db: Queryable, key: string): Promise<RunnerJob | undefined> {
  const result = await db.query<DbRunnerJob>("SELECT * FROM runner_jobs WHERE key = $1", [key]);
  const row = result.rows[0];
  return row ? toJob(row) : undefined;
}

export async function markJobFinished(db: Queryable, key: string, outcome: Json): Promise<void> {
  await db.query(
    `UPDATE runner_jobs SET status = 'finished', finished_at = clock_timestamp(), outcome = $2::jsonb
      WHERE key = $1`,
    [key, JSON.stringify(outcome)],
  );
}

/**
 * The job whose lease ran out, if it did: marked lost (locked for the caller's transaction).
 * Undefined while the lease holds (a heartbeat renewed it) or once the job has ended.
 */
export async function loseExpiredLease(
  db: Queryable,
  key: string,
): Promise<{ job?: RunnerJob; leaseUntil?: Date }> {
  const result = await db.query<DbRunnerJob & { expired: boolean }>(
    `SELECT *, lease_until < clock_timestamp() AS expired FROM runner_jobs WHERE key = $1 FOR UPDATE`,
    [key],
  );
  const row = result.rows[0];
  if (!row || row.status !== "running") return {};
  if (!row.expired) return row.lease_until ? { leaseUntil: row.lease_until } : {};
  await db.query(
    `UPDATE runner_jobs SET status = 'lost', finished_at = clock_timestamp(),
            outcome = jsonb_build_object('lost', true, 'runnerId', runner_id, 'leaseId', lease_id)
      WHERE key = $1`,
    [key],
  );
  return { job: toJob(row) };
}

/** Late results kept per job; later ones are only counted (`late_results_dropped`). */
export const MAX_LATE_RESULTS = 10;

/**
 * Keep a result that came under a lease the job no longer has (it is otherwise ignored):
 * the first MAX_LATE_RESULTS of a job, then only their number. False when no such job.
 */
export async function recordLateResult(
  db: Queryable,
  key: string,
  late: LateResult,
): Promise<boolean> {
  const result = await db.query(
    `UPDATE runner_jobs
        SET late_results = CASE WHEN jsonb_array_length(late_results) < $3
                                THEN late_results || $2::jsonb ELSE late_results END,
            late_results_dropped = late_results_dropped
              + CASE WHEN jsonb_array_length(late_results) < $3 THEN 0 ELSE 1 END
      WHERE key = $1`,
    [key, JSON.stringify([late]), MAX_LATE_RESULTS],
  );
  return result.rowCount > 0;
}

/**
 * Of `keys`, the jobs that exist and that runner `runnerId`'s scope does not cover (another
 * repository, organisation or installation). A runner never claims such a job, so any
 * request of its about one is refused (DESIGN.md rule 12).
 */
export async function jobsOutsideScope(
  db: Queryable,
  runnerId: string,
  keys: readonly string[],
): Promise<string[]> {
  if (keys.length === 0) return [];
  const result = await db.query<{ key: string }>(
    `SELECT j.key FROM runner_jobs j, runners ru
      WHERE ru.id = $1 AND j.key = ANY ($2::text[]) AND NOT ${IN_SCOPE}
      ORDER BY j.key`,
    [runnerId, [...keys]],
  );
  return result.rows.map((row) => row.key);
}

export interface RunnerRefusal {
  runnerId: string;
  request: "result" | "heartbeat" | "logs";
  key: string;
  reason: string;
  at?: Date;
}

/** Record that a runner asked about a job outside its scope (one row per job named). */
export async function recordRunnerRefusals(
  db: Queryable,
  refusals: readonly RunnerRefusal[],
): Promise<void> {
  if (refusals.length === 0) return;
  await db.query(
    `INSERT INTO runner_refusals (runner_id, request, key, reason)
     SELECT r ->> 'runnerId', r ->> 'request', left(r ->> 'key', 300), r ->> 'reason'
       FROM jsonb_array_elements($1::jsonb) AS r`,
    [JSON.stringify(refusals)],
  );
}

export async function listRunnerRefusals(
  db: Queryable,
  runnerId: string,
): Promise<Required<RunnerRefusal>[]> {
  const result = await db.query<{
    runner_id: string;
    request: RunnerRefusal["request"];
    key: string;
    reason: string;
    at: Date;
  }>(
    `SELECT runner_id, request, key, reason, at FROM runner_refusals
      WHERE runner_id = $1 ORDER BY at, id`,
    [runnerId],
  );
  return result.rows.map((row) => ({
    runnerId: row.runner_id,
    request: row.request,
    key: row.key,
    reason: row.reason,
    at: new Date(row.at),
  }));
}

/** Jobs a runner holds (for `baton runner list` and tests). */
export async function runningJobsOf(db: Queryable, runnerId: string): Promise<RunnerJob[]> {
  const result = await db.query<DbRunnerJob>(
    "SELECT * FROM runner_jobs WHERE runner_id = $1 AND status = 'running' ORDER BY key",
    [runnerId],
  );
  return result.rows.map(toJob);
}

/** Which attempt a held lease's job runs (for its log chunks), or undefined when the lease is not held. */
export async function heldJobAttempt(
  db: Queryable,
  lease: { key: string; leaseId: string; runnerId: string },
): Promise<{ runId: string; step: string; attempt: number } | undefined> {
  const result = await db.query<{ run_id: string; step: string; attempt: number }>(
    `SELECT run_id, step, attempt FROM runner_jobs
      WHERE key = $1 AND lease_id = $2 AND runner_id = $3 AND status = 'running'`,
    [lease.key, lease.leaseId, lease.runnerId],
  );
  const row = result.rows[0];
  return row ? { runId: row.run_id, step: row.step, attempt: row.attempt } : undefined;
}
