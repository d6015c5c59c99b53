/**
 * What `npm test` sets up before the first test (test/run-tests.ts): the Postgres server it
 * picks or starts, the tools it names when they are missing, and Node versions that
 * `engines` allows and every dependency accepts.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, test } from "node:test";
import pg from "pg";
import semver from "semver";
import { adminUrl } from "../helpers/db.js";
import { missingLine, missingRequirements, OPENSSH_SERVER } from "../helpers/requirements.js";
import {
  chooseTestPostgres,
  TestDatabaseUnreachableError,
} from "../helpers/test-postgres-server.js";
import { freePort as closedPort } from "../helpers/free-port.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

describe("the test run's Postgres server", () => {
  test("TEST_DATABASE_URL, when it answers, is used as it is and nothing is started", async () => {
    const lines: string[] = [];
    const chosen = await chooseTestPostgres({
      env: { TEST_DATABASE_URL: adminUrl() },
      log: (line) => lines.push(line),
    });
    assert.equal(chosen.origin, "TEST_DATABASE_URL");
    assert.equal(chosen.url, adminUrl());
    assert.match(lines.join("\n"), /Postgres \d+.* at TEST_DATABASE_URL=/);
    await chosen.stop();
  });

  test("TEST_DATABASE_URL that does not answer stops the run, saying what to do", async () => {
    const url = `postgres://postgres:secret@127.0.0.1:${await closedPort()}/postgres`;
    const refused = await chooseTestPostgres({ env: { TEST_DATABASE_URL: url }, log: () => {} })
      .then(() => undefined)
      .catch((error: unknown) => error);
    assert.ok(refused instanceof TestDatabaseUnreachableError, String(refused));
    assert.match(refused.message, /^TEST_DATABASE_URL=postgres:\/\/postgres:\*\*\*@127/);
    assert.match(refused.message, /ECONNREFUSED/);
    assert.match(refused.message, /unset it to let the tests start their own Postgres/);
    assert.doesNotMatch(refused.message, /secret/, "the password stays out of the output");
  });

  test("with no TEST_DATABASE_URL, a server at the default address is used", async () => {
    const chosen = await chooseTestPostgres({ env: {}, defaultUrl: adminUrl(), log: () => {} });
    assert.equal(chosen.origin, "default address");
    assert.equal(chosen.url, adminUrl());
  });

  test(
    "with no TEST_DATABASE_URL and nothing at the default address, an embedded Postgres 18 " +
      "starts on a free port, not as root, in a temporary directory removed when it stops",
    async () => {
      const lines: string[] = [];
      const chosen = await chooseTestPostgres({
        env: {},
        defaultUrl: `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`,
        log: (line) => lines.push(line),
      });
      let stopped = false;
      try {
        assert.equal(chosen.origin, "embedded");
        assert.match(
          lines[0] ?? "",
          /nothing answers at .* \(.*ECONNREFUSED.*\): starting an embedded/,
        );
        assert.match(
          lines[1] ?? "",
          /embedded Postgres 18\.\d+ ready at postgres:\/\/postgres@127\.0\.0\.1:\d+\//,
        );
        const dir = /data in (\S+),/.exec(lines[1] ?? "")?.[1] ?? "";
        assert.ok(dir.startsWith(tmpdir()) && existsSync(join(dir, "data", "PG_VERSION")), dir);

        const client = new pg.Client({ connectionString: chosen.url });
        await client.connect();
        try {
          const facts = await client.query<{ pid: number; encoding: string; collate: string }>(
            "SELECT pg_backend_pid() pid, current_setting('server_encoding') encoding, " +
              "(SELECT datlocprovider::text || ':' || datlocale FROM pg_database WHERE datname = 'template1') collate",
          );
          const fact = facts.rows[0];
          assert.equal(fact?.encoding, "UTF8");
          assert.equal(fact?.collate, "b:C.UTF-8", "the built-in C.UTF-8 locale, as the machine's");
          // Postgres refuses to run as root; as root, the runner hands the cluster to nobody.
          const uid = /^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${fact?.pid}/status`, "utf8"))?.[1];
          assert.notEqual(uid, "0");
          await client.query("CREATE DATABASE made_by_the_test TEMPLATE template0");
        } finally {
          await client.end();
        }

        await chosen.stop();
        stopped = true;
        assert.match(lines[2] ?? "", /embedded Postgres stopped in \d+\.\d s, .* removed/);
        assert.equal(existsSync(dir), false, "its directory is gone");
        const after = new pg.Client({ connectionString: chosen.url });
        after.on("error", () => undefined);
        await assert.rejects(after.connect(), { code: "ECONNREFUSED" });
      } finally {
        if (!stopped) await chosen.stop();
      }
    },
  );
});

describe("the test runner (node dist/test/run-tests.js)", () => {
  test("hands the chosen server to the test files and passes on their exit code", async () => {
    const dir = await mkdtemp(join(tmpdir(), "baton-run-tests-"));
    try {
      const passing = join(dir, "passing.test.mjs");
      const failing = join(dir, "failing.test.mjs");
      await writeFile(
        passing,
        `import { test } from "node:test"; import assert from "node:assert/strict";\n` +
          `test("sees the server", () => assert.equal(process.env.TEST_DATABASE_URL, ${JSON.stringify(adminUrl())}));\n`,
      );
      await writeFile(
        failing,
        `import { test } from "node:test";\ntest("fails", () => { throw new Error("no"); });\n`,
      );
      const passed = await runTests([passing], { TEST_DATABASE_URL: adminUrl() });
      assert.equal(passed.code, 0, passed.output);
      assert.match(passed.output, /✔ sees the server/);
      // The run ends on node's counts, in the plain form tools read closing lines for.
      assert.match(
        passed.output,
        /test run: 1 test file in 0 min \d+ s, exit code 0\ntests: 1 passed, 0 failed\n$/,
      );
      const failed = await runTests([passing, failing], { TEST_DATABASE_URL: adminUrl() });
      assert.equal(failed.code, 1, failed.output);
      assert.match(failed.output, /✖ fails/);
      assert.match(failed.output, /\ntests: 1 passed, 1 failed\n$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("with TEST_DATABASE_URL not answering, says so in one line and runs nothing", async () => {
    const url = `postgres://postgres@127.0.0.1:${await closedPort()}/postgres`;
    const run = await runTests(["/nonexistent.test.mjs"], { TEST_DATABASE_URL: url });
    assert.equal(run.code, 1);
    const lines = run.output
      .trimEnd()
      .split("\n")
      .filter((line) => !line.startsWith("test run: missing"));
    assert.deepEqual(lines.length, 1, run.output);
    assert.match(
      lines[0] ?? "",
      /^test run: TEST_DATABASE_URL=.* does not answer \(.*ECONNREFUSED/,
    );
  });
});

describe("what the tests need beyond npm ci", () => {
  test("a missing tool is named in one line with the command that installs it", () => {
    const absent = { ...OPENSSH_SERVER, path: join(tmpdir(), "no-such-dir", "sshd") };
    assert.deepEqual(missingRequirements([absent, OPENSSH_SERVER]).slice(0, 1), [absent]);
    const line = missingLine(absent);
    assert.doesNotMatch(line, /\n/);
    assert.ok(line.includes(absent.path) && line.endsWith(OPENSSH_SERVER.install), line);
  });

  test(".ci/run and the README name the same install commands as the runner", () => {
    const ci = readFileSync(join(root, ".ci", "run"), "utf8");
    const readme = readFileSync(join(root, "README.md"), "utf8");
    for (const requirement of [OPENSSH_SERVER]) {
      assert.ok(ci.includes(requirement.install), `.ci/run runs ${requirement.install}`);
      assert.ok(readme.includes(requirement.install), `the README names ${requirement.install}`);
    }
  });

  test("every locked package accepts each Node version that package.json's engines allows", () => {
    const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
      engines: { node: string };
    };
    const lock = JSON.parse(readFileSync(join(root, "package-lock.json"), "utf8")) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
    };
    const refusing = Object.entries(lock.packages).flatMap(([path, entry]) => {
      const wanted = Array.isArray(entry.engines) ? undefined : entry.engines?.node;
      return wanted === undefined || semver.subset(manifest.engines.node, wanted)
        ? []
        : [`${path}@${entry.version ?? "?"} wants node ${wanted}`];
    });
    // npm ci warns (EBADENGINE) for each of these on a Node version engines allows.
    assert.deepEqual(refusing, [], `engines says ${manifest.engines.node}`);
    assert.ok(semver.satisfies(process.version, manifest.engines.node), process.version);
  });
});

async function runTests(
  files: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [join(root, "dist", "test", "run-tests.js"), ...files], {
    // Without node:test's marker for its own children, which would make this one run nothing.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout.setEncoding("utf8").on("data", (text: string) => (output += text));
  child.stderr.setEncoding("utf8").on("data", (text: string) => (output += text));
  const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
  return { code, output };
}
