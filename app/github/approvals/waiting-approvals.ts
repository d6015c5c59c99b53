/**
 * What the approval channels share: finding the approval steps a pull request or issue
 * concerns, submitting a decision in the delivery's transaction (the engine judges it and
 * records it either way: the audit trail), withdrawing approvals, and replying.
 */
import type { ApprovalSpec } from "../../../flows-schema/schema.js";
import type { ApprovalEvaluated, ApprovalVia, ApproverFacts } from "../../engine/types.js";
import {
  RunFinishedError,
  StepNotFoundError,
  StepNotWaitingError,
  type Withdrawal,
} from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import { getFlowVersion } from "../../store/flow-versions.js";
import type { GitHubApp } from "../github-app.js";
import { enqueueGitHubRequest } from "../outbox.js";
import type { GitHubRun } from "./approver-facts.js";
import { approvalPullRequest } from "./approver-facts.js";
import { unfinishedRunsAbout } from "../../store/approval-runs.js";

/** An approval step that waits now. */
export interface WaitingApproval {
  run: GitHubRun;
  step: string;
  spec: ApprovalSpec;
  /** The pull request the approval is about (its reviews decide it), if any. */
  pullRequest: number | undefined;
}

/**
 * Approval steps that wait now and that `number` (a pull request or issue of
 * `repository`) concerns: the run's own pull request or issue, or the pull request the
 * step's `approval.pull-request` names.
 */
export async function waitingApprovalsAbout(
  app: GitHubApp,
  repository: string,
  number: number,
): Promise<WaitingApproval[]> {
  const found: WaitingApproval[] = [];
  for (const run of await unfinishedRunsAbout(app.store, repository, number)) {
    if (!run.github) continue;
    const githubRun = run as GitHubRun;
    const version = await getFlowVersion(app.store, run.flowVersionId);
    for (const [step, definition] of Object.entries(version?.definition.steps ?? {})) {
      const spec = definition.approval;
      if (!spec || run.state?.steps[step]?.status !== "waiting") continue;
      const pullRequest = await approvalPullRequest(app, githubRun, spec, step);
      const place = run.github.pullRequest ?? run.github.issue;
      if (pullRequest !== number && place !== number) continue;
      found.push({ run: githubRun, step, spec, pullRequest });
    }
  }
  return found;
}

export type SubmitOutcome =
  | { kind: "judged"; evaluated: ApprovalEvaluated | undefined }
  /** The step stopped waiting (or the run ended) between the lookup and the write. */
  | { kind: "not-waiting"; message: string };

export async function submitDecision(
  tx: Transaction,
  app: GitHubApp,
  waiting: WaitingApproval,
  submission: {
    user: string;
    decision: "approve" | "reject";
    via: ApprovalVia;
    comment?: string;
    facts: ApproverFacts;
  },
): Promise<SubmitOutcome> {
  try {
    const evaluated = await app.service.submitApprovalIn(
      tx,
      waiting.run.id,
      waiting.step,
      submission.decision,
      {
        user: submission.user,
        via: submission.via,
        facts: submission.facts,
        ...(submission.comment !== undefined && submission.comment !== ""
          ? { comment: submission.comment }
          : {}),
      },
    );
    return { kind: "judged", evaluated };
  } catch (error: unknown) {
    if (
      error instanceof StepNotWaitingError ||
      error instanceof StepNotFoundError ||
      error instanceof RunFinishedError
    ) {
      return { kind: "not-waiting", message: error.message };
    }
    throw error;
  }
}

/**
 * Withdraw counted approvals of a waiting step (`approval.withdrawn`), in `tx`, through
 * the runtime's door, which judges whether any counted approval matches: nothing is
 * appended when none does or the step no longer waits.
 */
export function withdrawApprovals(
  tx: Transaction,
  app: GitHubApp,
  runId: string,
  withdrawal: Withdrawal,
): Promise<boolean> {
  return app.service.door.withdrawApprovals(tx, runId, withdrawal, app.now());
}

/** A comment on an issue or pull request, once the delivery's writes commit. */
export async function replyOn(
  tx: Transaction,
  where: { installationId: number; repository: string; number: number },
  body: string,
  key: string,
): Promise<void> {
  const [owner = "", repo = ""] = where.repository.split("/");
  await enqueueGitHubRequest(tx, {
    installationId: where.installationId,
    route: "POST /repos/{owner}/{repo}/issues/{issue_number}/comments",
    params: { owner, repo, issue_number: where.number, body },
    key,
  });
}

/** `release#12`: how replies name a run. */
export function runName(run: GitHubRun): string {
  return `${run.flow}#${run.number}`;
}
