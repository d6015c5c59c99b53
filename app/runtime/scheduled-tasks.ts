/**
 * Tasks other parts schedule for their own handlers (a runner job's lease watcher, a
 * workflow run's cancellation): the runtime's `tasks` table is the runtime's, so they go
 * through here, in the caller's transaction.
 */
import type { Transaction } from "../store/database.js";
import type { NewTask } from "../store/model.js";
import { enqueueTasks } from "../store/tasks.js";
import { deleteUnclaimedTasks } from "../store/unclaimed-tasks.js";

/** Enqueue `tasks`; a task of the same key that is already there stays (keys are unique). */
export async function scheduleTasks(tx: Transaction, tasks: readonly NewTask[]): Promise<void> {
  await enqueueTasks(tx, tasks);
}

/**
 * Enqueue `tasks` in place of the unclaimed ones of the same keys (a watcher moved to a
 * new moment). A task a worker holds now is left to finish.
 */
export async function rescheduleTasks(tx: Transaction, tasks: readonly NewTask[]): Promise<void> {
  await deleteUnclaimedTasks(
    tx,
    tasks.flatMap((task) => (task.key !== undefined ? [task.key] : [])),
  );
  await enqueueTasks(tx, tasks);
}

/** Drop the unclaimed tasks of these keys (their work became useless). */
export async function dropTasks(tx: Transaction, keys: readonly string[]): Promise<void> {
  await deleteUnclaimedTasks(tx, keys);
}
