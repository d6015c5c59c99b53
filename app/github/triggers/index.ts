/**
 * Triggers: what starts runs of a repository's live flows.
 *
 * - `on.github`: a handler for every event Baton receives (github-event-trigger.ts);
 * - `on.manual` from a `/baton run <flow> k=v` comment (comment-run-command.ts);
 * - `on.schedule`: a background ticker (schedule-ticker.ts);
 * - `on.webhook`: the route `POST /api/flows/{owner}/{repo}/{flow}/webhook`
 *   (webhook-route.ts), with secrets from `webhookSecret` (webhook-secrets.ts).
 *
 * The CLI and API starts of `on.manual` (a user token checked against GitHub) are the
 * HTTP API's.
 */
import type { EventHandlers, GitHubApp, GitHubAppPart } from "../github-app.js";
import { commentRunCommand } from "./comment-run-command.js";
import type { SenderPolicy } from "./github-event-trigger.js";
import { githubEventTrigger, TRIGGER_EVENT_NAMES } from "./github-event-trigger.js";
import type { ScheduleTickerOptions } from "./schedule-ticker.js";
import { startScheduleTicker } from "./schedule-ticker.js";
import type { WebhookRouteOptions } from "./webhook-route.js";
import { webhookTriggerRoute } from "./webhook-route.js";

export interface TriggersOptions extends SenderPolicy {
  schedule?: ScheduleTickerOptions;
  webhook?: WebhookRouteOptions;
  /** Event names to handle `on.github` for. (Default: TRIGGER_EVENT_NAMES, app.yml's events) */
  events?: readonly string[];
}

export function triggersPart(app: GitHubApp, options: TriggersOptions = {}): GitHubAppPart {
  const policy: SenderPolicy = options.botLogin !== undefined ? { botLogin: options.botLogin } : {};
  const onEvent = githubEventTrigger(policy);
  const events: Record<string, EventHandlers[string]> = {};
  for (const name of options.events ?? TRIGGER_EVENT_NAMES) events[name] = onEvent;
  events["issue_comment.created"] = commentRunCommand(policy);
  return {
    name: "triggers",
    events,
    routes: [webhookTriggerRoute(app, options.webhook)],
    start: () => startScheduleTicker(app, options.schedule),
  };
}

export { TRIGGER_EVENT_NAMES, isIgnoredSender } from "./github-event-trigger.js";
export { matchGitHubEvent, eventFacts } from "./match-github-event.js";
export {
  fireDueSchedules,
  planScheduleTicks,
  startScheduleTicker,
  MAX_CATCH_UP_RUNS,
  LATE_TICK_MS,
} from "./schedule-ticker.js";
export {
  webhookSecret,
  webhookPath,
  signWebhookPayload,
  signWebhookRequest,
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  type WebhookSecret,
  type WebhookSecretOptions,
} from "./webhook-secrets.js";
export {
  WEBHOOK_SIGNATURE_HEADER,
  MAX_WEBHOOK_TRIGGER_BYTES,
  WEBHOOK_TOLERANCE_MS,
} from "./webhook-route.js";
export { listWebhookRejections } from "../../store/triggers.js";
