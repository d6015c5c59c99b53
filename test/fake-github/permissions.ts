/**
 * GitHub App permissions as the fake enforces them, as GitHub does:
 *
 * - an installation has the permissions its app asked for (by default the ones Baton's
 *   app.yml asks for, so tests run under what a real installation of Baton would grant);
 * - an installation token carries repository ids and permissions: minted without
 *   `permissions` it has all of the installation's, and asking for one the installation
 *   lacks (or `write` where it has `read`) is answered 422;
 * - every route needs a permission of the token (one of several, where GitHub accepts
 *   several), else 403 "Resource not accessible by integration".
 *
 * Which route needs which permission is not in GitHub's OpenAPI description; it is GitHub's
 * docs' "Permissions required for GitHub Apps" (and each REST page's "Fine-grained access
 * tokens" section), for the operations the fake implements.
 */
import { readFileSync } from "node:fs";
import { parse } from "yaml";

export type AppPermissionLevel = "read" | "write";
export type AppPermissions = Readonly<Record<string, AppPermissionLevel>>;

/** Baton's app.yml `default_permissions`: what an installation of Baton grants. */
export const BATON_APP_PERMISSIONS: AppPermissions = (() => {
  const manifest = parse(readFileSync(new URL("../../../app.yml", import.meta.url), "utf8")) as {
    default_permissions?: Record<string, AppPermissionLevel>;
  };
  return { ...manifest.default_permissions };
})();

/** One permission at a level; `metadata: read` is what every token that can see a repo has. */
type Need = readonly [name: string, level: AppPermissionLevel];

/**
 * What each implemented operation needs of an installation token: any one of the list.
 * An empty list: any installation token (e.g. listing its own repositories).
 */
export const OPERATION_PERMISSIONS: Readonly<Record<string, readonly Need[]>> = {
  "apps/list-repos-accessible-to-installation": [],
  "repos/get": [["metadata", "read"]],
  "repos/get-collaborator-permission-level": [["metadata", "read"]],
  "repos/get-content": [["contents", "read"]],
  "git/get-tree": [["contents", "read"]],
  "git/get-blob": [["contents", "read"]],
  "git/get-ref": [["contents", "read"]],
  "checks/create": [["checks", "write"]],
  "checks/update": [["checks", "write"]],
  "checks/get": [["checks", "read"]],
  "checks/list-for-ref": [["checks", "read"]],
  "issues/create": [["issues", "write"]],
  "issues/create-comment": [
    ["issues", "write"],
    ["pull_requests", "write"],
  ],
  "issues/list-comments": [
    ["issues", "read"],
    ["pull_requests", "read"],
  ],
  "issues/add-labels": [
    ["issues", "write"],
    ["pull_requests", "write"],
  ],
  "pulls/get": [["pull_requests", "read"]],
  "pulls/list-files": [["pull_requests", "read"]],
  "pulls/list-reviews": [["pull_requests", "read"]],
  "pulls/merge": [["contents", "write"]],
  "teams/get-membership-for-user-in-org": [["members", "read"]],
  "actions/create-workflow-dispatch": [["actions", "write"]],
  "actions/get-workflow-run": [["actions", "read"]],
  "actions/list-workflow-runs-for-repo": [["actions", "read"]],
  "actions/list-workflow-runs": [["actions", "read"]],
  "actions/cancel-workflow-run": [["actions", "write"]],
  "actions/force-cancel-workflow-run": [["actions", "write"]],
  "actions/review-custom-gates-for-run": [["deployments", "write"]],
};

/** git's smart HTTP (clone, fetch) reads contents. */
export const GIT_FETCH_NEEDS: readonly Need[] = [["contents", "read"]];

function covers(has: AppPermissionLevel | undefined, needs: AppPermissionLevel): boolean {
  return has === "write" || (has === "read" && needs === "read");
}

/** Whether a token's permissions satisfy one of `needs` (any token, for an empty list). */
export function allows(token: AppPermissions, needs: readonly Need[]): boolean {
  return needs.length === 0 || needs.some(([name, level]) => covers(token[name], level));
}

/** `issues: write or pull_requests: write`, for refusals. */
export function describeNeeds(needs: readonly Need[]): string {
  return needs.map(([name, level]) => `${name}: ${level}`).join(" or ");
}

/**
 * The permissions a token minted with `requested` gets, or undefined when one is not the
 * installation's (GitHub's 422). GitHub adds `metadata: read` to every token that can read
 * anything of a repository.
 */
export function grant(
  installation: AppPermissions,
  requested: Record<string, unknown> | undefined,
): Record<string, AppPermissionLevel> | undefined {
  if (requested === undefined) return { ...installation };
  const granted: Record<string, AppPermissionLevel> = {};
  for (const [name, level] of Object.entries(requested)) {
    if (level !== "read" && level !== "write") return undefined;
    if (!covers(installation[name], level)) return undefined;
    granted[name] = level;
  }
  if (Object.keys(granted).length > 0 && installation.metadata !== undefined)
    granted.metadata ??= "read";
  return granted;
}

/** GitHub's message for a token asking more than the installation has. */
export const PERMISSIONS_NOT_GRANTED =
  "The permissions requested are not granted to this installation.";
