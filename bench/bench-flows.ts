/**
 * The flows the runtime benchmarks run, the no-op executor that runs their steps, and a
 * helper that creates many runs through `BatonService` (the way the CLI and the API do).
 */
import type { Logger } from "../app/runtime/log.js";
import type { BatonService } from "../app/runtime/service.js";
import type { Executor } from "../app/runner/executor.js";

/** A flow file that exists only in memory: `startRun` parses the source and never reads the path. */
export interface FlowFile {
  path: string;
  source: string;
}

/** `width` independent no-op steps. */
export function parallelFlow(name: string, width: number): FlowFile {
  const steps = Array.from({ length: width }, (_, i) => `  s${i + 1}:\n    run: "true"\n`);
  return { path: `/baton-bench/${name}.yml`, source: `steps:\n${steps.join("")}` };
}

/** `length` no-op steps, each needing the one before. */
export function chainFlow(name: string, length: number): FlowFile {
  const steps = Array.from(
    { length },
    (_, i) => `  s${i + 1}:\n${i > 0 ? `    needs: s${i}\n` : ""}    run: "true"\n`,
  );
  return { path: `/baton-bench/${name}.yml`, source: `steps:\n${steps.join("")}` };
}

/** One step, waiting for the signal `go`. */
export function waitingFlow(name: string): FlowFile {
  return { path: `/baton-bench/${name}.yml`, source: `steps:\n  go:\n    wait: { signal: go }\n` };
}

/**
 * An in-process executor that does nothing and succeeds, so that the benchmarks measure
 * orchestration (claims, decisions, commits), not the start-up of a shell.
 */
export function noopExecutor(onExecuted?: () => void): Executor {
  return () => {
    onExecuted?.();
    return Promise.resolve({ outcome: "success", outputs: {} });
  };
}

/** Warnings and errors go to stderr (a benchmark that hides failures measures nothing). */
export const benchLogger: Logger = {
  info() {},
  warn: (message, fields) =>
    process.stderr.write(`bench: runtime warn ${message} ${fmt(fields)}\n`),
  error: (message, fields) =>
    process.stderr.write(`bench: runtime error ${message} ${fmt(fields)}\n`),
};

function fmt(fields: Record<string, unknown> | undefined): string {
  return JSON.stringify(fields ?? {}, (_key, value: unknown) =>
    value instanceof Error ? `${value.name}: ${value.message}` : value,
  );
}

/**
 * Start `count` runs, spread round-robin over `flows`, `flows.length` at a time. Distinct
 * flows let creations proceed in parallel: each flow's run numbers come from one row that
 * a creating transaction holds until it commits. Returns the run ids in creation order.
 */
export async function createRuns(
  service: BatonService,
  flows: readonly FlowFile[],
  count: number,
  onProgress?: (created: number) => void,
): Promise<string[]> {
  const ids: string[] = [];
  const versions: string[] = [];
  // The first run of each flow stores its version; the others reuse it (no re-parsing).
  for (const flow of flows.slice(0, count)) {
    const started = await service.startRun({ flowFile: flow, actor: "bench" });
    ids.push(started.runId);
    versions.push((await service.getRun(started.runId)).run.flowVersionId);
  }
  let next = ids.length;
  const worker = async (versionId: string) => {
    while (next < count) {
      next += 1;
      const started = await service.startRun({ flowFile: { versionId }, actor: "bench" });
      ids.push(started.runId);
      if (ids.length % 1000 === 0) onProgress?.(ids.length);
    }
  };
  await Promise.all(versions.map((versionId) => worker(versionId)));
  return ids;
}
