/** What every task handler gets: the database, caches, executors and this worker's identity. */
import type { Executor, StepExecution } from "../runner/executor.js";
import type { Database, Transaction } from "../store/database.js";
import type { Task } from "../store/model.js";
import type { ClaimOnEnqueue } from "../store/tasks.js";
import { claimDueTasks, completeTask } from "../store/tasks.js";
import { LeaseLostError } from "./errors.js";
import type { EventCache } from "./event-cache.js";
import type { FlowCache } from "./flow-cache.js";
import type { Logger } from "./log.js";
import type { RunningAttempts } from "./running-attempts.js";

export type Executors = Partial<Record<StepExecution["kind"], Executor>>;

/**
 * The runtime's free slots, for handing tasks straight to it (see `finishTask`). An
 * optimisation only: the tasks handed over are claimed in the database (locked_by, a
 * lease) like any other, so if this process dies another takes them over.
 */
export interface LocalSlots {
  /**
   * Reserve every free slot; `task` is the task finishing now, whose own slot counts as
   * free (it ends when this returns). Returns how many were reserved (0 when stopping).
   */
  reserve(task: Task): number;
  /** After `finished`'s transaction: start `tasks` (claimed, committed), give back the rest of `reserved`. */
  settle(finished: Task, reserved: number, tasks: readonly Task[]): void;
  /** Whether due tasks may be waiting in the queue (a notification, a full claim). */
  readonly backlog: number | undefined;
  /** After a claim of `limit` that got `got`, started when `backlog` was `seen`. */
  claimed(seen: number | undefined, limit: number, got: number): void;
  /** Kinds these slots never take (other lanes' tasks, see RuntimeOptions.lanes). */
  readonly excludeKinds?: readonly string[];
}

export interface TaskContext {
  db: Database;
  flows: FlowCache;
  running: RunningAttempts;
  executors: Executors;
  log: Logger;
  workerId: string;
  leaseMs: number;
  now(): number;
  /** The runtime's slots, when tasks may be handed to it directly. */
  slots?: LocalSlots;
  /** Recent runs' histories (an optimisation; see EventCache). */
  events?: EventCache;
  /** The runtime's longest sleep: later timers need no notification (see Handoff). */
  maxIdleMs?: number;
}

/**
 * What a finishing transaction may claim for this worker: `claim.limit` tasks, claimed
 * on enqueue (by `advanceRun`) into `claimed`, and started once the transaction commits.
 */
export interface Handoff {
  /**
   * The finishing task, not yet deleted: the first `advanceRun` deletes it with the run's
   * lock (one statement) and clears this; if none does, `finishTask` deletes it after the
   * work. Set only when the work starts with `advanceRun` (`foldCompletion`).
   */
  completion?: { taskId: number; workerId: string };
  claim: ClaimOnEnqueue;
  claimed: Task[];
  /** Recent histories, to load only newer events. */
  events?: EventCache;
  /**
   * A task due later than this (ms from now) is enqueued without a notification: every
   * runtime looks at the queue at least every `maxIdleMs`, and this one in time for it.
   */
  announceWithinMs?: number;
  /** Called after the commit (caches that must only see committed state). */
  afterCommit: (() => void)[];
}

/**
 * Do a task's work in one transaction that also deletes the task, so the work commits
 * exactly once. If this worker lost the task (its lease expired and another took it),
 * nothing is committed.
 *
 * When the runtime has free slots (this task's own included), tasks the work enqueues
 * are claimed for this worker on insertion, and if the queue may hold due tasks the
 * remaining slots are filled from it in the same transaction; all of them start when it
 * commits. That saves a claim transaction, a notification and a wake-up of the loop per
 * step. Crash safety is unchanged: they are claimed in the database with a lease.
 */
export async function finishTask<T>(
  ctx: TaskContext,
  task: Task,
  work: (tx: Transaction, handoff?: Handoff) => Promise<T>,
  /** The work's first statement is `advanceRun(…, handoff)`: let it delete the task. */
  options: { foldCompletion?: boolean } = {},
): Promise<T> {
  const slots = ctx.slots;
  const reserved = slots?.reserve(task) ?? 0;
  const handoff: Handoff | undefined = slots
    ? {
        claim: {
          workerId: ctx.workerId,
          leaseMs: ctx.leaseMs,
          limit: reserved,
          ...(slots.excludeKinds ? { excludeKinds: slots.excludeKinds } : {}),
        },
        claimed: [],
        afterCommit: [],
        ...(ctx.events ? { events: ctx.events } : {}),
        ...(ctx.maxIdleMs !== undefined ? { announceWithinMs: ctx.maxIdleMs } : {}),
      }
    : undefined;
  let value: T;
  let queueClaim: { seen: number; limit: number; got: number } | undefined;
  try {
    value = await ctx.db.transaction(async (tx) => {
      queueClaim = undefined;
      const fold = handoff !== undefined && options.foldCompletion === true;
      if (handoff) {
        handoff.claimed = [];
        handoff.afterCommit = [];
        if (fold) handoff.completion = { taskId: task.id, workerId: ctx.workerId };
      }
      if (!fold && !(await completeTask(tx, task.id, ctx.workerId)))
        throw new LeaseLostError(task.id);
      const result = await work(tx, handoff);
      if (handoff?.completion) {
        handoff.completion = undefined;
        if (!(await completeTask(tx, task.id, ctx.workerId))) throw new LeaseLostError(task.id);
      }
      const left = reserved - (handoff?.claimed.length ?? 0);
      const seen = slots?.backlog;
      if (handoff && left > 0 && seen !== undefined) {
        const { tasks } = await claimDueTasks(tx, { ...handoff.claim, limit: left });
        queueClaim = { seen, limit: left, got: tasks.length };
        handoff.claimed.push(...tasks);
      }
      return result;
    });
  } catch (error: unknown) {
    slots?.settle(task, reserved, []);
    throw error;
  }
  // Only a committed claim says anything about the queue.
  if (queueClaim) slots?.claimed(queueClaim.seen, queueClaim.limit, queueClaim.got);
  slots?.settle(task, reserved, handoff?.claimed ?? []);
  for (const hook of handoff?.afterCommit ?? []) hook();
  return value;
}
