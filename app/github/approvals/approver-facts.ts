/**
 * The facts an approval policy judges, asked of GitHub at the moment of the decision
 * (DESIGN.md rule 8), the same way for every channel: reviews, check-run buttons,
 * `/baton approve` comments, and the CLI/API.
 *
 * - permission: the user's repository permission (`collaborators/{u}/permission`);
 * - teams: the policy's teams the user is an active member of (team memberships API);
 * - codeowner: whether CODEOWNERS on the default branch names the user (directly or
 *   through a team) as an owner of the flow file, or of any of the step's `paths`;
 * - commit / stale: for an approval about a pull request (the run's own, or the step's
 *   `approval.pull-request`), the pull request's head now; a review counts only if it was
 *   made on that head, and, for the run's own pull request, on the commit the run is
 *   about (`run.github.headSha`): an approval of newer code does not approve this run.
 */
import type { ApprovalSpec } from "../../../flows-schema/schema.js";
import type { ApproverFacts } from "../../engine/types.js";
import { getFlowVersion } from "../../store/flow-versions.js";
import type { Run } from "../../store/model.js";
import type { GitHubApp } from "../github-app.js";
import type { Octokit } from "../github-client.js";
import type { Permission } from "../permissions.js";
import { repositoryPermission } from "../permissions.js";
import { recordedPullRequest } from "../../store/approval-runs.js";
import { ownersOf, readCodeowners } from "./codeowners.js";

export interface ApproverFactsOptions {
  /** The approval step: which pull request the approval is about (`facts.commit`). */
  step?: string;
  /** The permission, when already asked of GitHub for this decision. */
  permission?: Permission;
  /** For a review: the commit it was made on (`commit_id`). */
  reviewCommit?: string;
}

/** A run of a repository's flow, with its place on GitHub. */
export type GitHubRun = Run & { github: NonNullable<Run["github"]> };

export async function approverFacts(
  app: GitHubApp,
  run: GitHubRun,
  user: string,
  spec: ApprovalSpec,
  options: ApproverFactsOptions = {},
): Promise<ApproverFacts> {
  const octokit = app.github.installation(run.github.installationId);
  const permission =
    options.permission ?? (await repositoryPermission(octokit, run.repository, user));
  const membership = teamMembership(octokit, user);
  const teams: string[] = [];
  for (const team of spec.approvers.teams ?? []) if (await membership(team)) teams.push(team);
  const facts: ApproverFacts = { permission, teams, codeowner: false };
  if (spec.approvers.codeowners === true) {
    facts.codeowner = await isCodeowner(app, octokit, run, user, spec, membership);
  }
  const pull = await approvalPullRequest(app, run, spec, options.step);
  if (pull !== undefined) {
    const head = await pullRequestHead(octokit, run.repository, pull);
    facts.commit = options.reviewCommit ?? head;
    if (options.reviewCommit !== undefined) {
      const ownPullRequest = pull === run.github.pullRequest && spec["pull-request"] === undefined;
      facts.stale =
        options.reviewCommit !== head ||
        (ownPullRequest && options.reviewCommit !== run.github.headSha);
    }
  } else if (options.reviewCommit !== undefined) {
    facts.commit = options.reviewCommit;
  }
  return facts;
}

/**
 * `approverFacts` for a step named by id (the CLI/API's `baton approve <run> <step>`),
 * with the permission GitHub just gave. A local run, or a step that is not an approval,
 * has no policy to look facts up for: the permission alone (the engine then refuses a
 * decision on a step that is not an approval, and says so).
 */
export async function approverFactsForStep(
  app: GitHubApp,
  run: Run,
  user: string,
  step: string,
  permission: Permission,
): Promise<ApproverFacts> {
  const version = await getFlowVersion(app.store, run.flowVersionId);
  const spec = version?.definition.steps[step]?.approval;
  if (!run.github || !spec) return { permission, teams: [], codeowner: false };
  return approverFacts(app, run as GitHubRun, user, spec, { step, permission });
}

/**
 * The pull request an approval step is about: the one its `approval.pull-request` names
 * (recorded when the step asked for approval), else the run's own.
 */
export async function approvalPullRequest(
  app: GitHubApp,
  run: GitHubRun,
  spec: ApprovalSpec,
  step: string | undefined,
): Promise<number | undefined> {
  if (spec["pull-request"] !== undefined) {
    return step === undefined ? undefined : recordedPullRequest(app.store, run.id, step);
  }
  return run.github.pullRequest;
}

export async function pullRequestHead(
  octokit: Octokit,
  repository: string,
  number: number,
): Promise<string> {
  const [owner = "", repo = ""] = repository.split("/");
  const { data } = await octokit.rest.pulls.get({ owner, repo, pull_number: number });
  return data.head.sha;
}

/** Active membership of `org/slug` teams, asked once per team for this decision. */
function teamMembership(octokit: Octokit, user: string): (team: string) => Promise<boolean> {
  const asked = new Map<string, Promise<boolean>>();
  return (team) => {
    const key = team.toLowerCase();
    let answer = asked.get(key);
    if (!answer) {
      const [org = "", slug = ""] = team.replace(/^@/, "").split("/");
      answer = octokit
        .request("GET /orgs/{org}/teams/{team_slug}/memberships/{username}", {
          org,
          team_slug: slug,
          username: user,
        })
        .then(
          ({ data }) => data.state === "active",
          (error: unknown) => {
            if ((error as { status?: number }).status === 404) return false;
            throw error;
          },
        );
      asked.set(key, answer);
    }
    return answer;
  };
}

async function isCodeowner(
  app: GitHubApp,
  octokit: Octokit,
  run: GitHubRun,
  user: string,
  spec: ApprovalSpec,
  membership: (team: string) => Promise<boolean>,
): Promise<boolean> {
  const codeowners = await readCodeowners(octokit, run.repository);
  if (!codeowners) return false;
  let paths = spec.approvers.paths;
  if (paths === undefined || paths.length === 0) {
    const version = await getFlowVersion(app.store, run.flowVersionId);
    paths = version ? [version.path] : [];
  }
  for (const path of paths) {
    for (const owner of ownersOf(codeowners.rules, path)) {
      if (!owner.startsWith("@")) continue; // an e-mail: GitHub logins only
      const name = owner.slice(1);
      if (name.includes("/")) {
        if (await membership(name)) return true;
      } else if (name.toLowerCase() === user.toLowerCase()) return true;
    }
  }
  return false;
}
