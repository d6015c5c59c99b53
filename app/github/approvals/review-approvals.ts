/**
 * Approvals by pull-request review (`via: review`).
 *
 * - `pull_request_review.submitted`: `approved` approves, `changes_requested` rejects,
 *   `commented` is ignored. Every approval step waiting on that pull request (the run's
 *   own, or the one its `approval.pull-request` names) with `review` among its `via`
 *   receives the decision, with the reviewer's facts asked of GitHub now. A review made
 *   on a commit other than the pull request's head now (or, for the run's own pull
 *   request, other than the commit the run is about) is stale and does not count. A
 *   review that does not count is answered with a comment on the pull request saying why.
 * - `pull_request_review.dismissed`: the reviewer's review approvals are withdrawn.
 * - `pull_request.synchronize`: new commits make earlier approvals stale. Every approval
 *   of a waiting step about that pull request that was given at another commit than the
 *   head GitHub reports now is withdrawn (`keepCommit`: so a late push delivery never
 *   withdraws an approval already made on the new head). Approvals of every channel are
 *   withdrawn, not only reviews: whoever approved saw the pull request as it was.
 */
import type { ApproverFacts } from "../../engine/types.js";
import type { EventHandler, GitHubEvent, Write } from "../github-app.js";
import type { WaitingApproval } from "./waiting-approvals.js";
import { approverFacts, pullRequestHead } from "./approver-facts.js";
import {
  replyOn,
  runName,
  submitDecision,
  waitingApprovalsAbout,
  withdrawApprovals,
} from "./waiting-approvals.js";

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

function common(event: GitHubEvent) {
  const repository = object(event.payload.repository)?.full_name;
  const pull = object(event.payload.pull_request);
  const number = pull?.number ?? event.payload.number;
  const sender = object(event.payload.sender)?.login;
  if (
    typeof repository !== "string" ||
    typeof number !== "number" ||
    event.installationId === undefined
  )
    return undefined;
  return {
    repository,
    number,
    installationId: event.installationId,
    sender: typeof sender === "string" ? sender : "",
  };
}

export const handleReviewSubmitted: EventHandler = async (event, app) => {
  const where = common(event);
  const review = object(event.payload.review);
  const user = object(review?.user)?.login;
  const state = typeof review?.state === "string" ? review.state.toLowerCase() : "";
  const commit = review?.commit_id;
  if (!where || typeof user !== "string" || typeof commit !== "string") return undefined;
  if (state !== "approved" && state !== "changes_requested") return undefined;
  const decision = state === "approved" ? "approve" : "reject";
  const body = typeof review?.body === "string" ? review.body.trim() : "";
  const waiting = (await waitingApprovalsAbout(app, where.repository, where.number)).filter(
    (w) => w.pullRequest === where.number && w.spec.via.includes("review"),
  );
  if (waiting.length === 0) return undefined;
  const judged: { target: WaitingApproval; facts: ApproverFacts }[] = [];
  for (const target of waiting) {
    const facts = await approverFacts(app, target.run, user, target.spec, {
      step: target.step,
      reviewCommit: commit,
    });
    judged.push({ target, facts });
  }
  return async (tx) => {
    for (const { target, facts } of judged) {
      const outcome = await submitDecision(tx, app, target, {
        user,
        decision,
        via: "review",
        ...(body !== "" ? { comment: body } : {}),
        facts,
      });
      const refusal =
        outcome.kind === "not-waiting"
          ? outcome.message
          : outcome.evaluated && !outcome.evaluated.counted
            ? (outcome.evaluated.reason ?? "the approval policy did not count it")
            : undefined;
      if (refusal === undefined) continue;
      const what = decision === "approve" ? "approval" : "request for changes";
      await replyOn(
        tx,
        {
          installationId: where.installationId,
          repository: where.repository,
          number: where.number,
        },
        `@${user} your ${what} does not count for \`${target.step}\` of ${runName(target.run)}: ${refusal}.`,
        `review/${event.id}/${target.run.id}/${target.step}`,
      );
    }
  };
};

export const handleReviewDismissed: EventHandler = async (event, app) => {
  const where = common(event);
  const user = object(object(event.payload.review)?.user)?.login;
  if (!where || typeof user !== "string") return undefined;
  const waiting = (await waitingApprovalsAbout(app, where.repository, where.number)).filter(
    (w) => w.pullRequest === where.number,
  );
  if (waiting.length === 0) return undefined;
  return async (tx) => {
    for (const target of waiting) {
      await withdrawApprovals(tx, app, target.run.id, {
        step: target.step,
        user,
        via: "review",
        reason: `${user}'s review was dismissed${where.sender ? ` by ${where.sender}` : ""}`,
        by: where.sender || user,
      });
    }
  };
};

export const handlePullRequestSynchronize: EventHandler = async (event, app) => {
  const where = common(event);
  if (!where) return undefined;
  const waiting = (await waitingApprovalsAbout(app, where.repository, where.number)).filter(
    (w) => w.pullRequest === where.number,
  );
  if (waiting.length === 0) return undefined;
  // The head now, not the payload's `after`: deliveries may arrive out of order.
  const octokit = app.github.installation(where.installationId);
  const head = await pullRequestHead(octokit, where.repository, where.number);
  const write: Write = async (tx) => {
    for (const target of waiting) {
      await withdrawApprovals(tx, app, target.run.id, {
        step: target.step,
        keepCommit: head,
        reason: `new commits were pushed to #${where.number} (head ${head.slice(0, 7)}); approvals of earlier commits no longer count`,
        by: where.sender || "github",
      });
    }
  };
  return write;
};
