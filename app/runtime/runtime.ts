/**
 * The runtime: claim tasks from the database and handle them, `concurrency` at a time in
 * the main lane, and in each further lane (`lanes`) its own number at a time.
 *
 * No busy polling: when there is nothing to claim, it sleeps until the next task is due
 * (its run_at, or the end of a lease held by a worker that may be dead), or until a
 * notification says a task was enqueued (LISTEN/NOTIFY on Postgres, in-process events on
 * PGlite), or until a slot frees. Any number of processes may run against one Postgres:
 * they coordinate only through it (SKIP LOCKED claims, leases, row locks).
 */
import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import { localShell } from "../runner/local-shell.js";
import { unavailableLocally } from "../runner/executor.js";
import type { Database } from "../store/database.js";
import { CHANNELS, PG_ERRORS, pgErrorCode } from "../store/database.js";
import type { Task } from "../store/model.js";
import { claimDueTasks, releaseTasks, retryTaskLater } from "../store/tasks.js";
import { LeaseLostError } from "./errors.js";
import { compensateTask, executeTask } from "./execute-step.js";
import { EventCache } from "./event-cache.js";
import { FlowCache } from "./flow-cache.js";
import type { Logger } from "./log.js";
import type { RunDoor } from "./run-door.js";
import { stderrLogger } from "./log.js";
import {
  advanceTask,
  cancelSubRunTask,
  cancelTask,
  requestApprovalTask,
  runEndedTask,
  startSubRunTask,
} from "./run-tasks.js";
import {
  AttemptCancelledError,
  LeaseTakenOverError,
  RunningAttempts,
  ShutdownError,
} from "./running-attempts.js";
import type { Executors, LocalSlots, TaskContext } from "./task-context.js";
import type { TaskKind } from "./task-kinds.js";

export interface RuntimeOptions {
  store: Database;
  /** How many tasks of the main lane this process handles at once (steps run in parallel up to this). (Default: 4) */
  concurrency?: number;
  /** Executors by step kind. (Default: `run` on the local shell; the other kinds fail with advice) */
  executors?: Executors;
  /** A logger, or a function that takes one line. (Default: one line per message on stderr) */
  log?: Logger | ((line: string) => void);
  /** How long a claim holds without renewal; a crashed worker's tasks wait this long. (Default: 30000 ms) */
  leaseMs?: number;
  /** The longest sleep without a notification, in case one was lost. (Default: 30000 ms) */
  maxIdleMs?: number;
  /** Identifies this process in `tasks.locked_by`. (Default: host:pid:random) */
  workerId?: string;
  /** Stop cleanly on SIGTERM and SIGINT. (Default: false; the CLI decides) */
  handleSignals?: boolean;
  /** The clock. (Default: Date.now) */
  now?: () => number;
  /**
   * Handlers put in front of the runtime's own, by task kind, e.g. `request-approval` in
   * the GitHub app (which renders check-run buttons). A handler must delete its task with
   * `finishTask`, or pass the task on with `next`. (Default: the local handlers)
   */
  handlers?: Partial<Record<TaskKind, TaskHandler>> & Record<string, TaskHandler>;
  /** The door into runs, shared with a `BatonService` (one flow cache). (Default: a new one) */
  door?: RunDoor;
  /**
   * Lanes beside the main one, each with its own slots and claim loop for its task kinds,
   * e.g. the GitHub app's writes (check-run syncs, outbox requests), which wait on
   * GitHub's pacing: they never hold a step's slot, and steps never starve them. The main
   * lane (`concurrency` slots) takes every kind no lane names. A kind in two lanes is an
   * error. (Default: none; every task in the main lane)
   */
  lanes?: readonly RuntimeLane[];
}

/** A lane of the runtime (see `RuntimeOptions.lanes`). */
export interface RuntimeLane {
  /** For the log. */
  name: string;
  /** The task kinds this lane takes, and no other lane does. */
  kinds: readonly string[];
  /** How many of its tasks this process handles at once. */
  concurrency: number;
}

/**
 * Handles one claimed task. `next` is the handler this one was put in front of (the
 * runtime's own, or another part's): a handler that takes only some tasks of its kind
 * (e.g. `execute` for `workflow` steps) passes the others on.
 */
export type TaskHandler = (
  ctx: TaskContext,
  task: Task,
  next: () => Promise<void>,
) => Promise<void>;

/** `over`'s handlers in front of `under`'s: each one's `next` is the one it covers. */
export function layerHandlers(
  under: Readonly<Record<string, TaskHandler>>,
  over: Readonly<Record<string, TaskHandler>>,
): Record<string, TaskHandler> {
  const layered: Record<string, TaskHandler> = { ...under };
  for (const [kind, handler] of Object.entries(over)) {
    const below = under[kind];
    layered[kind] = below
      ? (ctx, task, next) => handler(ctx, task, () => below(ctx, task, next))
      : handler;
  }
  return layered;
}

export interface Runtime {
  readonly workerId: string;
  /**
   * Stop claiming, wait up to `graceMs` for tasks in hand, then stop running steps and
   * give their tasks back so that another process takes them at once. (Default: 10000 ms)
   */
  stop(options?: { graceMs?: number }): Promise<void>;
  /** Settles when the runtime has stopped. */
  readonly stopped: Promise<void>;
}

export const DEFAULT_EXECUTORS: Executors = {
  run: localShell(),
  workflow: unavailableLocally("workflow"),
  github: unavailableLocally("github"),
  agent: unavailableLocally("agent"),
};

const HANDLERS: Record<TaskKind, TaskHandler> = {
  advance: advanceTask,
  execute: executeTask,
  cancel: cancelTask,
  "start-sub-run": startSubRunTask,
  "cancel-sub-run": cancelSubRunTask,
  compensate: compensateTask,
  "request-approval": requestApprovalTask,
  "run-ended": runEndedTask,
};

export function startRuntime(options: RuntimeOptions): Runtime {
  const leaseMs = options.leaseMs ?? 30_000;
  const maxIdleMs = options.maxIdleMs ?? 30_000;
  const log = toLogger(options.log);
  const db = options.store;
  const workerId =
    options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  const base: TaskContext = {
    db,
    flows: options.door?.flows ?? new FlowCache(),
    running: new RunningAttempts(),
    executors: { ...DEFAULT_EXECUTORS, ...options.executors },
    log,
    workerId,
    leaseMs,
    now: options.now ?? Date.now,
    events: new EventCache(),
    maxIdleMs,
  };
  const handlers: Record<string, TaskHandler | undefined> = layerHandlers(
    HANDLERS,
    options.handlers ?? {},
  );
  const specs = options.lanes ?? [];
  const laneKinds = specs.flatMap((spec) => spec.kinds);
  const twice = laneKinds.filter((kind, i) => laneKinds.indexOf(kind) !== i);
  if (twice.length > 0)
    throw new Error(`Task kinds given to two lanes: ${[...new Set(twice)].join(", ")}`);
  /** Tasks in flight, every lane's (stop waits for all of them). */
  const inFlight = new Map<number, Promise<void>>();
  /** Tasks given back while stopping (handed over too late to start). */
  const releasing = new Set<Promise<unknown>>();
  let stopping = false;
  const unlisten: (() => Promise<void>)[] = [];

  const handle = async (ctx: TaskContext, task: Task): Promise<void> => {
    const handler = handlers[task.kind];
    try {
      if (!handler) throw new Error(`unknown task kind "${task.kind}" (written by a newer Baton?)`);
      await handler(ctx, task, () =>
        Promise.reject(new Error(`no handler took the task of kind "${task.kind}"`)),
      );
    } catch (error: unknown) {
      if (error instanceof ShutdownError) return; // released by stop()
      if (error instanceof LeaseLostError || error instanceof LeaseTakenOverError) {
        log.warn("lost a task to another worker (its lease expired)", {
          taskId: task.id,
          kind: task.kind,
        });
        return;
      }
      const code = pgErrorCode(error);
      const transient =
        code === PG_ERRORS.deadlockDetected || code === PG_ERRORS.serializationFailure;
      // Exponential backoff from 1 s, at most 5 min; a deadlock is retried almost at once.
      const delay = transient
        ? 50 + Math.random() * 200
        : Math.min(300_000, 1000 * 2 ** Math.min(task.attempts, 9));
      log[transient ? "warn" : "error"]("task failed; it will be retried", {
        taskId: task.id,
        kind: task.kind,
        runId: task.runId,
        attempts: task.attempts,
        retryInMs: Math.round(delay),
        error,
      });
      const message = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      await db
        .transaction((tx) =>
          retryTaskLater(tx, task.id, workerId, new Date(Date.now() + delay), message),
        )
        .catch((retryError: unknown) =>
          log.error("could not reschedule a failed task", { taskId: task.id, error: retryError }),
        );
    }
  };

  /**
   * One lane: its own slots and claim loop, for `kinds` (or, the main lane, every kind no
   * other lane has). Lanes share the database, the caches and the running attempts, never
   * slots: a lane's slow or paced tasks cannot hold another lane's slot.
   */
  const startLane = (spec: {
    name: string;
    concurrency: number;
    kinds?: readonly string[];
    excludeKinds?: readonly string[];
  }) => {
    const concurrency = Math.max(1, spec.concurrency);
    const own = new Set<number>();
    /** Tasks in flight whose slot is already counted in `reserved` (they are finishing). */
    const finishing = new Set<number>();
    let reserved = 0;
    let wake: (() => void) | undefined;
    const wakeUp = () => {
      const resolve = wake;
      wake = undefined;
      resolve?.();
    };
    /**
     * Whether due tasks may be waiting in the queue: a generation number, set by a
     * notification, by a claim that filled every slot, or while every slot is taken;
     * cleared by a claim that found fewer than it asked for and started after it was set.
     * Only then does a finished task wake the loop: one loop pass per step at most.
     */
    let backlog: number | undefined = 0;
    let generation = 0;
    const markBacklog = () => {
      generation += 1;
      backlog = generation;
    };
    const free = () => concurrency - (own.size - finishing.size) - reserved;
    const start = (task: Task): void => {
      own.add(task.id);
      const running = handle(ctx, task).finally(() => {
        inFlight.delete(task.id);
        own.delete(task.id);
        finishing.delete(task.id);
        if (backlog !== undefined) wakeUp();
      });
      inFlight.set(task.id, running);
    };
    // Only the main lane hands tasks over on finish (`finishTask`), with other lanes'
    // kinds excluded; a lane with `kinds` reserves nothing and claims in its loop.
    const handsOver = spec.kinds === undefined;
    const slots: LocalSlots = {
      reserve(task) {
        if (stopping || !handsOver) return 0;
        if (own.has(task.id) && !finishing.has(task.id)) finishing.add(task.id);
        const n = Math.max(0, free());
        reserved += n;
        return n;
      },
      settle(finished, count, tasks) {
        reserved -= count;
        // Its slot counts as taken again until its handler returns (a moment, or a retry).
        finishing.delete(finished.id);
        if (tasks.length === 0) return;
        if (stopping) {
          // Too late to start: give them back at once (their lease would free them anyway).
          const ids = tasks.map((task) => task.id);
          const release = db
            .transaction((tx) => releaseTasks(tx, ids, workerId))
            .catch((error: unknown) => log.error("could not release tasks", { error }))
            .finally(() => releasing.delete(release));
          releasing.add(release);
          return;
        }
        for (const task of tasks) start(task);
      },
      get backlog() {
        return backlog;
      },
      claimed(seen, limit, got) {
        if (got >= limit) markBacklog();
        else if (backlog === seen) backlog = undefined;
      },
      ...(spec.excludeKinds && spec.excludeKinds.length > 0
        ? { excludeKinds: spec.excludeKinds }
        : {}),
    };
    const ctx: TaskContext = { ...base, slots };
    const filter = {
      ...(spec.kinds ? { kinds: spec.kinds } : {}),
      ...(spec.excludeKinds && spec.excludeKinds.length > 0
        ? { excludeKinds: spec.excludeKinds }
        : {}),
    };

    const loop = async (): Promise<void> => {
      while (!stopping) {
        const room = free();
        let delay = maxIdleMs;
        // Listen before looking, so that a task enqueued in between still wakes us.
        const sleeping = new Promise<void>((resolve) => (wake = resolve));
        try {
          if (room > 0) {
            const seen = backlog ?? generation;
            const { tasks, nextAt } = await claimDueTasks(db, {
              workerId,
              limit: room,
              leaseMs,
              ...filter,
            });
            slots.claimed(seen, room, tasks.length);
            for (const task of tasks) start(task);
            if (tasks.length === room) continue; // there may be more
            if (nextAt) delay = Math.min(maxIdleMs, Math.max(10, nextAt.getTime() - Date.now()));
          } else {
            // Every slot is taken: whatever is due waits for one, and the first task to
            // finish wakes us to look.
            markBacklog();
          }
        } catch (error: unknown) {
          log.error(`could not claim tasks (${spec.name} lane); trying again in 1 s`, { error });
          delay = 1000;
        }
        if (stopping) break;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          sleeping,
          new Promise<void>((resolve) => (timer = setTimeout(resolve, delay))),
        ]);
        clearTimeout(timer);
        wake = undefined;
      }
    };
    return {
      loop,
      wakeUp,
      notified() {
        markBacklog();
        wakeUp();
      },
    };
  };

  const lanes = [
    startLane({
      name: "main",
      concurrency: options.concurrency ?? 4,
      excludeKinds: laneKinds,
    }),
    ...specs.map((spec) => startLane(spec)),
  ];
  const wakeAll = () => {
    for (const lane of lanes) lane.wakeUp();
  };

  const loop = async (): Promise<void> => {
    try {
      unlisten.push(
        await db.listen(CHANNELS.tasks, () => {
          for (const lane of lanes) lane.notified();
        }),
      );
      unlisten.push(
        await db.listen(CHANNELS.cancel, (key) => {
          if (key !== "") base.running.abort(key, new AttemptCancelledError());
        }),
      );
    } catch (error: unknown) {
      // Without notifications the runtime still works: it polls (maxIdleMs), and running
      // attempts see cancellations when they renew their lease.
      log.error("could not listen for notifications; polling instead", { error });
    }
    await Promise.all(lanes.map((lane) => lane.loop()));
  };

  const stopped = loop();
  let stopping$: Promise<void> | undefined;

  const stop = (stopOptions: { graceMs?: number } = {}): Promise<void> => {
    stopping$ ??= (async () => {
      stopping = true;
      wakeAll();
      await stopped.catch((error: unknown) => log.error("the runtime loop failed", { error }));
      const all = Promise.allSettled(inFlight.values());
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"timeout">(
        (resolve) => (timer = setTimeout(() => resolve("timeout"), stopOptions.graceMs ?? 10_000)),
      );
      if ((await Promise.race([all, graceOver])) === "timeout") {
        // Steps still running: stop them and hand their tasks back now.
        base.running.abortAll(new ShutdownError());
        const ids = [...inFlight.keys()];
        await Promise.allSettled(inFlight.values());
        await db
          .transaction((tx) => releaseTasks(tx, ids, workerId))
          .catch((error: unknown) => log.error("could not release tasks", { error }));
      }
      clearTimeout(timer);
      while (releasing.size > 0) await Promise.allSettled([...releasing]);
      for (const off of unlisten) await off().catch(() => undefined);
      if (signalHandler) {
        process.off("SIGTERM", signalHandler);
        process.off("SIGINT", signalHandler);
      }
    })();
    return stopping$;
  };

  let signalHandler: (() => void) | undefined;
  if (options.handleSignals) {
    signalHandler = () => {
      log.info("stopping: finishing the tasks in hand");
      void stop();
    };
    process.once("SIGTERM", signalHandler);
    process.once("SIGINT", signalHandler);
  }

  return {
    workerId,
    stop,
    get stopped() {
      return stopped;
    },
  };
}

function toLogger(log: RuntimeOptions["log"]): Logger {
  if (log === undefined) return stderrLogger;
  if (typeof log !== "function") return log;
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) =>
    log(
      `${level} ${message}${fields ? ` ${JSON.stringify(fields, (_key, value: unknown) => (value instanceof Error ? { name: value.name, message: value.message } : value))}` : ""}`,
    );
  return { info: line("info"), warn: line("warn"), error: line("error") };
}
