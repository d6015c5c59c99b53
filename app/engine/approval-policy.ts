/**
 * The flow's approval policy applied to one submission. The caller looks the facts up
 * (permission, teams, CODEOWNERS, staleness) at the moment of the decision; this file only
 * judges them, and says why a submission does not count: that is the audit trail.
 */
import type { ApprovalSpec, PermissionLevel } from "../../flows-schema/schema.js";
import type { ApprovalSubmitted } from "./types.js";

const PERMISSION_RANK: Record<PermissionLevel | "none", number> = {
  none: 0,
  read: 1,
  triage: 2,
  write: 3,
  maintain: 4,
  admin: 5,
};

export type Eligibility = { eligible: true } | { eligible: false; reason: string };

/**
 * Whether a submission may count. `actor` is whoever started the run. Self-approval only
 * restricts approvals: the person who started a run may always reject it (they could
 * cancel it anyway).
 */
export function judgeSubmission(
  spec: ApprovalSpec,
  submission: ApprovalSubmitted,
  actor: string,
): Eligibility {
  const { user, facts } = submission;
  if (!spec.via.includes(submission.via)) {
    return {
      eligible: false,
      reason: `${submission.via} decisions are not accepted for this step (via: ${spec.via.join(", ")})`,
    };
  }
  if (facts.stale === true) {
    // "Older" would be wrong after a push: a review of the new head is stale too for a
    // run about the previous one.
    const made = facts.commit !== undefined ? ` (${facts.commit.slice(0, 7)})` : "";
    return {
      eligible: false,
      reason: `${user}'s review was made on a commit${made} other than the one this approval is about (stale reviews do not count)`,
    };
  }
  if (
    submission.decision === "approve" &&
    !spec["self-approval"] &&
    user.toLowerCase() === actor.toLowerCase()
  ) {
    return {
      eligible: false,
      reason: `${user} started the run, and this step does not allow self-approval`,
    };
  }
  const needed = spec.approvers.permission;
  if (PERMISSION_RANK[facts.permission] < PERMISSION_RANK[needed]) {
    const has = facts.permission === "none" ? "no permission" : `${facts.permission} permission`;
    return { eligible: false, reason: `${user} has ${has}; this approval needs ${needed}` };
  }
  const { users, teams, codeowners } = spec.approvers;
  const restricted = (users?.length ?? 0) > 0 || (teams?.length ?? 0) > 0 || codeowners === true;
  if (!restricted) return { eligible: true };
  if (users?.some((name) => name.toLowerCase() === user.toLowerCase())) return { eligible: true };
  if ((teams?.length ?? 0) > 0 && facts.teams.length > 0) return { eligible: true };
  if (codeowners === true && facts.codeowner) return { eligible: true };
  const allowed: string[] = [];
  if (users?.length) allowed.push(`users ${users.join(", ")}`);
  if (teams?.length) allowed.push(`members of ${teams.join(", ")}`);
  if (codeowners === true) allowed.push("code owners");
  return {
    eligible: false,
    reason: `${user} is not an approver of this step (allowed: ${allowed.join("; ")})`,
  };
}
