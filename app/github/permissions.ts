/**
 * A user's permission on a repository, asked of GitHub at the moment of the action
 * (DESIGN.md rule 8): `GET /repos/{owner}/{repo}/collaborators/{username}/permission`.
 * Someone GitHub does not know as a collaborator (404) has no permission.
 */
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
