/**
 * The runtime's public surface, the only module other folders import from app/runtime:
 * start workers (`startRuntime`), change runs through the one door (`RunDoor`), operate
 * on runs for people (`BatonService`), write task handlers (`TaskHandler`, `finishTask`),
 * and the errors they throw.
 */
export { startRuntime, layerHandlers, DEFAULT_EXECUTORS } from "./runtime.js";
export type { Runtime, RuntimeLane, RuntimeOptions, TaskHandler } from "./runtime.js";
export { BatonService, waitsForPeople } from "./service.js";
export type { RunDetails, StartRunRequest, StartedRun, WaitOptions } from "./service.js";
export { RunDoor, attemptIsCurrent, attemptKey, doorOf, parseAttemptKey } from "./run-door.js";
export type {
  ApprovalOptions,
  AttemptRef,
  DoorCall,
  Into,
  LoadedSubFlow,
  Report,
  ReportedOutcome,
  SubFlowFile,
  Withdrawal,
  WithdrawalFilter,
} from "./run-door.js";
export { localSubFlows, invalidSubFlow, subFlowNameError } from "./sub-flow-source.js";
export type { SubFlowSource } from "./sub-flow-source.js";
export { subRunTask } from "./run-tasks.js";
export { compensatedAttempt, compensationRunning, executeTaskCurrent } from "./execute-step.js";
export { dropTasks, rescheduleTasks, scheduleTasks } from "./scheduled-tasks.js";
export { sha256 } from "./content-hash.js";
export * from "./errors.js";
export { finishTask } from "./task-context.js";
export type { Executors, Handoff, TaskContext } from "./task-context.js";
export { TASK_KINDS, SYNC_CHECK_RUN, syncCheckRunTask, type TaskKind } from "./task-kinds.js";
export { LOG_CHUNK_BYTES } from "./step-log-writer.js";
export { silentLogger, stderrLogger, type Logger } from "./log.js";
