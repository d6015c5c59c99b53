/**
 * `on.manual` from a comment: `/baton run <flow> key=value …` on an issue or a pull
 * request starts the live flow (`--draft` runs are the drafts part's). The commenter's
 * permission is asked of GitHub at that moment and must be at least write (docs/architecture.md
 * rule 8). Every outcome is answered with a reply comment, through the outbox (keyed by
 * the delivery, so a retried delivery replies once), in the transaction that starts the
 * run: the reply says "Started" if and only if the run exists.
 *
 * The run's check run goes on the pull request's head when the comment is on a pull
 * request, otherwise on the live commit; replies about the run go to the comment's
 * issue or pull request.
 */
import { parseBatonCommand } from "../baton-command.js";
import type { EventHandler, GitHubEvent } from "../github-app.js";
import { enqueueGitHubRequest } from "../outbox.js";
import { hasPermission, repositoryPermission } from "../permissions.js";
import {
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  InvalidInputsError,
} from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import type { Json } from "../../engine/types.js";
import type { SenderPolicy } from "./github-event-trigger.js";
import { isIgnoredSender, repositoryOf } from "./github-event-trigger.js";
import { errorMessage, startRunUnderSavepoint } from "./start-triggered-run.js";
import { getLiveFlow, liveFlowNames } from "../../store/live-flows.js";
import { getInstalledRepository } from "../../store/repositories.js";

/** Who may start a flow from a comment. */
export const RUN_PERMISSION = "write";

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

function numberOrUndefined(value: unknown): number | undefined {
  return typeof value === "number" ? value : undefined;
}

function stringOrUndefined(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The handler of `issue_comment.created`. */
export function commentRunCommand(policy: SenderPolicy = {}): EventHandler {
  return async (event, app) => {
    const body = object(event.payload.comment)?.body;
    const login = object(object(event.payload.comment)?.user)?.login;
    const commentId = numberOrUndefined(object(event.payload.comment)?.id);
    const commentUrl = stringOrUndefined(object(event.payload.comment)?.html_url);
    const issue = object(event.payload.issue);
    const number = issue?.number;
    const repository = repositoryOf(event.payload);
    if (
      typeof body !== "string" ||
      typeof login !== "string" ||
      typeof number !== "number" ||
      repository === undefined ||
      event.installationId === undefined ||
      isIgnoredSender(event.payload, policy)
    ) {
      return undefined;
    }
    const parsed = parseBatonCommand(body);
    if (parsed === undefined) return undefined;
    const installationId = event.installationId;
    const reply = (text: string) => async (tx: Transaction) =>
      replyTo(tx, event, { installationId, repository, number, body: `@${login} ${text}` });
    if (!parsed.ok) {
      // Only `/baton run` mistakes are this part's to answer (not drafts', approvals').
      const line = body.split(/\r?\n/).find((l) => /^\s*\/baton\s+run(\s|$)/.test(l));
      if (line === undefined || /\s--draft(\s|$)/.test(line)) return undefined;
      return reply(parsed.error);
    }
    const command = parsed.command;
    if (command.kind !== "run" || command.draft) return undefined;

    const octokit = app.github.installation(installationId);
    const permission = await repositoryPermission(octokit, repository, login);
    if (!hasPermission(permission, RUN_PERMISSION)) {
      return reply(
        `starting \`${command.flow}\` needs ${RUN_PERMISSION} permission on ${repository}; ` +
          `GitHub says you have ${permission}. Ask a maintainer to run it, or for write access.`,
      );
    }
    let headSha: string | undefined;
    let pullRequest: number | undefined;
    if (issue?.pull_request) {
      const [owner = "", repo = ""] = repository.split("/");
      const { data } = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
      headSha = data.head.sha;
      pullRequest = number;
    }

    return async (tx) => {
      const answer = (text: string) => reply(text)(tx);
      const installed = await getInstalledRepository(tx, repository);
      const flow = installed ? await getLiveFlow(tx, repository, command.flow) : undefined;
      if (!installed || !flow) {
        const names = installed ? await liveFlowNames(tx, repository) : [];
        return answer(
          `${repository} has no live flow \`${command.flow}\` (flows are live once ` +
            `\`.github/flows/${command.flow}.yml\` is valid on the default branch). ` +
            (names.length > 0
              ? `Live flows: ${names.map((n) => `\`${n}\``).join(", ")}.`
              : "It has no live flows yet."),
        );
      }
      if (flow.definition.on?.manual === undefined) {
        return answer(
          `flow \`${command.flow}\` cannot be started by hand: its \`on\` has no \`manual\`. ` +
            "Add `manual: {}` under `on:` on the default branch to allow it.",
        );
      }
      const outcome = await startRunUnderSavepoint(tx, app, {
        flowFile: { versionId: flow.versionId },
        inputs: command.inputs,
        actor: login,
        trigger: {
          event: "manual",
          // The issue (or pull request) as GitHub sent it, as for `issues` events, so that
          // `trigger.payload.issue.number` means the same whatever started the run.
          payload: {
            via: "comment",
            comment: { id: commentId ?? null, url: commentUrl ?? null },
            issue: issue as Json,
          },
        },
        github: {
          installationId: installed.installationId,
          headSha: headSha ?? installed.liveSha ?? flow.versionSha,
          issue: number,
          ...(pullRequest !== undefined ? { pullRequest } : {}),
        },
      });
      if (outcome.ok) {
        const { run } = outcome;
        const name = flow.definition.name ?? flow.flow;
        return answer(
          `Started ${run.flow}#${run.number}` +
            (run.status === "queued" ? " (queued behind its concurrency group)" : "") +
            `. Its check run **baton / ${name}** follows it; or \`baton show ${run.flow}#${run.number}\`.`,
        );
      }
      const error = outcome.error;
      if (error instanceof InvalidInputsError) {
        return answer(
          `the inputs do not fit flow \`${command.flow}\`:\n` +
            error.errors.map((e) => `- ${e}`).join("\n") +
            `\n\nPass them as \`/baton run ${command.flow} name=value …\`.`,
        );
      }
      if (error instanceof ConcurrencyRejectedError || error instanceof ConcurrencyGroupError) {
        return answer(`the run was not started. ${error.message}`);
      }
      // Anything else is Baton's fault, not the commenter's: fail the delivery so it is
      // retried (and logged) rather than answered with an internal error.
      app.log.error("starting a run from a comment failed", {
        delivery: event.id,
        repository,
        flow: command.flow,
        error: errorMessage(error),
      });
      throw error;
    };
  };
}

async function replyTo(
  tx: Transaction,
  event: GitHubEvent,
  target: { installationId: number; repository: string; number: number; body: string },
): Promise<void> {
  const [owner = "", repo = ""] = target.repository.split("/");
  await enqueueGitHubRequest(tx, {
    installationId: target.installationId,
    route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    params: { owner, repo, issue_number: target.number, body: target.body },
    key: `${event.id}/run-command-reply`,
  });
}
