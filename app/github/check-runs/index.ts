/**
 * Check-run run history (issue 4, item 6): every run of a repository's flow is shown as a
 * check run `baton / <flow>` on the run's commit, kept up to date by the `sync-check-run`
 * task, with buttons whose clicks are checked against GitHub.
 */
import { SYNC_CHECK_RUN } from "../../runtime/index.js";
import type { GitHubApp, GitHubAppPart } from "../github-app.js";
import { handleRequestedAction } from "./requested-action.js";
import type { SyncOptions } from "./sync-check-run.js";
import { syncCheckRunHandler } from "./sync-check-run.js";

export type CheckRunsOptions = SyncOptions;

export function checkRunsPart(app: GitHubApp, options: CheckRunsOptions = {}): GitHubAppPart {
  return {
    name: "check-runs",
    events: { "check_run.requested_action": handleRequestedAction },
    tasks: { [SYNC_CHECK_RUN]: syncCheckRunHandler(app, options) },
  };
}

export { checkRunName, parseActionIdentifier, renderCheckRun } from "./render.js";
export type { RenderedCheckRun, RenderOptions } from "./render.js";
