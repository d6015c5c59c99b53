/** What steps print, stored in bounded chunks as it arrives. */
import type { Queryable } from "./database.js";
import type { StepLogChunk } from "./model.js";
import { toStepLogChunk } from "./model.js";
import type { DbStepLog } from "./rows.js";

export interface NewLogChunk {
  runId: string;
  step: string;
  attempt: number;
  stream: "stdout" | "stderr" | "system";
  chunk: string;
  at: number;
}

export async function appendLogs(db: Queryable, chunks: readonly NewLogChunk[]): Promise<void> {
  if (chunks.length === 0) return;
  // In array order, so that seq follows the order of arrival.
  await db.query(
    `INSERT INTO step_logs (run_id, step, attempt, stream, chunk, at)
     SELECT e.c ->> 'runId', e.c ->> 'step', (e.c ->> 'attempt')::integer, e.c ->> 'stream', e.c ->> 'chunk',
            to_timestamp((e.c ->> 'at')::double precision / 1000.0)
       FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(c, ord)
      ORDER BY e.ord`,
    [JSON.stringify(chunks)],
  );
}

export interface LogQuery {
  runId: string;
  step?: string;
  /** Only chunks after this one (for following a log). (Default: 0, from the start) */
  afterSeq?: number;
  /** (Default: 1000) */
  limit?: number;
}

export async function readLogs(db: Queryable, query: LogQuery): Promise<StepLogChunk[]> {
  const result = await db.query<DbStepLog>(
    `SELECT * FROM step_logs
      WHERE run_id = $1 AND ($2::text IS NULL OR step = $2) AND seq > $3
      ORDER BY seq LIMIT $4`,
    [query.runId, query.step ?? null, query.afterSeq ?? 0, query.limit ?? 1000],
  );
  return result.rows.map(toStepLogChunk);
}
