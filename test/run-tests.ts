/**
 * `npm test`'s runner, around `node --test`: it checks the tools the tests need beyond
 * `npm ci` (test/helpers/requirements.ts), picks or starts the Postgres server every
 * Postgres suite uses (test/helpers/test-postgres-server.ts), runs the test files with
 * TEST_DATABASE_URL pointing at it, stops what it started, and exits with node's code.
 *
 * node:test runs each file in its own process, so a server shared by all of them has to be
 * started out here, once (Node 20 has no --test-global-setup).
 *
 *   node dist/test/run-tests.js                                  every dist/test/<dir>/*.test.js
 *   node dist/test/run-tests.js dist/test/store/store.test.js    just these
 *   node dist/test/run-tests.js --test-name-pattern=leases ...   options go to node --test
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { constants } from "node:os";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { missingLine, missingRequirements } from "./helpers/requirements.js";
import {
  chooseTestPostgres,
  TestDatabaseUnreachableError,
  type TestPostgres,
} from "./helpers/test-postgres-server.js";

const log = (line: string) => console.log(line);
const started = performance.now();

const args = process.argv.slice(2);
const nodeOptions = args.filter((arg) => arg.startsWith("-"));
const given = args.filter((arg) => !arg.startsWith("-"));
const files = given.length > 0 ? given : allTestFiles(dirname(fileURLToPath(import.meta.url)));

const missing = missingRequirements();
for (const requirement of missing) log(`test run: ${missingLine(requirement)}`);

let server: TestPostgres;
try {
  server = await chooseTestPostgres({ env: process.env, log });
} catch (error: unknown) {
  // No test can use a server that is not there: one clear answer rather than a failure each.
  const message = error instanceof Error ? error.message : String(error);
  const what = error instanceof TestDatabaseUnreachableError ? "" : "no test database: ";
  console.error(`test run: ${what}${message}`);
  process.exit(1);
}

const child = spawn(
  process.execPath,
  ["--test", "--test-reporter=spec", ...nodeOptions, ...files],
  {
    stdio: ["inherit", "pipe", "inherit"],
    // Piped, the spec reporter would drop its colours; a person at a terminal keeps them.
    env: {
      ...process.env,
      TEST_DATABASE_URL: server.url,
      ...(process.stdout.isTTY ? { FORCE_COLOR: "1" } : {}),
    },
  },
);
// node's summary ("ℹ pass N", "ℹ fail N") is read as it passes, so that the run can end on
// it again after the server's stop line: tools that judge a run by its closing lines see it.
const counts = { pass: 0, fail: 0 };
let partial = "";
child.stdout.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  const lines = (partial + chunk.toString("utf8")).split("\n");
  partial = lines.pop() ?? "";
  for (const line of lines) {
    // eslint-disable-next-line no-control-regex
    const summary = /^ℹ (pass|fail) (\d+)$/.exec(line.replace(/\u001b\[[0-9;]*m/g, "").trim());
    if (summary) counts[summary[1] as "pass" | "fail"] = Number(summary[2]);
  }
});
// A Ctrl-C reaches the tests from the terminal anyway; a signal sent to the runner alone is
// passed on. Either way the runner waits for them to end, then stops the server.
let interrupted: NodeJS.Signals | undefined;
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.on(signal, () => {
    interrupted = signal;
    child.kill(signal);
  });
}
const ended = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
  child.once("close", (code, signal) => resolve({ code, signal })),
);

const signal = interrupted ?? ended.signal;
let exitCode =
  signal !== null && signal !== undefined ? 128 + constants.signals[signal] : (ended.code ?? 1);
try {
  await server.stop();
} catch (error: unknown) {
  console.error(`test run: stopping the test database failed: ${String(error)}`);
  if (exitCode === 0) exitCode = 1;
}
for (const requirement of missing) log(`test run: ${missingLine(requirement)}`);
const elapsed = Math.round((performance.now() - started) / 1000);
log(
  `test run: ${files.length} test file${files.length === 1 ? "" : "s"} in ${Math.floor(elapsed / 60)} min ${elapsed % 60} s, ` +
    `exit code ${exitCode}`,
);
log(`tests: ${counts.pass} passed, ${counts.fail} failed`);
process.exit(exitCode);

/** dist/test/<dir>/<name>.test.js, as the shell's dist/test/*\/*.test.js would list them. */
function allTestFiles(root: string): string[] {
  const found: string[] = [];
  for (const dir of readdirSync(root).sort()) {
    const path = join(root, dir);
    if (!statSync(path).isDirectory()) continue;
    for (const name of readdirSync(path).sort()) {
      if (name.endsWith(".test.js")) found.push(relative(process.cwd(), join(path, name)));
    }
  }
  return found;
}
