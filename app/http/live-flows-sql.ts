/**
 * What the API reads about repositories the app is installed on and their live flows
 * (migration 000005; written by the flow loader in app/github).
 */
import type { Queryable } from "../store/database.js";

export interface InstalledRepository {
  /** `owner/repo`, as GitHub spells it. */
  repository: string;
  installationId: number;
  /** The default-branch commit whose flows are live; undefined before the first load. */
  liveSha?: string;
  /** Set when the app was uninstalled from the repository. */
  removedAt?: Date;
}

/** A repository by name, case-insensitively (GitHub names are). */
export async function getInstalledRepository(
  db: Queryable,
  repository: string,
): Promise<InstalledRepository | undefined> {
  const result = await db.query<{
    repository: string;
    installation_id: string | number;
    live_sha: string | null;
    removed_at: Date | null;
  }>(
    `SELECT repository, installation_id, live_sha, removed_at FROM github_repositories
      WHERE lower(repository) = lower($1)`,
    [repository],
  );
  const row = result.rows[0];
  if (!row) return undefined;
  return {
    repository: row.repository,
    installationId: Number(row.installation_id),
    ...(row.live_sha !== null ? { liveSha: row.live_sha } : {}),
    ...(row.removed_at !== null ? { removedAt: row.removed_at } : {}),
  };
}

export interface LiveFlow {
  flow: string;
  path: string;
  /** The live version; undefined while no version of the flow was ever valid. */
  versionId?: string;
}

/** The repository's live flows (those with a valid version), by name. */
export async function listLiveFlows(db: Queryable, repository: string): Promise<LiveFlow[]> {
  const result = await db.query<{ flow: string; path: string; version_id: string | null }>(
    `SELECT flow, path, version_id FROM live_flows WHERE repository = $1 ORDER BY flow`,
    [repository],
  );
  return result.rows.map((row) => ({
    flow: row.flow,
    path: row.path,
    ...(row.version_id !== null ? { versionId: row.version_id } : {}),
  }));
}
