/** The messages between the waiting-runs benchmark and its runtime child, over Node's IPC channel. */
import type { QueryCounts } from "./counting-database.js";

export type ParentMessage = { type: "sample" } | { type: "stop" };

export interface Sample {
  type: "sample";
  /** process.memoryUsage().rss of the child, in bytes. */
  rss: number;
  heapUsed: number;
  /** process.cpuUsage(), user + system, in µs since the child started. */
  cpuMicros: number;
  /** What the runtime's store has seen so far. */
  counts: QueryCounts;
}

export type ChildMessage = { type: "ready" } | { type: "stopped" } | Sample;
