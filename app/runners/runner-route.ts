/**
 * The runner protocol, an HTTP route of the app (or of `baton serve`): JSON over HTTP,
 * the runner's token as `Authorization: Bearer baton_rt_…`.
 *
 *   POST /api/runner/register   {registrationToken, name, labels}      → 201 {runnerId, token, …}
 *   POST /api/runner/claim      {slots, waitMs}                        → {jobs, leaseMs}  (long poll)
 *   POST /api/runner/heartbeat  {leases: [{key, leaseId}], waitMs}     → {leases: [{key, held, current}]}
 *                               (answers early when one of them is cancelled)
 *   POST /api/runner/logs       {key, leaseId, chunks: [{stream, text, at}]} → {accepted}
 *   POST /api/runner/result     {key, leaseId, outcome, outputs, error?, retryable?}
 *                               → 200 {accepted: true} | 409 {accepted: false, reason} (late)
 *
 * And for admins (see `RunnerAdminAuth`):
 *
 *   POST   /api/runners/registration-tokens {repository | organization, expiresInMs?} → 201 {token, expiresAt, scope}
 *   GET    /api/runners[?repository=|organization=]                      → {runners}
 *   DELETE /api/runners/{id}                                              → {revoked}
 */
import type { IncomingMessage } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { HttpRoute } from "../github/github-app.js";
import { errorStatus } from "../http/error-status.js";
import { readJsonObject, sendJson } from "../http/json-io.js";
import type { Json } from "../engine/types.js";
import type { StepOutcome } from "../runner/executor.js";
import {
  dropTasks,
  LOG_CHUNK_BYTES,
  type Logger,
  rescheduleTasks,
  RunDoor,
} from "../runtime/index.js";
import type { Database } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import type { Run } from "../store/model.js";
import { getRunById } from "../store/runs.js";
import { appendLogs } from "../store/step-logs.js";
import { recordOutcome, runnerLeaseTaskFor } from "./runner-queue.js";
import type { Runner, RunnerJob, RunnerScope } from "../store/runner-jobs.js";
import {
  claimRunnerJobs,
  createRegistrationToken,
  dropStaleQueuedJobs,
  getRunner,
  heldJobAttempt,
  jobsOutsideScope,
  listRunners,
  lockHeldJob,
  recordLateResult,
  recordRunnerRefusals,
  registerRunner,
  renewRunnerLeases,
  revokeRunner,
  runnerByToken,
} from "../store/runner-jobs.js";

/** Where a step with `checkout: true` clones from: the run's repository at its commit. */
export interface CheckoutSource {
  /** A URL `git fetch` takes (https://…, file://…, a path). */
  url: string;
  sha: string;
  /** A short-lived token for this step, sent as HTTP basic auth (x-access-token); never logged. */
  token?: string;
}

/** Who may create registration tokens and list or revoke runners, and for which scope. */
export type RunnerAdminAuth = (
  request: IncomingMessage,
  /** The scope asked for; undefined for every runner (listing). */
  scope: { repository?: string; organization?: string },
) => Promise<{ actor: string; scope: RunnerScope }>;

export interface RunnerRouteOptions {
  store: Database;
  admin: RunnerAdminAuth;
  log: Logger;
  /** How long a claim holds without a heartbeat. (Default: 30 000 ms) */
  leaseMs?: number;
  /** The longest a claim or heartbeat request waits. (Default: 25 000 ms) */
  maxWaitMs?: number;
  /** How long a registration token lives. (Default: 1 hour) */
  registrationTokenMs?: number;
  /**
   * Mint what a `checkout: true` step clones (with a token for that step). Without it such
   * steps fail with advice. (Default: none)
   */
  checkout?: (run: Run, job: RunnerJob) => Promise<CheckoutSource>;
  /** The door results go through; the app's, to share its flow cache. (Default: a new one) */
  door?: RunDoor;
  /** (Default: Date.now) */
  now?: () => number;
}

/** A job as the runner receives it. */
export interface ClaimedJob {
  key: string;
  leaseId: string;
  runId: string;
  step: string;
  attempt: number;
  /** `execute` an attempt or `compensate` a step. */
  job: "execute" | "compensate";
  kind: "run" | "agent";
  spec: Json;
  env: Record<string, string>;
  deadline?: number;
  repository: string;
  checkout?: CheckoutSource | { error: string };
}

/** The largest request body: a batch of log chunks. */
const MAX_BODY_BYTES = 1024 * 1024;
const MAX_CHUNKS_PER_REQUEST = 256;
const STALE_SWEEP_MS = 30_000;
/** How often a waiting claim looks whether its runner is still connected. */
const CONNECTION_CHECK_MS = 1000;

class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export function createRunnerRoute(options: RunnerRouteOptions): HttpRoute {
  const { store: db, log } = options;
  const leaseMs = options.leaseMs ?? 30_000;
  const maxWaitMs = options.maxWaitMs ?? 25_000;
  const door = options.door ?? new RunDoor();
  const now = options.now ?? Date.now;
  const waiters = new Waiters(db, log);
  let lastSweep = 0;

  const authenticate = async (request: IncomingMessage): Promise<Runner> => {
    const token = bearer(request);
    if (token === undefined)
      throw new HttpError(
        401,
        "unauthorized",
        "send the runner's token: Authorization: Bearer baton_rt_…",
      );
    const runner = await runnerByToken(db, token);
    if (!runner)
      throw new HttpError(401, "unauthorized", "unknown runner token; register the runner again");
    if (runner.revokedAt)
      throw new HttpError(
        401,
        "runner_revoked",
        `runner ${runner.name} (${runner.id}) was revoked; register it again with a new registration token`,
      );
    return runner;
  };

  /**
   * Refuse (403) a request naming a job outside the runner's scope, and record it: such a
   * job is another tenant's, and nothing of the request may reach it (no result, no late
   * result, no log, not even whether its attempt is current). Asked only on the paths
   * where the runner does not hold the lease (a held lease is always in scope: a runner
   * claims only its scope's jobs), so an honest runner's requests cost nothing more.
   */
  const refuseOutsideScope = async (
    runner: Runner,
    request: "result" | "heartbeat" | "logs",
    keys: readonly string[],
  ): Promise<void> => {
    const outside = await jobsOutsideScope(db, runner.id, keys);
    if (outside.length === 0) return;
    const reason = `job outside the runner's scope (${runner.scope.kind} ${runner.scope.name})`;
    try {
      await recordRunnerRefusals(
        db,
        outside.map((key) => ({ runnerId: runner.id, request, key, reason })),
      );
    } catch (error: unknown) {
      log.error("could not record a runner's refused request", { runnerId: runner.id, error });
    }
    log.warn("refused a runner's request for a job outside its scope", {
      runnerId: runner.id,
      request,
      keys: outside,
      scope: runner.scope,
    });
    throw new HttpError(
      403,
      "outside_scope",
      `runner ${runner.name} (${runner.scope.kind} ${runner.scope.name}) may not report on ${outside.join(", ")}: the job is not in its scope`,
    );
  };

  const claim = async (runner: Runner, slots: number): Promise<ClaimedJob[]> => {
    if (Date.now() - lastSweep > STALE_SWEEP_MS) {
      lastSweep = Date.now();
      await dropStaleQueuedJobs(db).catch((error: unknown) =>
        log.warn("could not drop stale runner jobs", { error }),
      );
    }
    const jobs = await db.transaction(async (tx) => {
      const claimed = await claimRunnerJobs(tx, runner.id, slots, leaseMs);
      const watchers = claimed.flatMap((job) =>
        job.leaseUntil ? [runnerLeaseTaskFor(job, job.leaseUntil)] : [],
      );
      // One watcher per job; a watcher of an earlier claim of the same key may still wait.
      await rescheduleTasks(tx, watchers);
      return claimed;
    });
    return Promise.all(jobs.map((job) => toClaimedJob(job)));
  };

  const toClaimedJob = async (job: RunnerJob): Promise<ClaimedJob> => {
    const payload = job.payload;
    const spec = payload.spec ?? {};
    const claimed: ClaimedJob = {
      key: job.key,
      leaseId: job.leaseId ?? "",
      runId: job.runId,
      step: job.step,
      attempt: job.attempt,
      job: job.kind,
      kind: payload.kind === "agent" ? "agent" : "run",
      spec,
      env: (payload.env ?? {}) as Record<string, string>,
      ...(typeof payload.deadline === "number" ? { deadline: payload.deadline } : {}),
      repository: job.repository,
    };
    const wantsCheckout =
      spec !== null && typeof spec === "object" && !Array.isArray(spec) && spec.checkout === true;
    if (wantsCheckout) {
      try {
        const run = await getRunById(db, job.runId);
        if (!run) throw new Error(`run ${job.runId} not found`);
        if (!options.checkout)
          throw new Error(
            "`checkout: true` needs a repository's flow run by the GitHub App (this Baton cannot mint a checkout)",
          );
        claimed.checkout = await options.checkout(run, job);
      } catch (error: unknown) {
        claimed.checkout = { error: error instanceof Error ? error.message : String(error) };
      }
    }
    return claimed;
  };

  const routes: Record<
    string,
    (request: IncomingMessage, url: URL) => Promise<{ status: number; body: unknown }>
  > = {
    "POST /api/runner/register": async (request) => {
      const body = await readJson(request);
      const registrationToken = str(body.registrationToken);
      const name = str(body.name);
      if (!registrationToken || !name)
        throw new HttpError(400, "bad_request", "registrationToken and name are required");
      const labels = labelsOf(body.labels);
      const registered = await registerRunner(db, { registrationToken, name, labels });
      if (!registered)
        throw new HttpError(
          401,
          "unauthorized",
          "the registration token is unknown, expired or revoked; ask an admin for a new one (`baton runner-token create`)",
        );
      log.info("runner registered", {
        runnerId: registered.runner.id,
        name,
        labels,
        scope: registered.runner.scope,
      });
      return {
        status: 201,
        body: {
          runnerId: registered.runner.id,
          token: registered.token,
          name,
          labels: registered.runner.labels,
          scope: registered.runner.scope,
        },
      };
    },
    "POST /api/runner/claim": async (request) => {
      const runner = await authenticate(request);
      const body = await readJson(request);
      const slots = Math.min(64, Math.max(1, Math.floor(Number(body.slots) || 1)));
      const waitMs = Math.min(maxWaitMs, Math.max(0, Number(body.waitMs) || 0));
      const until = Date.now() + waitMs;
      // A runner that went away while its claim waited must not be given jobs: nobody
      // would run them until their leases ran out. So a waiting claim also looks at its
      // connection every second (without querying).
      const gone = () => request.socket.destroyed;
      for (;;) {
        const woken = waiters.nextJob();
        const jobs = await claim(runner, slots);
        if (jobs.length > 0 || Date.now() >= until) {
          woken.cancel();
          return { status: 200, body: { jobs, leaseMs } };
        }
        while (!(await woken.wait(Math.min(until - Date.now(), CONNECTION_CHECK_MS)))) {
          if (gone() || Date.now() >= until) break;
        }
        woken.cancel();
        if (gone()) return { status: 200, body: { jobs: [], leaseMs } };
      }
    },
    "POST /api/runner/heartbeat": async (request) => {
      const runner = await authenticate(request);
      const body = await readJson(request);
      const leases = leasesOf(body.leases);
      const waitMs = Math.min(maxWaitMs, Math.max(0, Number(body.waitMs) || 0));
      const until = Date.now() + waitMs;
      for (let first = true; ; first = false) {
        // A runner gone while its heartbeat waited is not renewed again: its leases run out.
        if (!first && request.socket.destroyed)
          return { status: 200, body: { leases: [], leaseMs } };
        const woken = waiters.cancelOf(leases.map((lease) => lease.key));
        const states = await renewRunnerLeases(db, runner.id, leases, leaseMs);
        const unheld = states.filter((state) => !state.held).map((state) => state.key);
        if (first) await refuseOutsideScope(runner, "heartbeat", unheld);
        const stop = states.some((state) => !state.held || !state.current);
        if (stop || Date.now() >= until) {
          woken.cancel();
          return { status: 200, body: { leases: states, leaseMs } };
        }
        await woken.wait(until - Date.now());
        woken.cancel();
      }
    },
    "POST /api/runner/logs": async (request) => {
      const runner = await authenticate(request);
      const body = await readJson(request);
      const key = str(body.key) ?? "";
      const leaseId = str(body.leaseId) ?? "";
      const chunks = Array.isArray(body.chunks) ? body.chunks.slice(0, MAX_CHUNKS_PER_REQUEST) : [];
      const target = await heldJobAttempt(db, { key, leaseId, runnerId: runner.id });
      // Output of a lease that is no longer the job's belongs to no attempt: dropped.
      if (!target) {
        await refuseOutsideScope(runner, "logs", [key]);
        return { status: 409, body: { accepted: false, reason: "the lease is not held" } };
      }
      await appendLogs(
        db,
        chunks.flatMap((chunk: unknown) => {
          const { stream, text, at } = (chunk ?? {}) as Record<string, unknown>;
          if (typeof text !== "string" || text === "") return [];
          const kind = stream === "stderr" || stream === "system" ? stream : "stdout";
          const pieces: string[] = [];
          for (let start = 0; start < text.length; start += LOG_CHUNK_BYTES)
            pieces.push(text.slice(start, start + LOG_CHUNK_BYTES));
          return pieces.map((piece) => ({
            runId: target.runId,
            step: target.step,
            attempt: target.attempt,
            stream: kind,
            chunk: piece,
            at: typeof at === "number" ? at : Date.now(),
          }));
        }),
      );
      return { status: 200, body: { accepted: true } };
    },
    "POST /api/runner/result": async (request) => {
      const runner = await authenticate(request);
      const body = await readJson(request);
      const key = str(body.key) ?? "";
      const leaseId = str(body.leaseId) ?? "";
      const outcome = outcomeOf(body);
      const accepted = await db.transaction(async (tx) => {
        const job = await lockHeldJob(tx, { key, leaseId, runnerId: runner.id });
        if (!job) return false;
        await recordOutcome(tx, door, now(), job, outcome);
        await dropTasks(tx, [`${key}/runner-lease`]);
        return true;
      });
      if (accepted) return { status: 200, body: { accepted: true } };
      await refuseOutsideScope(runner, "result", [key]);
      const reason =
        "the lease is not held any more (it ran out, or the job ended); the result is ignored";
      const kept = await recordLateResult(db, key, {
        runnerId: runner.id,
        leaseId,
        at: new Date().toISOString(),
        outcome: outcome as unknown as Json,
        reason,
      });
      log.warn("ignored a late runner result", { key, runnerId: runner.id, known: kept });
      return { status: 409, body: { accepted: false, reason } };
    },
    "POST /api/runners/registration-tokens": async (request) => {
      const body = await readJson(request);
      const repository = str(body.repository);
      const organization = str(body.organization);
      if (repository !== undefined && organization !== undefined)
        throw new HttpError(400, "bad_request", "give repository or organization, not both");
      if (repository !== undefined && !/^[\w.-]+\/[\w.-]+$/.test(repository))
        throw new HttpError(
          400,
          "bad_request",
          `repository must be owner/repo, not "${repository}"`,
        );
      const who = await options.admin(request, {
        ...(repository !== undefined ? { repository } : {}),
        ...(organization !== undefined ? { organization } : {}),
      });
      const expiresInMs = Math.min(
        7 * 24 * 3600_000,
        Math.max(60_000, Number(body.expiresInMs) || (options.registrationTokenMs ?? 3600_000)),
      );
      const created = await createRegistrationToken(db, {
        scope: who.scope,
        createdBy: who.actor,
        expiresInMs,
      });
      log.info("runner registration token created", { scope: who.scope, by: who.actor });
      return {
        status: 201,
        body: {
          token: created.token,
          expiresAt: created.expiresAt.toISOString(),
          scope: who.scope,
        },
      };
    },
    "GET /api/runners": async (request, url) => {
      const repository = url.searchParams.get("repository") ?? undefined;
      const organization = url.searchParams.get("organization") ?? undefined;
      const who = await options.admin(request, {
        ...(repository !== undefined ? { repository } : {}),
        ...(organization !== undefined ? { organization } : {}),
      });
      const runners = await listRunners(db, who.scope.kind === "local" ? undefined : who.scope);
      return { status: 200, body: { runners } };
    },
  };

  return async (request, response, url) => {
    let handler = routes[`${request.method} ${url.pathname}`];
    const revoke = /^\/api\/runners\/([^/]+)$/.exec(url.pathname);
    if (!handler && revoke && request.method === "DELETE") {
      handler = async (req) => {
        const runner = await getRunner(db, decodeURIComponent(revoke[1] ?? ""));
        if (!runner) throw new HttpError(404, "not_found", `no runner ${revoke[1]}`);
        const scope = runner.scope;
        await options.admin(
          req,
          scope.kind === "repository"
            ? { repository: scope.name }
            : scope.kind === "organization"
              ? { organization: scope.name }
              : {},
        );
        const revoked = await revokeRunner(db, runner.id);
        log.info("runner revoked", { runnerId: runner.id, name: runner.name });
        return { status: 200, body: { revoked, runnerId: runner.id } };
      };
    }
    if (!handler) return false;
    try {
      const { status, body } = await handler(request, url);
      sendJson(response, status, body);
    } catch (error: unknown) {
      // The runner went away mid-request (it stopped, or its long poll was aborted).
      if (request.socket.destroyed) return true;
      if (error instanceof HttpError) {
        sendJson(response, error.status, { error: { code: error.code, message: error.message } });
      } else {
        // The API's errors (AuthenticationError …), or a refusal with a 4xx `status`.
        const known = errorStatus(error);
        const given = (error as { status?: unknown }).status;
        const status = known.status < 500 ? known.status : given;
        if (typeof status === "number" && status >= 400 && status < 500) {
          sendJson(response, status, {
            error: {
              code: known.status < 500 ? known.code : "refused",
              message: error instanceof Error ? error.message : String(error),
            },
          });
        } else {
          log.error("runner protocol request failed", { path: url.pathname, error });
          sendJson(response, 500, {
            error: { code: "internal", message: "internal error; see the app's log" },
          });
        }
      }
    }
    return true;
  };
}

/**
 * Requests waiting for a job to be queued, or for one of their attempts to be cancelled.
 * Notifications only wake them early; every wait ends by its deadline anyway, so a lost
 * notification costs latency, never correctness.
 */
class Waiters {
  #jobs = new Set<() => void>();
  #cancels = new Map<string, Set<() => void>>();
  #listening: Promise<void> | undefined;

  constructor(
    private readonly db: Database,
    private readonly log: Logger,
  ) {}

  #listen(): void {
    this.#listening ??= (async () => {
      try {
        await this.db.listen(CHANNELS.runnerJobs, () => {
          const all = [...this.#jobs];
          this.#jobs.clear();
          for (const wake of all) wake();
        });
        await this.db.listen(CHANNELS.cancel, (key) => {
          const set = this.#cancels.get(key);
          if (set) for (const wake of [...set]) wake();
        });
      } catch (error: unknown) {
        this.log.error("could not listen for runner jobs; runners will poll", { error });
      }
    })();
  }

  nextJob(): Wake {
    this.#listen();
    return wakeOn((wake) => {
      this.#jobs.add(wake);
      return () => this.#jobs.delete(wake);
    }, this.#listening);
  }

  cancelOf(keys: readonly string[]): Wake {
    this.#listen();
    return wakeOn((wake) => {
      for (const key of keys) {
        const set = this.#cancels.get(key) ?? new Set();
        set.add(wake);
        this.#cancels.set(key, set);
      }
      return () => {
        for (const key of keys) {
          const set = this.#cancels.get(key);
          set?.delete(wake);
          if (set?.size === 0) this.#cancels.delete(key);
        }
      };
    }, this.#listening);
  }
}

interface Wake {
  /** Wait up to `ms`; true once woken (it stays subscribed until `cancel`). */
  wait(ms: number): Promise<boolean>;
  cancel(): void;
}

function wakeOn(
  subscribe: (wake: () => void) => () => void,
  ready: Promise<void> | undefined,
): Wake {
  let woken = false;
  let resolve: (() => void) | undefined;
  const wake = () => {
    woken = true;
    resolve?.();
  };
  const unsubscribe = subscribe(wake);
  return {
    async wait(ms) {
      await ready;
      if (!woken) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((done) => {
          resolve = done;
          timer = setTimeout(done, Math.max(0, ms));
        });
        clearTimeout(timer);
        resolve = undefined;
      }
      return woken;
    },
    cancel: unsubscribe,
  };
}

function bearer(request: IncomingMessage): string | undefined {
  return /^(?:bearer|token)\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")?.[1];
}

/** Compare a secret in constant time. */
export function secretMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** The local admin: whoever holds the local API token (`baton serve`) is admin of every scope. */
export function localRunnerAdmin(token: string, actor: string): RunnerAdminAuth {
  return (request, asked) => {
    if (!secretMatches(bearer(request), token))
      return Promise.reject(new HttpError(401, "unauthorized", "missing or wrong token"));
    const scope: RunnerScope =
      asked.repository !== undefined
        ? { kind: "repository", name: asked.repository }
        : asked.organization !== undefined
          ? { kind: "organization", name: asked.organization }
          : { kind: "local", name: "*" };
    return Promise.resolve({ actor, scope });
  };
}

async function readJson(request: IncomingMessage): Promise<Record<string, unknown>> {
  const body = await readJsonObject(request, MAX_BODY_BYTES);
  if (body.ok) return body.value;
  if (body.problem === "too-large")
    throw new HttpError(413, "too_large", `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  throw new HttpError(400, "bad_request", "the body must be a JSON object");
}

const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

function labelsOf(value: unknown): string[] {
  if (value === undefined) return ["self-hosted"];
  if (!Array.isArray(value) || value.some((label) => typeof label !== "string" || label === ""))
    throw new HttpError(400, "bad_request", "labels must be an array of non-empty strings");
  return [...new Set(["self-hosted", ...(value as string[])])];
}

function leasesOf(value: unknown): { key: string; leaseId: string }[] {
  if (!Array.isArray(value)) return [];
  return value.slice(0, 256).flatMap((lease: unknown) => {
    const { key, leaseId } = (lease ?? {}) as Record<string, unknown>;
    return typeof key === "string" && typeof leaseId === "string" ? [{ key, leaseId }] : [];
  });
}

function outcomeOf(body: Record<string, unknown>): StepOutcome {
  const outputs: Record<string, string> = {};
  if (body.outputs && typeof body.outputs === "object" && !Array.isArray(body.outputs)) {
    for (const [name, value] of Object.entries(body.outputs as Record<string, unknown>))
      if (typeof value === "string") outputs[name] = value;
  }
  return {
    outcome: body.outcome === "success" ? "success" : "failure",
    outputs,
    ...(typeof body.error === "string" ? { error: body.error.slice(0, 16_384) } : {}),
    ...(typeof body.retryable === "boolean" ? { retryable: body.retryable } : {}),
  };
}
