/**
 * Rows as the database returns them (snake_case, one interface per table), separate from
 * the domain types in `model.ts` (camelCase) that the rest of Baton uses.
 */
import type { Json } from "../engine/types.js";

export interface DbFlowVersion {
  id: string;
  source_kind: "repository" | "local";
  repository: string;
  path: string;
  sha: string;
  name: string;
  definition: Json;
  source: string;
  created_at: Date;
}

export interface DbRun {
  id: string;
  flow_version_id: string;
  repository: string;
  flow: string;
  number: number;
  status: "queued" | "running" | "compensating" | "success" | "failure" | "cancelled";
  concurrency_group: string | null;
  parent_run_id: string | null;
  parent_step: string | null;
  parent_attempt: number | null;
  actor: string;
  trigger_event: string;
  inputs: Json;
  state: Json | null;
  last_seq: number;
  created_at: Date;
  updated_at: Date;
  finished_at: Date | null;
  installation_id: string | number | null;
  head_sha: string | null;
  pull_request: number | null;
  issue: number | null;
}

export interface DbRunEvent {
  run_id: string;
  seq: number;
  type: string;
  at: Date;
  data: Json;
}

export interface DbStep {
  run_id: string;
  step: string;
  status: string;
  result: string | null;
  attempt: number;
  outputs: Json;
  started_at: Date | null;
  finished_at: Date | null;
  reason: string | null;
}

export interface DbStepLog {
  seq: number;
  run_id: string;
  step: string;
  attempt: number;
  stream: "stdout" | "stderr" | "system";
  chunk: string;
  at: Date;
}

export interface DbTask {
  id: number;
  kind: string;
  run_id: string | null;
  key: string | null;
  payload: Json;
  run_at: Date;
  attempts: number;
  locked_by: string | null;
  locked_until: Date | null;
  last_error: string | null;
  created_at: Date;
}
