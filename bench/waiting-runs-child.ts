/**
 * The runtime of the waiting-runs benchmark, alone in its own process so that its memory
 * is measured without the benchmark's:
 *   node dist/bench/waiting-runs-child.js   (forked by waiting-runs.ts, with an IPC channel)
 * Environment: BENCH_DATABASE_URL, BENCH_CONCURRENCY. `run` steps are in-process no-ops.
 * Answers `sample` with its memory, CPU time and database traffic; `stop` stops it.
 */
import { startRuntime } from "../app/runtime/runtime.js";
import { openPostgres } from "../app/store/postgres.js";
import { benchLogger, noopExecutor } from "./bench-flows.js";
import { countingDatabase } from "./counting-database.js";
import type { ChildMessage, ParentMessage } from "./waiting-runs-protocol.js";

const url = process.env.BENCH_DATABASE_URL;
const send = (message: ChildMessage) => process.send?.(message);

if (url === undefined || !process.send) {
  process.stderr.write("waiting-runs-child: start it through `node dist/bench/index.js memory`\n");
  process.exitCode = 2;
} else {
  const counted = countingDatabase(openPostgres({ connectionString: url }));
  const runtime = startRuntime({
    store: counted.db,
    concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8),
    executors: { run: noopExecutor() },
    log: benchLogger,
  });
  process.on("message", (message: ParentMessage) => {
    if (message.type === "sample") {
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      send({
        type: "sample",
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        cpuMicros: cpu.user + cpu.system,
        counts: counted.snapshot(),
      });
    } else {
      void runtime
        .stop({ graceMs: 5000 })
        .then(() => counted.db.close())
        .then(() => {
          send({ type: "stopped" });
          process.disconnect();
        });
    }
  });
  send({ type: "ready" });
}
