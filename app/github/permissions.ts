/**
 * Permissions. A user's permission on a repository, asked of GitHub at the moment of the action
 * (docs/architecture.md rule 8): `GET /repos/{owner}/{repo}/collaborators/{username}/permission`.
 * Someone GitHub does not know as a collaborator (404) has no permission.
 */
import type { TokenPermissions } from "../../flows-schema/schema.js";
import { PERMISSION_SCOPES } from "../../flows-schema/schema.js";
import type { Octokit } from "./github-client.js";

/** GitHub's repository roles, weakest first. */
export const PERMISSIONS = ["none", "read", "triage", "write", "maintain", "admin"] as const;
export type Permission = (typeof PERMISSIONS)[number];

export async function repositoryPermission(
  octokit: Octokit,
  repository: string,
  username: string,
): Promise<Permission> {
  const [owner = "", repo = ""] = repository.split("/");
  try {
    const { data } = await octokit.rest.repos.getCollaboratorPermissionLevel({
      owner,
      repo,
      username,
    });
    // role_name is the finer role (maintain, triage); permission the coarse one.
    const role = (data as { role_name?: string }).role_name ?? data.permission;
    return (PERMISSIONS as readonly string[]).includes(role) ? (role as Permission) : "none";
  } catch (error: unknown) {
    if ((error as { status?: number }).status === 404) return "none";
    throw error;
  }
}

export function hasPermission(actual: Permission, needed: Permission): boolean {
  return PERMISSIONS.indexOf(actual) >= PERMISSIONS.indexOf(needed);
}

/**
 * What a step's installation token may do, as GitHub App permission names (`pull_requests`),
 * from a flow's `permissions:` (GitHub Actions' names and syntax, docs/architecture.md rule 12):
 * - absent: `{ contents: read, metadata: read }`;
 * - a map: each scope (`pull-requests`) as its app permission (`pull_requests`), `none`
 *   left out, and `metadata: read`, which GitHub gives every token that can see a repository;
 * - `read-all`: every permission of the installation, at most `read`;
 * - `write-all`: every permission of the installation.
 * The validator refused scopes without an app permission (`id-token`), so any left here
 * (a version stored before it did) are refused too rather than dropped.
 */
export type StepTokenPermissions =
  | { kind: "some"; permissions: Readonly<Record<string, "read" | "write">> }
  | { kind: "read-all" }
  | { kind: "write-all" };

export function stepTokenPermissions(declared: TokenPermissions | undefined): StepTokenPermissions {
  if (declared === "read-all" || declared === "write-all") return { kind: declared };
  if (declared === undefined)
    return { kind: "some", permissions: { contents: "read", metadata: "read" } };
  const permissions: Record<string, "read" | "write"> = { metadata: "read" };
  for (const [scope, level] of Object.entries(declared)) {
    const name = (PERMISSION_SCOPES as Readonly<Record<string, string>>)[scope];
    if (name === undefined)
      throw new Error(
        `\`permissions.${scope}\` is not a GitHub Actions scope with a GitHub App permission`,
      );
    if (level !== "none") permissions[name] = level;
  }
  return { kind: "some", permissions };
}

/**
 * A `workflow` step's token: its workflow's repository only; read the workflow file and the
 * default branch, dispatch, follow and cancel runs.
 */
export const WORKFLOW_TOKEN_PERMISSIONS: StepTokenPermissions = {
  kind: "some",
  permissions: { actions: "write", contents: "read", metadata: "read" },
};

/** `contents: read, issues: write` (app permission names), for logs and errors. */
export function describeTokenPermissions(permissions: StepTokenPermissions): string {
  if (permissions.kind !== "some") return permissions.kind;
  return Object.entries(permissions.permissions)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, level]) => `${name}: ${level}`)
    .join(", ");
}
