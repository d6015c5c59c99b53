/**
 * Approvals through GitHub (issue 5): pull-request reviews, `/baton approve` comments,
 * the request-approval task (pull request of `approval.pull-request`, request and reminder
 * comments), and Baton as a deployment protection rule for Actions environments. Check-run
 * buttons are the check-runs part's; every channel builds the approver's facts with
 * `approverFacts` (approver-facts.ts).
 *
 * Wire it after the triggers part (its deployment gates read the runs the triggers part
 * started in the same delivery transaction) and after the check-runs part.
 */
import type { GitHubApp, GitHubAppPart } from "../github-app.js";
import { handleApprovalComment } from "./comment-approvals.js";
import { handleDeploymentProtectionRule, startGateAnswers } from "./deployment-gates.js";
import { requestApprovalHandler } from "./request-approval.js";
import {
  handlePullRequestSynchronize,
  handleReviewDismissed,
  handleReviewSubmitted,
} from "./review-approvals.js";

export interface ApprovalsOptions {
  /** How often open deployment protection rules are looked at. (Default: 2000 ms) */
  deploymentGatePollMs?: number;
}

export function approvalsPart(app: GitHubApp, options: ApprovalsOptions = {}): GitHubAppPart {
  return {
    name: "approvals",
    events: {
      "pull_request_review.submitted": handleReviewSubmitted,
      "pull_request_review.dismissed": handleReviewDismissed,
      "pull_request.synchronize": handlePullRequestSynchronize,
      "issue_comment.created": handleApprovalComment,
      "deployment_protection_rule.requested": handleDeploymentProtectionRule,
    },
    tasks: { "request-approval": requestApprovalHandler(app) },
    start: () => startGateAnswers(app, options.deploymentGatePollMs ?? 2000),
  };
}

export { approverFacts, approvalPullRequest } from "./approver-facts.js";
export type { ApproverFactsOptions, GitHubRun } from "./approver-facts.js";
export { parseCodeowners, ownersOf, readCodeowners, CODEOWNERS_LOCATIONS } from "./codeowners.js";
export { gateVerdict, answerDecidedGates, workflowRunIdOf } from "./deployment-gates.js";
