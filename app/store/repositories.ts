/**
 * Repositories the app is installed on (migration 000005; written by the flow loader in
 * app/github/flows). One reading of "installed" for every part: GitHub's owner/repo names
 * are case-insensitive, so a name matches whatever its case; a removed (uninstalled)
 * repository is recorded but not installed.
 */
import type { Queryable } from "./database.js";
import type { RepositorySettings } from "../github/flows/repository-settings.js";
import { DEFAULT_SETTINGS, repositorySettings } from "../github/flows/repository-settings.js";

export interface GitHubRepository {
  repository: string;
  githubId?: number;
  installationId: number;
  defaultBranch: string;
  liveSha?: string;
  liveResolvedAt?: Date;
  settings: RepositorySettings;
  removedAt?: Date;
}

interface DbGitHubRepository {
  repository: string;
  github_id: string | number | null;
  installation_id: string | number;
  default_branch: string;
  live_sha: string | null;
  live_resolved_at: Date | null;
  settings: unknown;
  removed_at: Date | null;
}

function toRepository(row: DbGitHubRepository): GitHubRepository {
  const settings = repositorySettings.safeParse(row.settings ?? {});
  return {
    repository: row.repository,
    ...(row.github_id !== null ? { githubId: Number(row.github_id) } : {}),
    installationId: Number(row.installation_id),
    defaultBranch: row.default_branch,
    ...(row.live_sha !== null ? { liveSha: row.live_sha } : {}),
    ...(row.live_resolved_at !== null ? { liveResolvedAt: row.live_resolved_at } : {}),
    settings: settings.success ? settings.data : DEFAULT_SETTINGS,
    ...(row.removed_at !== null ? { removedAt: row.removed_at } : {}),
  };
}

/** A recorded repository by name, case-insensitively, removed or not. */
export async function getRepository(
  db: Queryable,
  repository: string,
): Promise<GitHubRepository | undefined> {
  const result = await db.query<DbGitHubRepository>(
    "SELECT * FROM github_repositories WHERE lower(repository) = lower($1)",
    [repository],
  );
  const row = result.rows[0];
  return row ? toRepository(row) : undefined;
}

/**
 * Record an installed repository (again): a reinstalled one is no longer removed. A
 * repository renamed or transferred keeps its GitHub id under a new name: the row of the
 * old name lets go of the id and counts as removed (nothing can push to that name).
 */
export async function upsertRepository(
  tx: Queryable,
  repo: { repository: string; githubId?: number; installationId: number; defaultBranch: string },
): Promise<void> {
  if (repo.githubId !== undefined)
    await tx.query(
      `UPDATE github_repositories
          SET github_id = NULL, removed_at = COALESCE(removed_at, now()), updated_at = now()
        WHERE github_id = $2 AND repository <> $1`,
      [repo.repository, repo.githubId],
    );
  await tx.query(
    `INSERT INTO github_repositories (repository, github_id, installation_id, default_branch)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (repository) DO UPDATE
       SET github_id = COALESCE(EXCLUDED.github_id, github_repositories.github_id),
           installation_id = EXCLUDED.installation_id,
           default_branch = EXCLUDED.default_branch,
           removed_at = NULL,
           updated_at = now()`,
    [repo.repository, repo.githubId ?? null, repo.installationId, repo.defaultBranch],
  );
}

/**
 * Mark repositories removed (uninstalled): their triggers stop; their live flows are
 * kept, so that a reinstall or a later push starts from them. Runs are untouched.
 */
export async function markRepositoriesRemoved(
  tx: Queryable,
  which: { repositories: string[] } | { installationId: number },
  at: Date,
): Promise<number> {
  const result =
    "installationId" in which
      ? await tx.query(
          "UPDATE github_repositories SET removed_at = $2, updated_at = now() WHERE installation_id = $1 AND removed_at IS NULL",
          [which.installationId, at],
        )
      : await tx.query(
          "UPDATE github_repositories SET removed_at = $2, updated_at = now() WHERE repository = ANY($1::text[]) AND removed_at IS NULL",
          [which.repositories, at],
        );
  return result.rowCount;
}

/** An installed repository by name, case-insensitively; a removed one is not installed. */
export async function getInstalledRepository(
  db: Queryable,
  repository: string,
): Promise<GitHubRepository | undefined> {
  const found = await getRepository(db, repository);
  return found && found.removedAt === undefined ? found : undefined;
}
