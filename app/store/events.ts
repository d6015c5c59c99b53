/** A run's append-only history. */
import type { RunEvent } from "../engine/types.js";
import type { Queryable } from "./database.js";

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

/** Whether an attempt's outcome is already recorded (a repeated execution is then only recognised). */
export async function attemptFinished(
  db: Queryable,
  runId: string,
  step: string,
  attempt: number,
): Promise<boolean> {
  const result = await db.query(
    `SELECT 1 FROM run_events
      WHERE run_id = $1 AND type = 'attempt.finished' AND data ->> 'step' = $2 AND (data ->> 'attempt')::integer = $3`,
    [runId, step, attempt],
  );
  return result.rows.length > 0;
}
