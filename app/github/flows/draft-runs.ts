/**
 * Running a pull request's draft flow, on request: a "Run draft" button of the
 * `baton / flows` check run, or a `/baton run <flow> --draft` comment on the pull request.
 *
 * Untrusted content never runs by itself (DESIGN.md rule 7): the person asking needs
 * write permission on the repository, asked of GitHub at that moment (rule 8), and a pull
 * request from a fork is refused unless the live `.github/baton.yml` allows it. Every
 * answer, yes or no, is a comment on the pull request, sent through the outbox once the
 * delivery commits and keyed by the delivery, so a redelivery answers once.
 */
import type { FlowDefinition } from "../../../flows-schema/schema.js";
import type { Json } from "../../engine/types.js";
import {
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  InvalidInputsError,
} from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import { saveFlowVersion } from "../../store/flow-versions.js";
import { underSavepoint } from "../../store/savepoint.js";
import { parseBatonCommand } from "../baton-command.js";
import type { EventHandler, GitHubApp, GitHubEvent, Write } from "../github-app.js";
import type { Octokit } from "../github-client.js";
import { enqueueGitHubRequest } from "../outbox.js";
import { hasPermission, repositoryPermission } from "../permissions.js";
import { listDrafts } from "../../store/live-flows.js";
import { getRepository } from "../../store/repositories.js";
import { loadFlowsAt } from "./load-flows.js";
import {
  FLOWS_CHECK_NAME,
  FLOWS_EXTERNAL_ID,
  RUN_DRAFT_ACTION,
  shortSha,
} from "./render-flows-check.js";
import { byName } from "./order.js";

interface RepositoryPayload {
  full_name: string;
}

/** What a draft run needs, once the request is accepted. */
interface DraftRunRequest {
  repository: string;
  installationId: number;
  pullRequest: number;
  headSha: string;
  flow: string;
  user: string;
  inputs: Record<string, Json>;
  via: "check-run" | "comment";
  /** A stored version, or one to store (a draft asked for by comment before its check ran). */
  version:
    | { id: string }
    | {
        path: string;
        name: string;
        source: string;
        definition: FlowDefinition;
      };
}

/** `check_run.requested_action` for the "Run draft" buttons of `baton / flows`. */
export const onRunDraftButton: EventHandler = async (event, app) => {
  const payload = event.payload as {
    check_run?: { name?: string; head_sha?: string; external_id?: string | null };
    requested_action?: { identifier?: string };
    sender?: { login?: string };
    repository?: RepositoryPayload;
  };
  const identifier = payload.requested_action?.identifier ?? "";
  if (
    payload.check_run?.name !== FLOWS_CHECK_NAME ||
    !payload.check_run.external_id?.startsWith(FLOWS_EXTERNAL_ID) ||
    !identifier.startsWith(RUN_DRAFT_ACTION)
  )
    return undefined;
  const repository = payload.repository?.full_name;
  const headSha = payload.check_run.head_sha;
  const user = payload.sender?.login;
  if (!repository || !headSha || !user || event.installationId === undefined) return undefined;
  const index = Number(identifier.slice(RUN_DRAFT_ACTION.length));
  const runnable = (await listDrafts(app.store, repository, headSha))
    .filter((draft) => draft.versionId !== undefined)
    .sort((a, b) => byName(a.flow, b.flow));
  const draft = runnable[index];
  if (!draft?.versionId) {
    app.log.warn("a Run draft button names no stored draft; ignored", {
      repository,
      headSha,
      identifier,
      delivery: event.id,
    });
    return undefined;
  }
  const octokit = app.github.installation(event.installationId);
  const refusal = await authorize(app, octokit, repository, draft.pullRequest, user);
  if (typeof refusal === "string") return reply(event, repository, draft.pullRequest, refusal);
  // The button runs what its check run showed: the draft at that check run's commit.
  return startDraftRun(app, event, {
    repository,
    installationId: event.installationId,
    pullRequest: draft.pullRequest,
    headSha,
    flow: draft.flow,
    user,
    inputs: {},
    via: "check-run",
    version: { id: draft.versionId },
  });
};

/** `issue_comment.created` with `/baton run <flow> --draft …`; other commands are not ours. */
export const onRunDraftComment: EventHandler = async (event, app) => {
  const payload = event.payload as {
    issue?: { number?: number; pull_request?: unknown };
    comment?: { body?: string; user?: { login?: string; type?: string } };
    repository?: RepositoryPayload;
  };
  const parsed = parseBatonCommand(payload.comment?.body ?? "");
  if (!parsed?.ok || parsed.command.kind !== "run" || !parsed.command.draft) return undefined;
  const command = parsed.command;
  const repository = payload.repository?.full_name;
  const number = payload.issue?.number;
  const user = payload.comment?.user?.login;
  if (!repository || number === undefined || !user || event.installationId === undefined)
    return undefined;
  if (payload.comment?.user?.type === "Bot") return undefined; // never answer a bot (or ourselves)
  if (!payload.issue?.pull_request)
    return reply(
      event,
      repository,
      number,
      `@${user} \`--draft\` runs the draft version of a flow in a pull request: comment on the pull request that changes \`${command.flow}\`.`,
    );
  const octokit = app.github.installation(event.installationId);
  const authorized = await authorize(app, octokit, repository, number, user);
  if (typeof authorized === "string") return reply(event, repository, number, authorized);
  const headSha = authorized.headSha;
  const stored = (await listDrafts(app.store, repository, headSha)).find(
    (draft) => draft.flow === command.flow,
  );
  const base = {
    repository,
    installationId: event.installationId,
    pullRequest: number,
    headSha,
    flow: command.flow,
    user,
    inputs: command.inputs,
    via: "comment" as const,
  };
  if (stored?.versionId)
    return startDraftRun(app, event, { ...base, version: { id: stored.versionId } });
  // Not stored: the pull request's check has not run for this head yet, or the flow is
  // unchanged there. Read it at the head now.
  const loaded = await loadFlowsAt(octokit, repository, headSha);
  const file = loaded.files.find((f) => f.name === command.flow);
  if (!file)
    return reply(
      event,
      repository,
      number,
      `@${user} there is no flow \`${command.flow}\` at ${shortSha(headSha)}: flows are \`.github/flows/<name>.yml\` (${
        loaded.files.map((f) => `\`${f.name}\``).join(", ") || "none here"
      }).`,
    );
  if (!file.flow || file.source === undefined)
    return reply(
      event,
      repository,
      number,
      `@${user} the draft of \`${command.flow}\` at ${shortSha(headSha)} is not valid, so it cannot run: the \`${FLOWS_CHECK_NAME}\` check run shows each problem.`,
    );
  return startDraftRun(app, event, {
    ...base,
    version: { path: file.path, name: file.name, source: file.source, definition: file.flow },
  });
};

/**
 * May `user` run drafts of this pull request? Asks GitHub for the user's permission and
 * the pull request's head (a fork's head repository differs from the base). Returns the
 * head, or the refusal to answer with.
 */
async function authorize(
  app: GitHubApp,
  octokit: Octokit,
  repository: string,
  pullRequest: number,
  user: string,
): Promise<{ headSha: string } | string> {
  const permission = await repositoryPermission(octokit, repository, user);
  if (!hasPermission(permission, "write"))
    return (
      `@${user} running a draft flow needs write permission on ${repository}, and GitHub says ` +
      `you have ${permission === "none" ? "no" : permission} permission. Ask a maintainer to run it.`
    );
  const [owner = "", repo = ""] = repository.split("/");
  const { data: pull } = await octokit.rest.pulls.get({ owner, repo, pull_number: pullRequest });
  const headRepository = pull.head.repo?.full_name;
  const fromFork = headRepository?.toLowerCase() !== repository.toLowerCase();
  if (fromFork) {
    const settings = (await getRepository(app.store, repository))?.settings;
    if (!settings?.drafts.forks)
      return (
        `@${user} draft flows of pull requests from forks do not run in ${repository}: the ` +
        "live `.github/baton.yml` does not allow it (`drafts: { forks: true }` would)."
      );
  }
  if (pull.state !== "open")
    return `@${user} pull request #${pullRequest} is ${pull.state}; drafts run only while it is open.`;
  return { headSha: pull.head.sha };
}

function startDraftRun(app: GitHubApp, event: GitHubEvent, request: DraftRunRequest): Write {
  return async (tx) => {
    let versionId: string;
    if ("id" in request.version) versionId = request.version.id;
    else {
      const saved = await saveFlowVersion(tx, {
        sourceKind: "repository",
        repository: request.repository,
        path: request.version.path,
        sha: request.headSha,
        name: request.version.name,
        definition: request.version.definition,
        source: request.version.source,
      });
      versionId = saved.id;
    }
    // A refusal of the run (its inputs, its concurrency group) is answered, not retried:
    // undo what starting it wrote so far, and keep the answer.
    let message: string;
    try {
      const started = await underSavepoint(tx, () =>
        app.service.startRunIn(tx, {
          flowFile: { versionId },
          inputs: request.inputs,
          actor: request.user,
          trigger: {
            event: "manual",
            payload: {
              draft: true,
              via: request.via,
              pull_request: request.pullRequest,
              head_sha: request.headSha,
            },
          },
          github: {
            installationId: request.installationId,
            headSha: request.headSha,
            pullRequest: request.pullRequest,
          },
        }),
      );
      message =
        `@${request.user} started \`${request.flow}#${started.number}\`, a run of the draft of ` +
        `\`${request.flow}\` at ${shortSha(request.headSha)}` +
        (started.status === "queued" ? " (queued behind its concurrency group)" : "") +
        `. Its check run \`baton / ${started.flow}\` follows it.`;
    } catch (error: unknown) {
      if (
        !(error instanceof InvalidInputsError) &&
        !(error instanceof ConcurrencyRejectedError) &&
        !(error instanceof ConcurrencyGroupError)
      )
        throw error;
      message = `@${request.user} the draft of \`${request.flow}\` did not start.\n\n${error.message}`;
      if (request.via === "check-run" && error instanceof InvalidInputsError)
        message += `\n\nThe button runs without inputs: comment \`/baton run ${request.flow} --draft name=value …\` instead.`;
    }
    await enqueueReply(
      tx,
      event,
      request.installationId,
      request.repository,
      request.pullRequest,
      message,
    );
  };
}

function reply(
  event: GitHubEvent,
  repository: string,
  issue: number,
  body: string,
): Write | undefined {
  const installationId = event.installationId;
  if (installationId === undefined) return undefined;
  return (tx) => enqueueReply(tx, event, installationId, repository, issue, body);
}

async function enqueueReply(
  tx: Transaction,
  event: GitHubEvent,
  installationId: number,
  repository: string,
  issue: number,
  body: string,
): Promise<void> {
  const [owner = "", repo = ""] = repository.split("/");
  await enqueueGitHubRequest(tx, {
    installationId,
    route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    params: { owner, repo, issue_number: issue, body },
    key: `flows-draft/${event.id}`,
  });
}
