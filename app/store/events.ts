/** A run's append-only history. */
import type { RunEvent, RunState, StepState } from "../engine/types.js";
import type { Queryable } from "./database.js";
import type { DbTask } from "./rows.js";
import type { PreparedEnqueue } from "./tasks.js";

/** Append numbered events (the caller holds the run's lock and numbered them from last_seq + 1). */
export async function appendEvents(
  tx: Queryable,
  runId: string,
  events: readonly RunEvent[],
): Promise<void> {
  if (events.length === 0) return;
  await tx.query(
    `INSERT INTO run_events (run_id, seq, type, at, data)
     SELECT $1, (e ->> 'seq')::integer, e ->> 'type', to_timestamp((e ->> 'at')::double precision / 1000.0), e
       FROM jsonb_array_elements($2::jsonb) AS e`,
    [runId, JSON.stringify(events)],
  );
}

/** A run's events in order, from `afterSeq` + 1. */
export async function loadEvents(db: Queryable, runId: string, afterSeq = 0): Promise<RunEvent[]> {
  const result = await db.query<{ data: RunEvent }>(
    "SELECT data FROM run_events WHERE run_id = $1 AND seq > $2 ORDER BY seq",
    [runId, afterSeq],
  );
  return result.rows.map((row) => row.data);
}

/**
 * A decision's writes in one statement (one round trip): append its numbered events, store
 * the run's state projection (its run-level part in runs, when `runLevelChanged`; each
 * changed step's in its steps row) and the steps that changed. The caller holds the run's
 * lock. Unchanged steps are not written: the WAL of a step does not grow with the run.
 */
export async function recordDecision(
  tx: Queryable,
  runId: string,
  decision: {
    events: readonly RunEvent[];
    state: RunState;
    /** The state's fields other than its steps differ from the stored ones. */
    runLevelChanged: boolean;
    lastSeq: number;
    now: Date;
    steps: readonly StepState[];
  },
  /** Tasks to enqueue in the same statement (its `finish` is the caller's to call). */
  enqueue?: PreparedEnqueue,
): Promise<{ inserted: DbTask[]; watched: boolean }> {
  const steps = decision.steps.map((step) => ({
    step: step.id,
    status: step.status,
    result: step.result ?? null,
    attempt: step.attempt,
    outputs: step.outputs,
    started_at: step.startedAt ?? null,
    finished_at: step.finishedAt ?? null,
    reason: step.reason ?? null,
    state: step,
  }));
  const { steps: _steps, ...runLevel } = decision.state;
  const result = await tx.query<DbTask & { watched: boolean }>(
    `WITH appended AS (
       INSERT INTO run_events (run_id, seq, type, at, data)
       SELECT $1, (e ->> 'seq')::integer, e ->> 'type', to_timestamp((e ->> 'at')::double precision / 1000.0), e
         FROM jsonb_array_elements($2::jsonb) AS e
     ), projected AS (
       UPDATE runs SET status = $3::text, state = coalesce($4::jsonb, state), last_seq = $5, updated_at = $6::timestamptz,
                       finished_at = CASE WHEN $3::text IN ('success', 'failure', 'cancelled') THEN coalesce(finished_at, $6::timestamptz) ELSE NULL END
        WHERE id = $1
     ), stepped AS (
       INSERT INTO steps (run_id, step, status, result, attempt, outputs, started_at, finished_at, reason, state)
       SELECT $1, s.step, s.status, s.result, s.attempt, s.outputs,
              to_timestamp(s.started_at / 1000.0), to_timestamp(s.finished_at / 1000.0), s.reason, s.state
         FROM jsonb_to_recordset($7::jsonb)
           AS s(step text, status text, result text, attempt integer, outputs jsonb,
                started_at double precision, finished_at double precision, reason text, state jsonb)
       ON CONFLICT (run_id, step) DO UPDATE SET
         status = excluded.status, result = excluded.result, attempt = excluded.attempt,
         outputs = excluded.outputs, started_at = excluded.started_at,
         finished_at = excluded.finished_at, reason = excluded.reason, state = excluded.state
     ), watch AS (
       -- Is the run watched (Database.watchRun)? A watcher holds a shared lock on the key;
       -- taking it exclusively (until commit) fails then. A watcher registering meanwhile
       -- waits for this commit, then reads the state: no change goes unseen.
       SELECT NOT pg_try_advisory_xact_lock(hashtextextended('baton:watch:' || $1, 0)) AS watched
     )${
       enqueue
         ? `, queued AS (${enqueue.insert(8)})
       SELECT q.*, w.watched FROM watch AS w LEFT JOIN queued AS q ON true`
         : " SELECT NULL::bigint AS id, w.watched FROM watch AS w"
     }`,
    [
      runId,
      JSON.stringify(decision.events),
      decision.state.status,
      decision.runLevelChanged ? JSON.stringify(runLevel) : null,
      decision.lastSeq,
      decision.now,
      JSON.stringify(steps),
      ...(enqueue?.params ?? []),
    ],
  );
  return {
    inserted: result.rows.filter((row) => row.id !== null),
    watched: result.rows[0]?.watched ?? true,
  };
}
