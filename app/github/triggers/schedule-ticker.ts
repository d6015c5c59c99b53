/**
 * `on.schedule` triggers. Each live schedule is a `flow_schedules` row whose `next_at` is
 * the tick it waits for. A ticker in every app process sleeps until the earliest
 * `next_at` (at most `pollMs`), then, for each due row, in one transaction: moves
 * `next_at` to the next future tick with a compare-and-set (`… WHERE next_at = <seen>`)
 * and starts the tick's run. Only the transaction whose update changed the row starts a
 * run, so each tick starts exactly one run however many processes tick; a crash before
 * the commit leaves the row due, and the next ticker takes it.
 *
 * After downtime (`next_at` far in the past), `on.schedule[].catch-up` decides:
 * `latest` (default) starts one run, for the latest missed tick; `none` starts nothing
 * for ticks more than `LATE_TICK_MS` late; `all` starts one run per missed tick, oldest
 * first, at most the latest `MAX_CATCH_UP_RUNS`. Either way the schedule then resumes at
 * its next future tick.
 *
 * The trigger is `{ event: "schedule", payload: { schedule, timezone, tick } }` (the
 * tick as an ISO timestamp), the actor `schedule` unless configured.
 */
import { CronExpressionParser } from "cron-parser";
import { CHANNELS } from "../../store/database.js";
import type { BackgroundJob, GitHubApp } from "../github-app.js";
import { nextScheduleTick } from "../schedule-ticks.js";
import { errorMessage, startRunUnderSavepoint } from "./start-triggered-run.js";
import type { DueSchedule } from "../../store/triggers.js";
import { claimScheduleTick, dueSchedules, earliestScheduleTick } from "../../store/triggers.js";

/** `catch-up: all` starts at most this many runs for one downtime: the latest ticks. */
export const MAX_CATCH_UP_RUNS = 100;

/**
 * A tick later than this counts as missed (for `catch-up: none`). A ticker that runs
 * wakes at most `pollMs` (30 s) late, so on-time ticks are never skipped.
 */
export const LATE_TICK_MS = 5 * 60_000;

export type CatchUp = "latest" | "none" | "all";

export interface ScheduleTickerOptions {
  /** The longest sleep between looks at the schedules. (Default: 30000 ms) */
  pollMs?: number;
  /** Who scheduled runs are started by. (Default: "schedule") */
  actor?: string;
  /** Rows claimed per query. (Default: 50) */
  batchSize?: number;
}

export interface TickPlan {
  /** The ticks to start runs for, oldest first. */
  ticks: Date[];
  /** Due ticks that start no run (missed, per `catch-up`). */
  skipped: number;
  /** What `next_at` becomes: the first tick after now. */
  nextAt: Date;
}

/** What a due schedule does now (pure; `now` is at or after `schedule.nextAt`). */
export function planScheduleTicks(
  schedule: { cron: string; timezone: string; nextAt: Date; catchUp: string | undefined },
  now: Date,
): TickPlan {
  const nextAt = nextScheduleTick(schedule.cron, schedule.timezone, now);
  if (schedule.nextAt > now) return { ticks: [], skipped: 0, nextAt: schedule.nextAt };
  // The due ticks, newest first: `next_at` itself and the cron's ticks after it up to now,
  // counted backwards from now and at most one more than `all` would run.
  const due: Date[] = [];
  const expression = CronExpressionParser.parse(schedule.cron, {
    tz: schedule.timezone,
    currentDate: new Date(now.getTime() + 1),
  });
  while (due.length <= MAX_CATCH_UP_RUNS) {
    const tick = expression.prev().toDate();
    if (tick <= schedule.nextAt) break;
    due.push(tick);
  }
  if (due.length <= MAX_CATCH_UP_RUNS) due.push(schedule.nextAt);
  const latest = due[0] as Date;
  const total = due.length;
  switch (catchUpMode(schedule.catchUp)) {
    case "all": {
      const ticks = due.slice(0, MAX_CATCH_UP_RUNS).reverse();
      return { ticks, skipped: Math.max(0, total - ticks.length), nextAt };
    }
    case "none": {
      const onTime = now.getTime() - latest.getTime() <= LATE_TICK_MS;
      return onTime
        ? { ticks: [latest], skipped: total - 1, nextAt }
        : { ticks: [], skipped: total, nextAt };
    }
    case "latest":
      return { ticks: [latest], skipped: total - 1, nextAt };
  }
}

function catchUpMode(value: string | undefined): CatchUp {
  return value === "none" || value === "all" ? value : "latest";
}

export interface ScheduleFiring {
  repository: string;
  flow: string;
  idx: number;
  /** Runs started, by tick. */
  started: { tick: string; runId: string; number: number }[];
  skipped: number;
}

/**
 * One pass: claim every due schedule and start its runs. Returns what this process
 * claimed (a row another process claimed first is not listed). Safe from any number of
 * processes at once.
 */
export async function fireDueSchedules(
  app: GitHubApp,
  options: ScheduleTickerOptions = {},
): Promise<{ fired: ScheduleFiring[]; failures: number }> {
  const batchSize = options.batchSize ?? 50;
  const fired: ScheduleFiring[] = [];
  let failures = 0;
  for (let pass = 0; pass < 20; pass++) {
    const due = await dueSchedules(app.store, new Date(app.now()), batchSize);
    for (const schedule of due) {
      try {
        const firing = await fireSchedule(app, schedule, options.actor ?? "schedule");
        if (firing) fired.push(firing);
      } catch (error: unknown) {
        failures += 1;
        app.log.error("a schedule's tick could not be claimed; it stays due", {
          repository: schedule.repository,
          flow: schedule.flow,
          schedule: schedule.idx,
          error: errorMessage(error),
        });
      }
    }
    if (due.length < batchSize || failures > 0) break;
  }
  return { fired, failures };
}

async function fireSchedule(
  app: GitHubApp,
  schedule: DueSchedule,
  actor: string,
): Promise<ScheduleFiring | undefined> {
  return app.store.transaction(async (tx) => {
    const plan = planScheduleTicks(schedule, new Date(app.now()));
    if (!(await claimScheduleTick(tx, schedule, plan.nextAt))) return undefined;
    const firing: ScheduleFiring = {
      repository: schedule.repository,
      flow: schedule.flow,
      idx: schedule.idx,
      started: [],
      skipped: plan.skipped,
    };
    const fields = { repository: schedule.repository, flow: schedule.flow, cron: schedule.cron };
    if (plan.skipped > 0) {
      app.log.info("schedule ticks were missed while no app process ran", {
        ...fields,
        missed: plan.skipped,
        catchUp: catchUpMode(schedule.catchUp),
      });
    }
    for (const tick of plan.ticks) {
      const outcome = await startRunUnderSavepoint(tx, app, {
        flowFile: { versionId: schedule.versionId },
        actor,
        trigger: {
          event: "schedule",
          payload: {
            schedule: schedule.cron,
            timezone: schedule.timezone,
            tick: tick.toISOString(),
          },
        },
        github: { installationId: schedule.installationId, headSha: schedule.headSha },
      });
      if (outcome.ok) {
        firing.started.push({
          tick: tick.toISOString(),
          runId: outcome.run.runId,
          number: outcome.run.number,
        });
        app.log.info("a schedule started a run", {
          ...fields,
          tick: tick.toISOString(),
          run: `${outcome.run.flow}#${outcome.run.number}`,
        });
      } else {
        // The tick is spent either way: retrying would be refused again (a concurrency
        // `reject`, inputs without defaults), and the schedule must move on.
        app.log.warn("a schedule's tick was refused a run", {
          ...fields,
          tick: tick.toISOString(),
          reason: errorMessage(outcome.error),
        });
      }
    }
    return firing;
  });
}

export interface ScheduleTicker extends BackgroundJob {
  /** Look now (e.g. after the schedules changed in this process). */
  kick(): void;
}

/**
 * The background ticker (see the module comment). A load of flows announces changed
 * schedules on `CHANNELS.schedules` (to every process on Postgres); `pollMs` bounds the
 * sleep should a notification be lost.
 */
export function startScheduleTicker(
  app: GitHubApp,
  options: ScheduleTickerOptions = {},
): ScheduleTicker {
  const pollMs = options.pollMs ?? 30_000;
  let stopped = false;
  // A kick while a pass runs is not lost: the loop looks again instead of sleeping.
  let kicked = false;
  let wake: (() => void) | undefined;
  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const listening = app.store
    .listen(CHANNELS.schedules, () => {
      kicked = true;
      wake?.();
    })
    .catch((error: unknown) => {
      app.log.warn("cannot listen for schedule changes; polling instead", {
        error: errorMessage(error),
      });
      return undefined;
    });

  const loop = (async () => {
    while (!stopped) {
      kicked = false;
      let delay = pollMs;
      try {
        const { failures } = await fireDueSchedules(app, options);
        const next = await earliestScheduleTick(app.store);
        // After a failure, wait a full poll rather than spin on the row that failed.
        if (next && failures === 0)
          delay = Math.min(pollMs, Math.max(0, next.getTime() - app.now()));
      } catch (error: unknown) {
        app.log.error("the schedule ticker failed; trying again", { error: errorMessage(error) });
      }
      if (!stopped && !kicked) await sleep(delay);
    }
  })();

  return {
    kick() {
      kicked = true;
      wake?.();
    },
    async stop() {
      stopped = true;
      wake?.();
      await loop;
      await (
        await listening
      )?.();
    },
  };
}
