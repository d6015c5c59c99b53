/**
 * The runtime's public surface: start workers (`startRuntime`), operate on runs
 * (`BatonService`), and the errors they throw.
 */
export { startRuntime, DEFAULT_EXECUTORS } from "./runtime.js";
export type { Runtime, RuntimeOptions, TaskHandler } from "./runtime.js";
export { BatonService, waitsForPeople } from "./service.js";
export type {
  ApprovalOptions,
  RunDetails,
  StartRunRequest,
  StartedRun,
  WaitOptions,
} from "./service.js";
export * from "./errors.js";
export { finishTask } from "./task-context.js";
export type { Executors, TaskContext } from "./task-context.js";
export { TASK_KINDS, SYNC_CHECK_RUN, type TaskKind } from "./task-kinds.js";
export { silentLogger, stderrLogger, type Logger } from "./log.js";
