/**
 * The check-run writer's SQL: what each run's check run shows (github_check_runs) and the
 * pacing of writes per installation (github_write_pacing).
 */
import type { Queryable, Transaction } from "./database.js";
import { CHANNELS } from "./database.js";

/** What GitHub shows of a run, as last stored. */
export interface CheckRunRecord {
  runId: string;
  /** Undefined until a create was answered and stored. */
  checkRunId?: number;
  /**
   * The conclusion `checkRunId` was last sent with, if it was sent completed: GitHub keeps
   * a completed check run's status and conclusion, so a different one needs a new check run.
   */
  conclusion?: string;
  renderedSeq: number;
  renderedHash?: string;
  note?: string;
  noteSeq: number;
  renderedNoteSeq: number;
}

interface DbCheckRun {
  run_id: string;
  check_run_id: string | number | null;
  conclusion: string | null;
  rendered_seq: number;
  rendered_hash: string | null;
  note: string | null;
  note_seq: number;
  rendered_note_seq: number;
}

function toRecord(row: DbCheckRun): CheckRunRecord {
  return {
    runId: row.run_id,
    ...(row.check_run_id !== null ? { checkRunId: Number(row.check_run_id) } : {}),
    ...(row.conclusion !== null ? { conclusion: row.conclusion } : {}),
    renderedSeq: row.rendered_seq,
    ...(row.rendered_hash !== null ? { renderedHash: row.rendered_hash } : {}),
    ...(row.note !== null ? { note: row.note } : {}),
    noteSeq: row.note_seq,
    renderedNoteSeq: row.rendered_note_seq,
  };
}

export async function getCheckRunRecord(
  db: Queryable,
  runId: string,
): Promise<CheckRunRecord | undefined> {
  const result = await db.query<DbCheckRun>("SELECT * FROM github_check_runs WHERE run_id = $1", [
    runId,
  ]);
  const row = result.rows[0];
  return row ? toRecord(row) : undefined;
}

/** Remember what was sent: the check run, the run's history and the note it shows. */
export async function saveRendered(
  db: Queryable,
  record: {
    runId: string;
    checkRunId: number;
    conclusion: string | undefined;
    renderedSeq: number;
    renderedHash: string;
    renderedNoteSeq: number;
  },
): Promise<void> {
  await db.query(
    `INSERT INTO github_check_runs (run_id, check_run_id, conclusion, rendered_seq, rendered_hash, rendered_note_seq)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (run_id) DO UPDATE
       SET check_run_id = excluded.check_run_id,
           conclusion = excluded.conclusion,
           rendered_seq = excluded.rendered_seq,
           rendered_hash = excluded.rendered_hash,
           rendered_note_seq = greatest(github_check_runs.rendered_note_seq, excluded.rendered_note_seq),
           updated_at = now()`,
    [
      record.runId,
      record.checkRunId,
      record.conclusion ?? null,
      record.renderedSeq,
      record.renderedHash,
      record.renderedNoteSeq,
    ],
  );
}

/** Leave a note for the people who look at the run's check run (shown by the next update). */
export async function setCheckRunNote(db: Queryable, runId: string, note: string): Promise<void> {
  await db.query(
    `INSERT INTO github_check_runs (run_id, note, note_seq) VALUES ($1, $2, 1)
     ON CONFLICT (run_id) DO UPDATE
       SET note = excluded.note, note_seq = github_check_runs.note_seq + 1, updated_at = now()`,
    [runId, note],
  );
}

/**
 * Take the installation's next write slot: the later of now and the slot after the
 * previous writer's, and move the next slot `intervalMs` past it, in one statement (the
 * upsert locks the installation's row, so concurrent writers, in any process, queue up
 * and each gets its own slot). Returns the slot (ms since the epoch, by the database's
 * clock, the one every process shares) and how long until it, by the same clock.
 */
export async function takeWriteSlot(
  db: Queryable,
  installationId: number,
  intervalMs: number,
): Promise<{ slotAt: number; waitMs: number }> {
  const result = await db.query<{ slot_at: number | string; wait_ms: number | string }>(
    `WITH taken AS (
       INSERT INTO github_write_pacing AS p (installation_id, next_at)
       VALUES ($1, clock_timestamp() + $2 * interval '1 millisecond')
       ON CONFLICT (installation_id) DO UPDATE
         SET next_at = greatest(p.next_at, clock_timestamp()) + $2 * interval '1 millisecond'
       RETURNING p.next_at - $2 * interval '1 millisecond' AS slot
     )
     SELECT extract(epoch FROM slot) * 1000 AS slot_at,
            greatest(0, extract(epoch FROM (slot - clock_timestamp())) * 1000) AS wait_ms
       FROM taken`,
    [installationId, intervalMs],
  );
  const row = result.rows[0];
  return { slotAt: Number(row?.slot_at ?? Date.now()), waitMs: Number(row?.wait_ms ?? 0) };
}

/** GitHub asked to wait (`retry-after`): no write for this installation before `until`. */
export async function deferWrites(
  db: Queryable,
  installationId: number,
  until: Date,
): Promise<void> {
  await db.query(
    `INSERT INTO github_write_pacing AS p (installation_id, next_at) VALUES ($1, $2)
     ON CONFLICT (installation_id) DO UPDATE SET next_at = greatest(p.next_at, excluded.next_at)`,
    [installationId, until],
  );
}

/**
 * Lock the run's row and read its history's length. Taken first in the transaction that
 * finishes a sync (see `syncCheckRunTask` on why the order matters).
 */
export async function lockRunLastSeq(db: Queryable, runId: string): Promise<number | undefined> {
  const result = await db.query<{ last_seq: number }>(
    "SELECT last_seq FROM runs WHERE id = $1 FOR UPDATE",
    [runId],
  );
  return result.rows[0]?.last_seq;
}

/**
 * Give the task back to run at `runAt` with `payload` (a write slot it holds, or nothing),
 * without counting it as a failure. False when this worker no longer holds it.
 */
export async function rescheduleTask(
  tx: Transaction,
  task: { id: number; workerId: string },
  runAt: Date,
  payload: Record<string, unknown>,
  why?: string,
): Promise<boolean> {
  const result = await tx.query(
    `UPDATE tasks SET locked_by = NULL, locked_until = NULL, run_at = $3, payload = $4::jsonb,
            attempts = greatest(attempts - 1, 0), last_error = coalesce($5, last_error)
      WHERE id = $1 AND locked_by = $2`,
    [task.id, task.workerId, runAt, JSON.stringify(payload), why ?? null],
  );
  // Wake the workers for it: one may be sleeping past runAt (this task's lease end).
  if (result.rowCount > 0) await tx.notify(CHANNELS.tasks, String(runAt.getTime()));
  return result.rowCount > 0;
}
