/**
 * A runtime in a child process, for the multi-process and crash tests:
 *   BATON_CHILD_DATABASE_URL=postgres://… node dist/test/runtime/runtime-child.js
 * Options by environment: BATON_CHILD_CONCURRENCY (Default: 4), BATON_CHILD_LEASE_MS
 * (Default: 30000). Prints "ready" once it listens; stops cleanly on SIGTERM.
 */
import { startRuntime } from "../../app/runtime/runtime.js";
import { stderrLogger } from "../../app/runtime/log.js";
import { openPostgres } from "../../app/store/postgres.js";

const url = process.env.BATON_CHILD_DATABASE_URL;
if (url === undefined) {
  // Not started by a test (e.g. picked up by a test runner's glob): nothing to do.
  process.stderr.write("runtime-child: BATON_CHILD_DATABASE_URL is not set\n");
} else {
  const store = openPostgres({ connectionString: url, max: 12 });
  const runtime = startRuntime({
    store,
    concurrency: Number(process.env.BATON_CHILD_CONCURRENCY ?? 4),
    leaseMs: Number(process.env.BATON_CHILD_LEASE_MS ?? 30_000),
    maxIdleMs: 5000,
    log: process.env.BATON_TEST_LOG === "1" ? stderrLogger : { ...stderrLogger, info() {} },
  });
  process.once("SIGTERM", () => {
    void runtime
      .stop({ graceMs: 5000 })
      .then(() => store.close())
      .then(() => process.exit(0));
  });
  // The LISTEN connection is up once a query through it has run; a short pause is enough here.
  setTimeout(() => process.stdout.write("ready\n"), 200);
}
