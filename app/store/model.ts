/**
 * Domain types of the store (camelCase), and the mapping from rows. Callers above the
 * store see these, never `Db*` rows.
 */
import type {
  FlowDefinition,
  Json,
  RunEvent,
  RunState,
  RunStatus,
  StepStatus,
  StepResult,
} from "../engine/types.js";
import type { DbFlowVersion, DbRun, DbStep, DbStepLog, DbTask } from "./rows.js";

export interface FlowVersion {
  id: string;
  sourceKind: "repository" | "local";
  repository: string;
  path: string;
  sha: string;
  name: string;
  definition: FlowDefinition;
  source: string;
  createdAt: Date;
}

export interface Run {
  id: string;
  flowVersionId: string;
  repository: string;
  flow: string;
  number: number;
  status: RunStatus;
  concurrencyGroup?: string;
  parent?: { runId: string; step: string; attempt: number };
  actor: string;
  triggerEvent: string;
  inputs: Record<string, Json>;
  state?: RunState;
  lastSeq: number;
  createdAt: Date;
  updatedAt: Date;
  finishedAt?: Date;
  /** For runs of a repository's flow: where GitHub shows the run and who acts for it. */
  github?: RunGitHub;
}

/** A run's place on GitHub. */
export interface RunGitHub {
  installationId: number;
  /** The commit its check run is on: the pull request's head for runs a pull request started. */
  headSha: string;
  /** The pull request that started the run. */
  pullRequest?: number;
  /** The issue or pull request whose comment asked for the run (replies go there). */
  issue?: number;
}

export interface Step {
  runId: string;
  step: string;
  status: StepStatus;
  result?: StepResult;
  attempt: number;
  outputs: Record<string, string>;
  startedAt?: Date;
  finishedAt?: Date;
  reason?: string;
}

export interface StepLogChunk {
  seq: number;
  runId: string;
  step: string;
  attempt: number;
  stream: "stdout" | "stderr" | "system";
  chunk: string;
  at: Date;
}

/** What the runtime has to do. See `TASK_KINDS` in app/runtime. */
export interface Task {
  id: number;
  kind: string;
  runId?: string;
  key?: string;
  payload: Json;
  runAt: Date;
  attempts: number;
  lockedBy?: string;
  lockedUntil?: Date;
  lastError?: string;
  /**
   * For an `execute` task claimed by `claimDueTasks`: whether its attempt was still
   * running when claimed. A hint read in the claim's snapshot (saves a query), not a lock.
   */
  stepCurrent?: boolean;
}

export interface NewTask {
  kind: string;
  runId?: string;
  /** Idempotency key: while a task with this key exists, enqueuing another is a no-op. */
  key?: string;
  payload?: Json;
  /** (Default: now) */
  runAt?: Date;
}

export type { RunEvent };

export function toFlowVersion(row: DbFlowVersion): FlowVersion {
  return {
    id: row.id,
    sourceKind: row.source_kind,
    repository: row.repository,
    path: row.path,
    sha: row.sha,
    name: row.name,
    definition: row.definition as unknown as FlowDefinition,
    source: row.source,
    createdAt: row.created_at,
  };
}

export function toRun(row: DbRun): Run {
  return {
    id: row.id,
    flowVersionId: row.flow_version_id,
    repository: row.repository,
    flow: row.flow,
    number: row.number,
    status: row.status,
    ...(row.concurrency_group !== null ? { concurrencyGroup: row.concurrency_group } : {}),
    ...(row.parent_run_id !== null
      ? {
          parent: {
            runId: row.parent_run_id,
            step: row.parent_step ?? "",
            attempt: row.parent_attempt ?? 0,
          },
        }
      : {}),
    actor: row.actor,
    triggerEvent: row.trigger_event,
    inputs: row.inputs as Record<string, Json>,
    ...(row.state !== null ? { state: row.state as unknown as RunState } : {}),
    lastSeq: row.last_seq,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    ...(row.finished_at !== null ? { finishedAt: row.finished_at } : {}),
    ...(row.installation_id !== null && row.head_sha !== null
      ? {
          github: {
            installationId: Number(row.installation_id),
            headSha: row.head_sha,
            ...(row.pull_request !== null ? { pullRequest: row.pull_request } : {}),
            ...(row.issue !== null ? { issue: row.issue } : {}),
          },
        }
      : {}),
  };
}

export function toStep(row: DbStep): Step {
  return {
    runId: row.run_id,
    step: row.step,
    status: row.status as StepStatus,
    ...(row.result !== null ? { result: row.result as StepResult } : {}),
    attempt: row.attempt,
    outputs: row.outputs as Record<string, string>,
    ...(row.started_at !== null ? { startedAt: row.started_at } : {}),
    ...(row.finished_at !== null ? { finishedAt: row.finished_at } : {}),
    ...(row.reason !== null ? { reason: row.reason } : {}),
  };
}

export function toStepLogChunk(row: DbStepLog): StepLogChunk {
  return {
    seq: row.seq,
    runId: row.run_id,
    step: row.step,
    attempt: row.attempt,
    stream: row.stream,
    chunk: row.chunk,
    at: row.at,
  };
}

export function toTask(row: DbTask): Task {
  return {
    id: row.id,
    kind: row.kind,
    ...(row.run_id !== null ? { runId: row.run_id } : {}),
    ...(row.key !== null ? { key: row.key } : {}),
    payload: row.payload,
    runAt: row.run_at,
    attempts: row.attempts,
    ...(row.locked_by !== null ? { lockedBy: row.locked_by } : {}),
    ...(row.locked_until !== null ? { lockedUntil: row.locked_until } : {}),
    ...(row.last_error !== null ? { lastError: row.last_error } : {}),
  };
}
