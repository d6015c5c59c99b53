/**
 * Which process holds the runs, and how this command reaches them.
 *
 * 1. `BATON_URL` set (or `--url`): a Baton server elsewhere, over HTTP, usually the GitHub
 *    app. The token is `BATON_TOKEN`, else `GITHUB_TOKEN`, else what `gh auth token`
 *    prints (GitHub CLI); against the app it is a GitHub user token, and the app asks
 *    GitHub who it is and what that user may do.
 * 2. Embedded database (no `DATABASE_URL`): only one process may open it at a time. If a
 *    Baton process already holds it (`baton serve`, or `baton run --wait` in another
 *    terminal), it has written `server.json` into the data directory: talk to it over HTTP
 *    on 127.0.0.1 with the token from that file. Otherwise open it here.
 * 3. Postgres (`DATABASE_URL`): open it here; any number of processes may.
 *
 * A command that must execute runs (`run --wait`, `serve`) asks to `host`: it starts the
 * runtime in this process and, on the embedded database, serves the API for other
 * terminals while it runs.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { userInfo } from "node:os";
import { join, resolve } from "node:path";
import type { BatonApi } from "../http/api.js";
import { createApiServer } from "../http/api-server.js";
import { type Logger, type Runtime, startRuntime } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import { StoreLockedError } from "../store/database.js";
import { openDatabase } from "../store/open-database.js";
import { AuthenticationError } from "../http/errors.js";
import { DirectClient } from "./direct-client.js";
import { HttpClient } from "./http-client.js";
import type { CliIo } from "./io.js";
import { UsageError } from "./io.js";

export interface Session {
  api: BatonApi;
  /** Who acts: a GitHub login against an app, a declared name locally. */
  actor: string;
  /** Whether this process executes runs (it started the runtime). */
  hosted: boolean;
  /** Whether the runs are on a Baton named by `BATON_URL` (usually a GitHub app). */
  remote?: boolean;
  close(): Promise<void>;
}

interface ServerFile {
  url: string;
  token: string;
  pid: number;
}

export function dataDirOf(io: CliIo): string {
  return resolve(io.cwd, io.env.BATON_DATA_DIR || ".baton");
}

/**
 * The runtime's messages while a command hosts runs: warnings and errors only, since the
 * command itself shows the run's progress. `BATON_LOG=info` shows everything.
 */
function cliLogger(io: CliIo): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    void io.stderr.write(
      `baton ${level}: ${message}${fields ? ` ${JSON.stringify(fields)}` : ""}\n`,
    );
  return {
    info: io.env.BATON_LOG === "info" ? write("info") : () => {},
    warn: write("warn"),
    error: write("error"),
  };
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error: unknown) {
    // EPERM: it exists but belongs to someone else.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Open the database here, or find the process that holds it. The holder may be serving
 * (then use its API), or still opening the database before it serves (a first open takes
 * seconds), or a short-lived command that will let go in a moment: so while the database
 * is locked, look for a server file and try the open again, up to OWNER_WAIT_MS.
 */
async function openOrFindOwner(
  io: CliIo,
  dataDir: string,
): Promise<{ db: Database } | { server: ServerFile }> {
  const deadline = Date.now() + OWNER_WAIT_MS;
  let told = false;
  for (;;) {
    try {
      return { db: await openDatabase({ env: io.env, cwd: io.cwd }) };
    } catch (error: unknown) {
      if (!(error instanceof StoreLockedError) || Date.now() > deadline) throw error;
      const server = readServerFile(dataDir);
      if (server) return { server };
      if (!told && Date.now() > deadline - OWNER_WAIT_MS + 2000) {
        io.stderr.write(`Waiting for Baton process ${error.pid}, which holds ${dataDir}...\n`);
        told = true;
      }
      await new Promise((resolve) => setTimeout(resolve, 100 + Math.random() * 100));
    }
  }
}

/** How long a command waits for another process that holds the embedded database to serve it. */
const OWNER_WAIT_MS = 60_000;

function httpSession(server: ServerFile, actor: string): Session {
  return {
    api: new HttpClient(server.url, server.token, actor),
    actor,
    hosted: false,
    close: async () => {},
  };
}

function readServerFile(dataDir: string): ServerFile | undefined {
  try {
    const parsed = JSON.parse(readFileSync(join(dataDir, "server.json"), "utf8")) as ServerFile;
    return pidAlive(parsed.pid) ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export async function connect(
  io: CliIo,
  options: { actor?: string; host?: boolean } = {},
): Promise<Session> {
  const actor = options.actor ?? io.env.BATON_USER ?? userInfo().username;
  const remoteUrl = io.env.BATON_URL;
  if (remoteUrl) {
    if (options.actor !== undefined) throw new UsageError("--as is accepted in local mode only");
    const token = io.env.BATON_TOKEN || io.env.GITHUB_TOKEN || (await ghAuthToken(io));
    return {
      api: new HttpClient(remoteUrl, token, actor),
      actor,
      hosted: false,
      remote: true,
      close: async () => {},
    };
  }

  const dataDir = dataDirOf(io);
  const databaseUrl = io.env.DATABASE_URL;
  if (!databaseUrl) {
    const server = readServerFile(dataDir);
    if (server) return httpSession(server, actor);
  }

  const opened = await openOrFindOwner(io, dataDir);
  if ("server" in opened) return httpSession(opened.server, actor);
  const { db } = opened;

  const direct = new DirectClient(db, actor);
  if (!options.host) {
    return { api: direct, actor, hosted: false, close: () => db.close() };
  }

  let server: Server | undefined;
  const serverFile = join(dataDir, "server.json");
  if (!databaseUrl) {
    const token = randomBytes(24).toString("base64url");
    server = createApiServer({
      token,
      defaultActor: actor,
      clientFor: (who) => new DirectClient(db, who),
    });
    await new Promise<void>((done) => server!.listen(0, "127.0.0.1", done));
    const { port } = server.address() as AddressInfo;
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(
      serverFile,
      JSON.stringify({ url: `http://127.0.0.1:${port}`, token, pid: process.pid }),
      {
        mode: 0o600,
      },
    );
  }
  const runtime: Runtime = startRuntime({ store: db, log: cliLogger(io) });
  return {
    api: direct,
    actor,
    hosted: true,
    close: async () => {
      const listening = server;
      if (listening) {
        rmSync(serverFile, { force: true });
        listening.closeAllConnections();
        await new Promise((done) => listening.close(done));
      }
      await runtime.stop();
      await db.close();
    },
  };
}

/** How long `gh auth token` may take before it is given up on. */
const GH_TIMEOUT_MS = 15_000;

/**
 * The GitHub CLI's token for the logged-in account (`gh auth token`; `GH_HOST` picks a
 * GitHub Enterprise Server host). Never printed.
 */
function ghAuthToken(io: CliIo): Promise<string> {
  const howTo =
    "Set GITHUB_TOKEN (or BATON_TOKEN) to a GitHub token, or install the GitHub CLI and run `gh auth login`.";
  return new Promise((resolveToken, reject) => {
    execFile(
      "gh",
      ["auth", "token"],
      { env: io.env, cwd: io.cwd, timeout: GH_TIMEOUT_MS },
      (error, stdout, stderr) => {
        const token = stdout.trim();
        if (!error && token !== "") return resolveToken(token);
        const why =
          (error as NodeJS.ErrnoException | null)?.code === "ENOENT"
            ? "no GitHub token: BATON_TOKEN and GITHUB_TOKEN are unset and the GitHub CLI (gh) is not installed"
            : `no GitHub token: BATON_TOKEN and GITHUB_TOKEN are unset and \`gh auth token\` failed (${stderr.trim() || error?.message || "no token printed"})`;
        reject(new AuthenticationError(`${why}. ${howTo}`));
      },
    );
  });
}
