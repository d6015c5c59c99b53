/** The messages between a benchmark and its runtime child (runtime-child.ts), over Node's IPC channel. */
import type { QueryCounts } from "./counting-database.js";

export type ParentMessage = { type: "start" } | { type: "sample" } | { type: "stop" };

/** The server's durability settings, as the runtime's own connection reads them. */
export interface Durability {
  synchronousCommit: string;
  fsync: string;
}

export interface Sample {
  type: "sample";
  /** process.memoryUsage().rss of the child, in bytes. */
  rss: number;
  heapUsed: number;
  /** process.cpuUsage(), user + system, in µs since the child started. */
  cpuMicros: number;
  /** Round trips the runtime's pool has sent so far (counted in `pg`). */
  counts: QueryCounts;
  /** `run` steps the no-op executor has run. */
  executed: number;
}

export type ChildMessage =
  | { type: "ready"; durability: Durability }
  /** The runtime was started at `at` (Date.now() of the child). */
  | { type: "started"; at: number }
  | { type: "stopped" }
  | Sample;
