/**
 * Ticks of a flow's `on.schedule` entries: five-field cron in an IANA time zone
 * (cron-parser, as the flow validator uses).
 */
import { CronExpressionParser } from "cron-parser";

/** The first tick strictly after `after`. */
export function nextScheduleTick(cron: string, timezone: string, after: Date): Date {
  return CronExpressionParser.parse(cron, { tz: timezone, currentDate: after }).next().toDate();
}

/** The last tick at or before `at`, if any tick happened since `since` (exclusive). */
export function lastScheduleTick(
  cron: string,
  timezone: string,
  since: Date,
  at: Date,
): Date | undefined {
  const expression = CronExpressionParser.parse(cron, {
    tz: timezone,
    currentDate: new Date(at.getTime() + 1),
  });
  const previous = expression.prev().toDate();
  return previous > since ? previous : undefined;
}
