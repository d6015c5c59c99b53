/**
 * `baton runner`: a process that claims steps from a Baton (the app or `baton serve`) by
 * label and runs up to `concurrency` of them at once (app/runners/runner-route.ts is the
 * other side of the protocol).
 *
 * - Claims are long polls: an idle runner gets a step the moment it is queued.
 * - One heartbeat request (a long poll too) renews the leases of every running step; its
 *   answer names steps whose lease is lost or whose attempt was cancelled, and those are
 *   stopped at once (SIGTERM to the step's process group, SIGKILL after the grace period).
 * - Output goes up in chunks of at most 8 KiB, every 250 ms; the result after the output.
 * - If the runner dies, its leases run out and the server fails the attempts as
 *   retryable; a result it sends after that is refused (and kept by the server).
 * - A step's environment is the minimal inherited set, the configuration's `env` and
 *   `secrets`, and the flow's: never the runner's own environment (its token, the
 *   credentials of whoever started it). The configuration's secrets are masked (`***`)
 *   in the step's output, outputs and error before anything leaves the runner.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Json } from "../engine/types.js";
import type { ClaimedJob } from "../runners/runner-route.js";
import { agentExecutor } from "./agent.js";
import type { Executor, LogStream, StepExecution, StepOutcome } from "./executor.js";
import type { LocalShellOptions } from "./local-shell.js";
import { killOrphanedGroups, localShell } from "./local-shell.js";
import type { RunnerConfig, SshHost } from "./runner-config.js";
import type { MaskStream } from "./secret-masker.js";
import { SecretMasker } from "./secret-masker.js";
import { checkoutCommit } from "./workspace-git.js";

/** A runner's identity, kept in its state directory (mode 0600): the token is a secret. */
export interface RunnerIdentity {
  url: string;
  runnerId: string;
  name: string;
  token: string;
  labels: string[];
}

export interface RunnerOptions {
  url: string;
  /** The runner token (`baton_rt_…`). */
  token: string;
  config: RunnerConfig;
  /** Where the runner keeps its process-group records (and identity). */
  stateDir: string;
  /** One line per event, for people. (Default: stderr) */
  log?: (line: string) => void;
  /**
   * Runs `runs-on: { ssh: … }` steps on a configured host (app/runner/ssh/). Without it
   * such steps fail with advice. (Default: none)
   */
  sshExecutor?: (host: SshHost, name: string) => Executor;
  /** The longest a claim waits on the server before asking again. (Default: 20 000 ms) */
  claimWaitMs?: number;
}

export interface RunningRunner {
  /** Stop claiming; let running steps finish for up to `graceMs`, then stop them. (Default: 10 000 ms) */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** Settles when the runner has stopped (a revoked token stops it too), with why. */
  readonly stopped: Promise<{ reason: string; fatal: boolean }>;
  /** Steps running now (for tests and the status line). */
  readonly running: number;
}

/** The server refused the runner itself (a revoked or unknown token): stop, do not retry. */
export class RunnerRefusedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RunnerRefusedError";
  }
}

const LOG_CHUNK_BYTES = 8 * 1024;
const LOG_FLUSH_MS = 250;

export function identityFile(stateDir: string): string {
  return join(stateDir, "runner.json");
}

export function readIdentity(stateDir: string): RunnerIdentity | undefined {
  try {
    return JSON.parse(readFileSync(identityFile(stateDir), "utf8")) as RunnerIdentity;
  } catch {
    return undefined;
  }
}

export function writeIdentity(stateDir: string, identity: RunnerIdentity): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  writeFileSync(identityFile(stateDir), `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 });
}

/** Exchange a registration token for a runner token (once; keep the answer). */
export async function registerWithServer(
  url: string,
  request: { registrationToken: string; name: string; labels: string[] },
): Promise<RunnerIdentity> {
  const response = await fetch(new URL("/api/runner/register", url), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(request),
  });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (response.status !== 201)
    throw new RunnerRefusedError(`registration refused: ${errorText(body, response.status)}`);
  return {
    url,
    runnerId: String(body.runnerId),
    name: request.name,
    token: String(body.token),
    labels: (body.labels as string[] | undefined) ?? request.labels,
  };
}

export function startRunner(options: RunnerOptions): RunningRunner {
  const { config } = options;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const concurrency = Math.max(1, config.concurrency);
  const masker = new SecretMasker(Object.values(config.secrets));
  const claimWaitMs = options.claimWaitMs ?? 20_000;
  const groupsDir = join(options.stateDir, "groups");
  mkdirSync(groupsDir, { recursive: true, mode: 0o700 });
  // Steps a previous life of this runner left running (it was killed) are stopped now.
  const orphans = killOrphanedGroups(groupsDir);
  if (orphans > 0)
    log(`stopped ${orphans} step process group(s) left by an earlier run of this runner`);

  const running = new Map<string, { job: ClaimedJob; controller: AbortController }>();
  let stopping = false;
  let leaseMs = 30_000;
  const stopClaims = new AbortController();
  let finish: (value: { reason: string; fatal: boolean }) => void = () => {};
  const stopped = new Promise<{ reason: string; fatal: boolean }>((resolve) => (finish = resolve));
  let wakeSlot: (() => void) | undefined;
  let wakeHeartbeat: (() => void) | undefined;

  const call = async (
    path: string,
    body: unknown,
    signal?: AbortSignal,
  ): Promise<{ status: number; body: Record<string, unknown> }> => {
    const response = await fetch(new URL(path, options.url), {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${options.token}` },
      body: JSON.stringify(body),
      ...(signal ? { signal } : {}),
    });
    const parsed = (await response.json().catch(() => ({}))) as Record<string, unknown>;
    if (response.status === 401) throw new RunnerRefusedError(errorText(parsed, 401));
    if (response.status >= 500)
      throw new Error(
        `the server failed (${response.status}): ${errorText(parsed, response.status)}`,
      );
    return { status: response.status, body: parsed };
  };

  let fatal: string | undefined;
  const refuse = (error: unknown) => {
    if (!(error instanceof RunnerRefusedError) || fatal) return false;
    fatal = error.message;
    log(`the server refused this runner: ${error.message}`);
    void stop({ graceMs: 0 });
    return true;
  };

  const shellOptions = (job: ClaimedJob): LocalShellOptions => ({
    stateDir: groupsDir,
    killGraceMs: config.killGraceMs,
    // Declared variables only: the shell adds the minimal inherited set (step-env.ts).
    baseEnv: config.env,
    ...(job.checkout
      ? {
          prepare: async (workspace: string, execution: StepExecution) => {
            const checkout = job.checkout;
            if (!checkout) return;
            if ("error" in checkout) throw new Error(checkout.error);
            execution.log("system", `Checking out ${job.repository} at ${checkout.sha}\n`);
            await checkoutCommit(workspace, checkout, config.env);
          },
        }
      : {}),
  });

  const executorFor = (job: ClaimedJob): Executor => {
    const spec = asObject(job.spec);
    const runsOn = spec["runs-on"];
    const ssh =
      runsOn !== null && typeof runsOn === "object" && !Array.isArray(runsOn)
        ? runsOn.ssh
        : undefined;
    if (typeof ssh === "string") {
      const host = config.ssh[ssh];
      if (!host || !options.sshExecutor) {
        const why = !host
          ? `this runner has no SSH host "${ssh}" in its configuration (ssh: ${Object.keys(config.ssh).join(", ") || "none"})`
          : "this runner was built without the SSH executor";
        return () =>
          Promise.resolve({ outcome: "failure", outputs: {}, retryable: false, error: why });
      }
      return options.sshExecutor(host, ssh);
    }
    if (job.kind === "agent") return agentExecutor(config, shellOptions(job));
    return localShell(shellOptions(job));
  };

  const runJob = async (job: ClaimedJob, controller: AbortController): Promise<void> => {
    const lease = { key: job.key, leaseId: job.leaseId };
    let pending: { stream: LogStream; text: string; at: number }[] = [];
    let pendingBytes = 0;
    let timer: NodeJS.Timeout | undefined;
    let sending: Promise<void> = Promise.resolve();
    const flush = (): Promise<void> => {
      clearTimeout(timer);
      timer = undefined;
      const chunks = pending;
      pending = [];
      pendingBytes = 0;
      sending = sending.then(async () => {
        if (chunks.length === 0) return;
        try {
          await call("/api/runner/logs", { ...lease, chunks });
        } catch (error: unknown) {
          if (!refuse(error))
            log(`could not send output of ${job.key}: ${(error as Error).message}`);
        }
      });
      return sending;
    };
    const write = (stream: LogStream, text: string) => {
      for (let start = 0; start < text.length; start += LOG_CHUNK_BYTES) {
        const piece = text.slice(start, start + LOG_CHUNK_BYTES);
        const last = pending.at(-1);
        if (last && last.stream === stream && last.text.length + piece.length <= LOG_CHUNK_BYTES)
          last.text += piece;
        else pending.push({ stream, text: piece, at: Date.now() });
        pendingBytes += piece.length;
      }
      if (pendingBytes >= LOG_CHUNK_BYTES) void flush();
      else timer ??= setTimeout(() => void flush(), LOG_FLUSH_MS);
    };
    write(
      "system",
      `Runner ${config.name}: ${job.job === "compensate" ? "compensating" : "running"} ${job.step} (attempt ${job.attempt})\n`,
    );
    // What the step prints goes through the masker, one stream each (a secret cut across
    // two pieces of one stream is still masked).
    const masked = new Map<LogStream, MaskStream>();
    const stepLog = (stream: LogStream, text: string) => {
      let piped = masked.get(stream);
      if (!piped) {
        piped = masker.stream((clean) => write(stream, clean));
        masked.set(stream, piped);
      }
      piped.write(text);
    };
    let outcome: StepOutcome;
    try {
      outcome = await executorFor(job)({
        runId: job.runId,
        step: job.step,
        attempt: job.attempt,
        key: job.key,
        kind: job.kind,
        spec: job.spec,
        env: job.env,
        ...(job.deadline !== undefined ? { deadline: job.deadline } : {}),
        signal: controller.signal,
        log: stepLog,
      });
    } catch (error: unknown) {
      outcome = {
        outcome: "failure",
        outputs: {},
        error: `the runner failed: ${(error as Error).message}`,
      };
    }
    for (const piped of masked.values()) piped.end();
    outcome = {
      ...outcome,
      outputs: masker.maskAll(outcome.outputs),
      ...(outcome.error !== undefined ? { error: masker.mask(outcome.error) } : {}),
    };
    const reason: unknown = controller.signal.reason;
    if (reason instanceof LeaseLost) {
      log(`${job.key}: the lease was lost; not reporting`);
      return;
    }
    if (reason instanceof RunnerStopping)
      outcome = { ...outcome, retryable: true, error: reason.message };
    await flush();
    // Report until the server answers (a network blip must not lose the outcome); the lease
    // bounds how long that is worth trying.
    const giveUpAt = Date.now() + leaseMs;
    for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
      try {
        const answer = await call("/api/runner/result", { ...lease, ...outcome });
        if (answer.status === 409)
          log(
            `${job.key}: result refused (late): ${typeof answer.body.reason === "string" ? answer.body.reason : ""}`,
          );
        else log(`${job.key}: ${outcome.outcome}`);
        return;
      } catch (error: unknown) {
        if (refuse(error) || Date.now() > giveUpAt) {
          log(`${job.key}: could not report the result: ${(error as Error).message}`);
          return;
        }
        await sleep(delay);
      }
    }
  };

  const start = (job: ClaimedJob): void => {
    const controller = new AbortController();
    running.set(job.key, { job, controller });
    log(`${job.key}: claimed (${job.kind})`);
    wakeHeartbeat?.();
    void runJob(job, controller).finally(() => {
      running.delete(job.key);
      wakeSlot?.();
    });
  };

  const claimLoop = async (): Promise<void> => {
    let delay = 500;
    while (!stopping) {
      const free = concurrency - running.size;
      if (free <= 0) {
        await new Promise<void>((resolve) => (wakeSlot = resolve));
        wakeSlot = undefined;
        continue;
      }
      try {
        const answer = await call(
          "/api/runner/claim",
          { slots: free, waitMs: claimWaitMs },
          stopClaims.signal,
        );
        if (typeof answer.body.leaseMs === "number") leaseMs = answer.body.leaseMs;
        for (const job of (answer.body.jobs as ClaimedJob[] | undefined) ?? []) start(job);
        delay = 500;
      } catch (error: unknown) {
        if (stopping || refuse(error)) break;
        log(`could not claim steps (trying again in ${delay} ms): ${(error as Error).message}`);
        await sleep(delay);
        delay = Math.min(delay * 2, 10_000);
      }
    }
  };

  const heartbeatLoop = async (): Promise<void> => {
    while (!fatal && (!stopping || running.size > 0)) {
      if (running.size === 0) {
        await new Promise<void>((resolve) => {
          wakeHeartbeat = resolve;
          setTimeout(resolve, 1000);
        });
        wakeHeartbeat = undefined;
        continue;
      }
      const leases = [...running.values()].map(({ job }) => ({
        key: job.key,
        leaseId: job.leaseId,
      }));
      try {
        const answer = await call("/api/runner/heartbeat", {
          leases,
          waitMs: Math.floor(leaseMs / 3),
        });
        for (const state of (answer.body.leases as
          { key: string; held: boolean; current: boolean }[] | undefined) ?? []) {
          const entry = running.get(state.key);
          if (!entry || entry.controller.signal.aborted) continue;
          if (!state.held) {
            log(`${state.key}: the lease was lost; stopping the step`);
            entry.controller.abort(new LeaseLost());
          } else if (!state.current) {
            log(`${state.key}: cancelled; stopping the step`);
            entry.controller.abort(new Error("cancelled"));
          }
        }
      } catch (error: unknown) {
        if (refuse(error)) break;
        log(`could not send a heartbeat: ${(error as Error).message}`);
        await sleep(1000);
      }
    }
  };

  let stopping$: Promise<void> | undefined;
  const stop = (stopOptions: { graceMs?: number } = {}): Promise<void> => {
    stopping$ ??= (async () => {
      stopping = true;
      stopClaims.abort();
      wakeSlot?.();
      const graceMs = stopOptions.graceMs ?? 10_000;
      const deadline = Date.now() + graceMs;
      while (running.size > 0 && Date.now() < deadline) await sleep(50);
      for (const { controller } of running.values()) controller.abort(new RunnerStopping());
      while (running.size > 0) await sleep(20);
      await heartbeats;
      await claims;
      finish({ reason: fatal ?? "stopped", fatal: fatal !== undefined });
    })();
    return stopping$;
  };

  const claims = claimLoop().catch((error: unknown) =>
    log(`the claim loop failed: ${String(error)}`),
  );
  const heartbeats = heartbeatLoop().catch((error: unknown) =>
    log(`the heartbeat loop failed: ${String(error)}`),
  );
  log(
    `runner ${config.name} is waiting for steps at ${options.url} (labels: ${["self-hosted", ...config.labels].join(", ")}; ${concurrency} at a time)`,
  );

  return {
    stop,
    stopped,
    get running() {
      return running.size;
    },
  };
}

class LeaseLost extends Error {
  constructor() {
    super("the lease on this step was lost");
  }
}

class RunnerStopping extends Error {
  constructor() {
    super("the runner stopped before the step ended; it may run again on another runner");
  }
}

function errorText(body: Record<string, unknown>, status: number): string {
  const error = body.error as { message?: unknown } | undefined;
  return typeof error?.message === "string" ? error.message : `HTTP ${status}`;
}

function asObject(value: Json): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The default state directory: $XDG_STATE_HOME/baton/runner, else ~/.local/state/baton/runner. */
export function defaultStateDir(env: NodeJS.ProcessEnv): string {
  const base = env.XDG_STATE_HOME || (env.HOME ? join(env.HOME, ".local", "state") : tmpdir());
  return join(base, "baton", "runner");
}
