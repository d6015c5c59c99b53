/**
 * Clicks on a run's check-run buttons (`check_run.requested_action`): Cancel, Retry,
 * Approve, Reject. GitHub lets anyone who can see the check run click, and tells the app
 * who did (`sender`), so every click is checked here, against GitHub, at that moment
 * (DESIGN.md rule 8):
 * - Cancel and Retry need write permission on the run's repository;
 * - Approve and Reject go to the run's approval policy with the facts GitHub reported,
 *   built by the approvals part's `approverFacts` (permission, membership of the
 *   policy's teams, code ownership, the pull request's head); the engine decides whether
 *   the decision counts, and records it in the audit trail either way.
 *
 * The answer goes where the click was made: a note on the check run (the latest click and
 * what came of it) and, when a click is refused, a comment on the run's pull request or
 * issue saying why. The run's change, the note and the comment commit together with the
 * delivery (the comment through the outbox, once committed).
 */
import type { ApproverFacts } from "../../engine/types.js";
import {
  RunFinishedError,
  RunNotFinishedError,
  StepNotFoundError,
  StepNotWaitingError,
  syncCheckRunTask,
} from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import { getFlowVersion } from "../../store/flow-versions.js";
import { getRunById } from "../../store/runs.js";
import { enqueueTasks } from "../../store/tasks.js";
import type { GitHubRun } from "../approvals/approver-facts.js";
import { approverFacts } from "../approvals/approver-facts.js";
import type { EventHandler, GitHubApp, GitHubEvent, Write } from "../github-app.js";
import { enqueueGitHubRequest } from "../outbox.js";
import type { Permission } from "../permissions.js";
import { hasPermission, repositoryPermission } from "../permissions.js";
import { lockRunLastSeq, setCheckRunNote } from "../../store/check-runs.js";
import type { ParsedAction } from "./render.js";
import { parseActionIdentifier } from "./render.js";

interface RequestedActionPayload {
  requested_action?: { identifier?: string };
  check_run?: { id?: number; external_id?: string | null };
  repository?: { full_name?: string };
  sender?: { login?: string };
}

/** What Cancel and Retry need. */
export const RUN_CONTROL_PERMISSION: Permission = "write";

export const handleRequestedAction: EventHandler = async (event, app) => {
  const payload = event.payload as RequestedActionPayload;
  const action = parseActionIdentifier(payload.requested_action?.identifier ?? "");
  if (!action) return undefined; // another part's button (e.g. a draft's "Run draft")
  const runId = payload.check_run?.external_id ?? "";
  const repository = payload.repository?.full_name ?? "";
  const user = payload.sender?.login ?? "";
  const run = /^[0-9a-f-]{36}$/i.test(runId) ? await getRunById(app.store, runId) : undefined;
  // The run must be the one this repository's check run shows (external_id is ours, but a
  // payload naming another repository's run must not act on it).
  if (!run?.github || run.repository.toLowerCase() !== repository.toLowerCase() || !user) {
    app.log.warn("a check-run button names no run of this repository; ignored", {
      delivery: event.id,
      repository,
      externalId: runId,
    });
    return undefined;
  }
  const installationId = event.installationId ?? run.github.installationId;
  const octokit = app.github.installation(installationId);
  const permission = await repositoryPermission(octokit, run.repository, user);
  const place = run.github.pullRequest ?? run.github.issue;
  const answer = (tx: Transaction, note: string, refused: boolean) =>
    answerClick(
      tx,
      app,
      event,
      { runId: run.id, installationId, repository, place },
      note,
      refused,
    );
  const who = `@${user}`;

  if (action.kind === "cancel" || action.kind === "retry") {
    const verb = action.kind === "cancel" ? "cancel" : "rerun";
    if (!hasPermission(permission, RUN_CONTROL_PERMISSION)) {
      const has = permission === "none" ? "no permission" : `${permission} permission`;
      return (tx) =>
        answer(
          tx,
          `${who} may not ${verb} this run: GitHub reports ${has} on ${run.repository}, and ` +
            `${verb === "cancel" ? "cancelling" : "rerunning"} needs ${RUN_CONTROL_PERMISSION}.`,
          true,
        );
    }
    return async (tx) => {
      try {
        if (action.kind === "cancel") {
          await app.service.cancelIn(tx, run.id, `cancelled by ${user} on the check run`, user);
          await answer(tx, `${who} cancelled the run.`, false);
        } else {
          await app.service.retryIn(tx, run.id, { by: user });
          await answer(tx, `${who} reran the run.`, false);
        }
      } catch (error: unknown) {
        if (!(error instanceof RunFinishedError || error instanceof RunNotFinishedError))
          throw error;
        await answer(tx, `${who} could not ${verb} the run: ${error.message}`, true);
      }
    };
  }

  // Approve or Reject: the policy of the step the button was rendered for.
  const version = await getFlowVersion(app.store, run.flowVersionId);
  const stepId = version ? Object.keys(version.definition.steps)[action.stepIndex] : undefined;
  const spec = stepId ? version?.definition.steps[stepId]?.approval : undefined;
  if (!stepId || !spec) {
    return (tx) => answer(tx, `${who}: this button names no approval step of the run.`, true);
  }
  // The facts builder every approval channel shares (teams, CODEOWNERS, the pull request's
  // head), with the permission already asked above.
  const facts = await approverFacts(app, run as GitHubRun, user, spec, {
    step: stepId,
    permission,
  });
  return approvalWrite(app, action, { runId: run.id, stepId, user, facts, who }, answer);
};

function approvalWrite(
  app: GitHubApp,
  action: ParsedAction,
  click: { runId: string; stepId: string; user: string; facts: ApproverFacts; who: string },
  answer: (tx: Transaction, note: string, refused: boolean) => Promise<void>,
): Write {
  const decision = action.kind === "reject" ? "reject" : "approve";
  const { who, stepId } = click;
  return async (tx) => {
    try {
      const verdict = await app.service.submitApprovalIn(tx, click.runId, stepId, decision, {
        user: click.user,
        via: "check-run",
        facts: click.facts,
      });
      const done = decision === "approve" ? "approved" : "rejected";
      if (verdict?.counted) {
        await answer(tx, `${who} ${done} \`${stepId}\`.`, false);
      } else {
        const why = verdict?.reason ?? "the approval policy did not count it";
        await answer(
          tx,
          `${who}'s ${decision === "approve" ? "approval" : "rejection"} of \`${stepId}\` was not counted: ${why}.`,
          true,
        );
      }
    } catch (error: unknown) {
      if (!(
        error instanceof StepNotWaitingError ||
        error instanceof StepNotFoundError ||
        error instanceof RunFinishedError
      ))
        throw error;
      await answer(tx, `${who} could not ${decision} \`${stepId}\`: ${error.message}`, true);
    }
  };
}

/**
 * Answer a click: the note on the check run (synced by the next `sync-check-run`) and, if
 * it was refused, a comment on the run's pull request or issue. Locks the run's row first,
 * as every change of the run does, so that the sync task's key is taken in the same order.
 */
async function answerClick(
  tx: Transaction,
  app: GitHubApp,
  event: GitHubEvent,
  where: { runId: string; installationId: number; repository: string; place: number | undefined },
  note: string,
  refused: boolean,
): Promise<void> {
  await lockRunLastSeq(tx, where.runId);
  await setCheckRunNote(tx, where.runId, note);
  await enqueueTasks(tx, [syncCheckRunTask(where.runId, app.now())]);
  if (refused) {
    app.log.info("a check-run button click was refused", { runId: where.runId, note });
    if (where.place !== undefined) {
      const [owner = "", repo = ""] = where.repository.split("/");
      await enqueueGitHubRequest(tx, {
        installationId: where.installationId,
        route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
        params: { owner, repo, issue_number: where.place, body: note },
        key: `check-run-click/${event.id}`,
      });
    }
  }
}
