// Migration 13: a step's state lives in its row of `steps`, no longer inside runs.state
// (issue 13). A decision then writes only the steps it changed, instead of rewriting the
// whole state (every step) of the run on every step: the WAL per step no longer grows
// with the run's length. Readers assemble `Run.state` from both (app/store/runs.ts).
export default /* sql */ `
ALTER TABLE steps ADD COLUMN state jsonb;

-- Every step of every run gets its state from the run's stored state (a step row was
-- written for each step when its run started; one missing is added all the same).
INSERT INTO steps (run_id, step, status, result, attempt, outputs, started_at, finished_at, reason, state)
SELECT r.id, s.key, s.value ->> 'status', s.value ->> 'result',
       coalesce((s.value ->> 'attempt')::integer, 0), coalesce(s.value -> 'outputs', '{}'::jsonb),
       to_timestamp((s.value ->> 'startedAt')::double precision / 1000.0),
       to_timestamp((s.value ->> 'finishedAt')::double precision / 1000.0),
       s.value ->> 'reason', s.value
  FROM runs AS r, jsonb_each(r.state -> 'steps') AS s
 WHERE jsonb_typeof(r.state -> 'steps') = 'object'
ON CONFLICT (run_id, step) DO UPDATE SET state = excluded.state;

UPDATE runs SET state = state - 'steps' WHERE state ? 'steps';
`;
