/** What every task handler gets: the database, caches, executors and this worker's identity. */
import type { Executor, StepExecution } from "../runner/executor.js";
import type { Database, Transaction } from "../store/database.js";
import type { Task } from "../store/model.js";
import { completeTask } from "../store/tasks.js";
import { LeaseLostError } from "./errors.js";
import type { FlowCache } from "./flow-cache.js";
import type { Logger } from "./log.js";
import type { RunningAttempts } from "./running-attempts.js";

export type Executors = Partial<Record<StepExecution["kind"], Executor>>;

export interface TaskContext {
  db: Database;
  flows: FlowCache;
  running: RunningAttempts;
  executors: Executors;
  log: Logger;
  workerId: string;
  leaseMs: number;
  now(): number;
}

/**
 * Do a task's work in one transaction that also deletes the task, so the work commits
 * exactly once. If this worker lost the task (its lease expired and another took it),
 * nothing is committed.
 */
export async function finishTask<T>(
  ctx: TaskContext,
  task: Task,
  work: (tx: Transaction) => Promise<T>,
): Promise<T> {
  return ctx.db.transaction(async (tx) => {
    if (!(await completeTask(tx, task.id, ctx.workerId))) throw new LeaseLostError(task.id);
    return work(tx);
  });
}
