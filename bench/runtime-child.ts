/**
 * A runtime alone in its own process, so that what the benchmarks measure (its time, its
 * memory, its round trips) holds nothing of the benchmark's: the benchmark creates runs
 * and watches them from its own process.
 *   node dist/bench/runtime-child.js   (forked by runtime-process.ts, with an IPC channel)
 * Environment: BENCH_DATABASE_URL (with an application_name, which its round trips are
 * counted by), BENCH_CONCURRENCY. `run` steps are in-process no-ops. Answers `start` by
 * starting the runtime, `sample` with its memory, CPU time and round trips; `stop` stops it.
 */
import { startRuntime, type Runtime } from "../app/runtime/runtime.js";
import { openPostgres } from "../app/store/postgres.js";
import { benchLogger, noopExecutor } from "./bench-flows.js";
import { countQueries } from "./counting-database.js";
import type { ChildMessage, ParentMessage } from "./runtime-child-protocol.js";

const url = process.env.BENCH_DATABASE_URL;
const send = (message: ChildMessage) => process.send?.(message);

if (url === undefined || !process.send) {
  process.stderr.write("runtime-child: the benchmarks fork it (`node dist/bench/index.js`)\n");
  process.exitCode = 2;
} else {
  const counter = countQueries(new URL(url).searchParams.get("application_name") ?? "");
  const store = openPostgres({ connectionString: url });
  let executed = 0;
  let runtime: Runtime | undefined;
  process.on("message", (message: ParentMessage) => {
    if (message.type === "start") {
      runtime ??= startRuntime({
        store,
        concurrency: Number(process.env.BENCH_CONCURRENCY ?? 8),
        executors: { run: noopExecutor(() => (executed += 1)) },
        log: benchLogger,
      });
      send({ type: "started", at: Date.now() });
    } else if (message.type === "sample") {
      const memory = process.memoryUsage();
      const cpu = process.cpuUsage();
      send({
        type: "sample",
        rss: memory.rss,
        heapUsed: memory.heapUsed,
        cpuMicros: cpu.user + cpu.system,
        counts: counter.snapshot(),
        executed,
      });
    } else {
      void (runtime?.stop({ graceMs: 5000 }) ?? Promise.resolve())
        .then(() => store.close())
        .then(() => {
          send({ type: "stopped" });
          process.disconnect();
        });
    }
  });
  const show = async (name: string) =>
    Object.values((await store.query(`SHOW ${name}`)).rows[0] ?? {})[0] as string;
  void Promise.all([show("synchronous_commit"), show("fsync")]).then(([synchronousCommit, fsync]) =>
    send({ type: "ready", durability: { synchronousCommit, fsync } }),
  );
}
