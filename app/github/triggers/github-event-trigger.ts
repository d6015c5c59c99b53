/**
 * `on.github` triggers: a delivery starts one run per live flow whose filters match it
 * (match-github-event.ts), in the delivery's transaction, so the runs exist if and only if
 * the delivery is marked processed. Live flows are read inside that transaction: a push
 * that changes a flow is handled first by the flow loader in the same transaction, and
 * the version it made live is the one that is matched and run.
 *
 * The run's place on GitHub: its check run goes on the pull request's head for
 * `pull_request*` events, on the pushed commit for `push`, otherwise on the live commit.
 *
 * Events sent by Baton's own bot are ignored, so that a flow whose `github` step labels
 * an issue cannot start itself forever.
 */
import type { Json } from "../../engine/types.js";
import type { RunGitHub } from "../../store/model.js";
import type { EventHandler, GitHubApp, GitHubEvent, Write } from "../github-app.js";
import type { Octokit } from "../github-client.js";
import type { EventFacts } from "./match-github-event.js";
import { eventFacts, matchGitHubEvent, needsChangedFiles } from "./match-github-event.js";
import { errorMessage, startRunUnderSavepoint } from "./start-triggered-run.js";
import type { RunnableLiveFlow } from "../../store/live-flows.js";
import { liveFlowsOnEvent } from "../../store/live-flows.js";
import { getInstalledRepository } from "../../store/repositories.js";

/**
 * The events Baton's app.yml subscribes to: a flow's `on.github` can list any GitHub
 * event, but only these are delivered. Subscribe to more in app.yml and add them here.
 */
export const TRIGGER_EVENT_NAMES = [
  "check_run",
  "deployment_protection_rule",
  "issue_comment",
  "issues",
  "pull_request",
  "pull_request_review",
  "push",
  "workflow_job",
  "workflow_run",
] as const;

/** GitHub lists at most 3000 files of a pull request; so does Baton. */
export const MAX_PULL_REQUEST_FILES = 3000;

export interface SenderPolicy {
  /**
   * This app's bot login, e.g. `baton[bot]`: only its events are ignored. (Default: none;
   * every bot sender is ignored, other apps' included, as the safe choice when the app's
   * own login is not known)
   */
  botLogin?: string;
}

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

/** Whether a delivery's sender is a bot whose events must not start runs (see SenderPolicy). */
export function isIgnoredSender(payload: Payload, policy: SenderPolicy): boolean {
  const sender = object(payload.sender);
  const login = typeof sender?.login === "string" ? sender.login : "";
  if (policy.botLogin !== undefined) return login.toLowerCase() === policy.botLogin.toLowerCase();
  return sender?.type === "Bot" && login.endsWith("[bot]");
}

export function repositoryOf(payload: Payload): string | undefined {
  const name = object(payload.repository)?.full_name;
  return typeof name === "string" ? name : undefined;
}

export function githubEventTrigger(policy: SenderPolicy = {}): EventHandler {
  return async (event, app) => {
    const repository = repositoryOf(event.payload);
    if (repository === undefined || isIgnoredSender(event.payload, policy)) return undefined;
    // A deleted branch has no commit to run on.
    if (event.name === "push" && event.payload.deleted === true) return undefined;
    // Before the transaction (GitHub calls may not run inside it): the changed files of a
    // pull request, only when some live flow filters this event by paths.
    let changedFiles: string[] | undefined;
    if (event.name.startsWith("pull_request")) {
      const candidates = await liveFlowsOnEvent(app.store, repository, event.name);
      if (candidates.some((flow) => needsChangedFiles(flow.definition.on?.github?.[event.name]))) {
        changedFiles = await pullRequestFiles(app, event, repository);
      }
    }
    return startMatchingFlows(app, event, repository, changedFiles);
  };
}

function startMatchingFlows(
  app: GitHubApp,
  event: GitHubEvent,
  repository: string,
  changedFiles: string[] | undefined,
): Write {
  return async (tx) => {
    const installed = await getInstalledRepository(tx, repository);
    if (!installed) return;
    const flows = await liveFlowsOnEvent(tx, repository, event.name);
    if (flows.length === 0) return;
    const facts = eventFacts(event.name, event.action, event.payload, changedFiles);
    const actor = senderLogin(event.payload);
    for (const flow of flows) {
      const verdict = matchGitHubEvent(flow.definition.on?.github?.[event.name], facts);
      if (!verdict.matches) continue;
      const outcome = await startRunUnderSavepoint(tx, app, {
        flowFile: { versionId: flow.versionId },
        actor,
        trigger: { event: event.name, payload: event.payload as Json },
        github: runPlace(event, installed.installationId, installed.liveSha ?? flow.versionSha),
      });
      logOutcome(app, event, flow, facts, outcome);
    }
  };
}

function logOutcome(
  app: GitHubApp,
  event: GitHubEvent,
  flow: RunnableLiveFlow,
  facts: EventFacts,
  outcome: Awaited<ReturnType<typeof startRunUnderSavepoint>>,
): void {
  const fields = {
    delivery: event.id,
    event: event.action ? `${event.name}.${event.action}` : event.name,
    repository: flow.repository,
    flow: flow.flow,
    ...(facts.branch !== undefined ? { branch: facts.branch } : {}),
  };
  if (outcome.ok) {
    app.log.info("a GitHub event started a run", {
      ...fields,
      run: `${outcome.run.flow}#${outcome.run.number}`,
      runId: outcome.run.runId,
      status: outcome.run.status,
    });
  } else {
    // Not the delivery's failure: retrying it would refuse again, and the other flows'
    // runs are started. The reason is in the log for the repository's people.
    app.log.warn("a GitHub event matched a flow, but its run was refused", {
      ...fields,
      reason: errorMessage(outcome.error),
    });
  }
}

export function senderLogin(payload: Payload): string {
  const login = object(payload.sender)?.login;
  return typeof login === "string" ? login : "github";
}

/** Where the run shows on GitHub (see the module comment). */
export function runPlace(event: GitHubEvent, installationId: number, liveSha: string): RunGitHub {
  const payload = event.payload;
  const pull = object(payload.pull_request);
  const issue = object(payload.issue);
  if (event.name.startsWith("pull_request") && pull) {
    const head = object(pull.head)?.sha;
    return {
      installationId,
      headSha: typeof head === "string" ? head : liveSha,
      ...(typeof pull.number === "number" ? { pullRequest: pull.number } : {}),
    };
  }
  if (event.name === "push" && typeof payload.after === "string") {
    return { installationId, headSha: payload.after };
  }
  return {
    installationId,
    headSha: liveSha,
    ...(issue && typeof issue.number === "number" ? { issue: issue.number } : {}),
  };
}

/**
 * `GET /repos/{o}/{r}/pulls/{n}/files`, every page up to GitHub's own cap of 3000 files
 * (past it, GitHub lists nothing more; the filter sees the first 3000).
 */
async function pullRequestFiles(
  app: GitHubApp,
  event: GitHubEvent,
  repository: string,
): Promise<string[] | undefined> {
  const number = object(event.payload.pull_request)?.number;
  if (typeof number !== "number" || event.installationId === undefined) return undefined;
  const [owner = "", repo = ""] = repository.split("/");
  const octokit: Octokit = app.github.installation(event.installationId);
  const files: string[] = [];
  for await (const page of octokit.paginate.iterator(octokit.rest.pulls.listFiles, {
    owner,
    repo,
    pull_number: number,
    per_page: 100,
  })) {
    for (const file of page.data) {
      files.push(file.filename);
      // A rename changes the old path as well.
      if (file.previous_filename) files.push(file.previous_filename);
    }
    if (files.length >= MAX_PULL_REQUEST_FILES) break;
  }
  return files;
}
