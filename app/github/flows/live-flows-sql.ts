/**
 * The store side of flows from repositories: installed repositories, the live version of
 * each flow (the last valid one), their schedules, and pull requests' drafts. SQL lives
 * here; the event handlers decide.
 */
import type { Diagnostic } from "../../../flows-schema/diagnostic.js";
import type { FlowDefinition } from "../../../flows-schema/schema.js";
import type { Queryable, Transaction } from "../../store/database.js";
import { CHANNELS } from "../../store/database.js";
import { saveFlowVersion } from "../../store/flow-versions.js";
import { nextScheduleTick } from "../schedule-ticks.js";
import type { LoadedFlows } from "./load-flows.js";
import type { LiveOutcome } from "./render-flows-check.js";
import type { RepositorySettings } from "./repository-settings.js";
import { DEFAULT_SETTINGS, repositorySettings } from "./repository-settings.js";

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

export interface LiveFlow {
  flow: string;
  path: string;
  versionId?: string;
  /** The commit of the live version. */
  versionSha?: string;
  definition?: FlowDefinition;
  source?: string;
  invalidSha?: string;
  diagnostics?: Diagnostic[];
}

interface DbLiveFlow {
  flow: string;
  path: string;
  version_id: string | null;
  version_sha: string | null;
  definition: FlowDefinition | null;
  source: string | null;
  invalid_sha: string | null;
  diagnostics: Diagnostic[] | null;
}

/** The repository's live flows (with their versions), ordered by name. */
export async function listLiveFlows(db: Queryable, repository: string): Promise<LiveFlow[]> {
  const result = await db.query<DbLiveFlow>(
    `SELECT l.flow, l.path, l.version_id, v.sha AS version_sha, v.definition, v.source,
            l.invalid_sha, l.diagnostics
       FROM live_flows l LEFT JOIN flow_versions v ON v.id = l.version_id
      WHERE l.repository = $1
      ORDER BY l.flow`,
    [repository],
  );
  return result.rows.map((row) => ({
    flow: row.flow,
    path: row.path,
    ...(row.version_id !== null ? { versionId: row.version_id } : {}),
    ...(row.version_sha !== null ? { versionSha: row.version_sha } : {}),
    ...(row.definition !== null ? { definition: row.definition } : {}),
    ...(row.source !== null ? { source: row.source } : {}),
    ...(row.invalid_sha !== null ? { invalidSha: row.invalid_sha } : {}),
    ...(row.diagnostics !== null ? { diagnostics: row.diagnostics } : {}),
  }));
}

export interface ScheduleRow {
  flow: string;
  idx: number;
  cron: string;
  timezone: string;
  versionId: string;
  nextAt: Date;
}

export async function listSchedules(db: Queryable, repository: string): Promise<ScheduleRow[]> {
  const result = await db.query<{
    flow: string;
    idx: number;
    cron: string;
    timezone: string;
    version_id: string;
    next_at: Date;
  }>(
    "SELECT flow, idx, cron, timezone, version_id, next_at FROM flow_schedules WHERE repository = $1 ORDER BY flow, idx",
    [repository],
  );
  return result.rows.map((row) => ({
    flow: row.flow,
    idx: row.idx,
    cron: row.cron,
    timezone: row.timezone,
    versionId: row.version_id,
    nextAt: row.next_at,
  }));
}

/**
 * Make a default-branch load live, unless a load whose branch head was resolved later
 * has been applied already (deliveries finish in any order): valid flows become live,
 * pinned to the commit; an invalid flow keeps its last valid version and records the
 * failure beside it; flows whose file is gone are retired (their schedules go with them).
 * Returns undefined when the load is stale or already live.
 */
export async function applyLiveLoad(
  tx: Transaction,
  loaded: LoadedFlows,
  options: { resolvedAt: Date; now: Date },
): Promise<LiveOutcome | undefined> {
  const locked = await tx.query<{ live_sha: string | null; live_resolved_at: Date | null }>(
    "SELECT live_sha, live_resolved_at FROM github_repositories WHERE repository = $1 FOR UPDATE",
    [loaded.repository],
  );
  const current = locked.rows[0];
  if (!current)
    throw new Error(`${loaded.repository} is not recorded; upsertRepository comes first`);
  if (current.live_resolved_at !== null && current.live_resolved_at > options.resolvedAt)
    return undefined;
  if (current.live_sha === loaded.sha) {
    await tx.query("UPDATE github_repositories SET live_resolved_at = $2 WHERE repository = $1", [
      loaded.repository,
      options.resolvedAt,
    ]);
    return undefined;
  }
  const settingsFile = loaded.settings;
  const settings = !settingsFile ? DEFAULT_SETTINGS : settingsFile.parsed.settings;
  await tx.query(
    `UPDATE github_repositories
        SET live_sha = $2, live_resolved_at = $3, settings = COALESCE($4::jsonb, settings), updated_at = now()
      WHERE repository = $1`,
    [loaded.repository, loaded.sha, options.resolvedAt, settings ? JSON.stringify(settings) : null],
  );

  const before = new Map(
    (await listLiveFlows(tx, loaded.repository)).map((flow) => [flow.flow, flow]),
  );
  const outcome: LiveOutcome = { live: [], invalid: [], retired: [] };
  for (const file of loaded.files) {
    if (file.flow && file.source !== undefined) {
      const version = await saveFlowVersion(tx, {
        sourceKind: "repository",
        repository: loaded.repository,
        path: file.path,
        sha: loaded.sha,
        name: file.name,
        definition: file.flow,
        source: file.source,
      });
      await tx.query(
        `INSERT INTO live_flows (repository, flow, path, version_id, invalid_sha, diagnostics, updated_at)
         VALUES ($1, $2, $3, $4, NULL, NULL, now())
         ON CONFLICT (repository, flow) DO UPDATE
           SET path = EXCLUDED.path, version_id = EXCLUDED.version_id,
               invalid_sha = NULL, diagnostics = NULL, updated_at = now()`,
        [loaded.repository, file.name, file.path, version.id],
      );
      await upsertSchedules(tx, loaded.repository, file.name, version.id, file.flow, options.now);
      outcome.live.push(file.name);
    } else {
      const kept = before.get(file.name);
      // The path stays the live version's: it is the file the live version came from.
      await tx.query(
        `INSERT INTO live_flows (repository, flow, path, version_id, invalid_sha, diagnostics, updated_at)
         VALUES ($1, $2, $3, NULL, $4, $5::jsonb, now())
         ON CONFLICT (repository, flow) DO UPDATE
           SET invalid_sha = EXCLUDED.invalid_sha, diagnostics = EXCLUDED.diagnostics,
               path = CASE WHEN live_flows.version_id IS NULL THEN EXCLUDED.path ELSE live_flows.path END,
               updated_at = now()`,
        [loaded.repository, file.name, file.path, loaded.sha, JSON.stringify(file.diagnostics)],
      );
      outcome.invalid.push({
        flow: file.name,
        ...(kept?.versionSha ? { keptSha: kept.versionSha } : {}),
      });
    }
  }
  const present = new Set(loaded.files.map((file) => file.name));
  outcome.retired = [...before.keys()].filter((name) => !present.has(name));
  if (outcome.retired.length > 0)
    await tx.query("DELETE FROM live_flows WHERE repository = $1 AND flow = ANY($2::text[])", [
      loaded.repository,
      outcome.retired,
    ]);
  // Schedule tickers of every process sleep until the earliest tick they know of: tell
  // them (on commit) that the schedules may have changed.
  await tx.notify(CHANNELS.schedules, loaded.repository);
  return outcome;
}

/**
 * One row per `on.schedule` entry of the live version. An entry whose cron and time zone
 * did not change keeps its next_at, so a reload neither skips nor repeats a tick; a new
 * or changed entry starts at its next tick after now.
 */
async function upsertSchedules(
  tx: Queryable,
  repository: string,
  flow: string,
  versionId: string,
  definition: FlowDefinition,
  now: Date,
): Promise<void> {
  const entries = definition.on?.schedule ?? [];
  const existing = await tx.query<{ idx: number; cron: string; timezone: string }>(
    "SELECT idx, cron, timezone FROM flow_schedules WHERE repository = $1 AND flow = $2",
    [repository, flow],
  );
  const byIdx = new Map(existing.rows.map((row) => [row.idx, row]));
  for (const [idx, entry] of entries.entries()) {
    const old = byIdx.get(idx);
    if (old && old.cron === entry.cron && old.timezone === entry.timezone) {
      await tx.query(
        "UPDATE flow_schedules SET version_id = $4 WHERE repository = $1 AND flow = $2 AND idx = $3",
        [repository, flow, idx, versionId],
      );
      continue;
    }
    await tx.query(
      `INSERT INTO flow_schedules (repository, flow, idx, cron, timezone, version_id, next_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (repository, flow, idx) DO UPDATE
         SET cron = EXCLUDED.cron, timezone = EXCLUDED.timezone,
             version_id = EXCLUDED.version_id, next_at = EXCLUDED.next_at`,
      [
        repository,
        flow,
        idx,
        entry.cron,
        entry.timezone,
        versionId,
        nextScheduleTick(entry.cron, entry.timezone, now),
      ],
    );
  }
  await tx.query("DELETE FROM flow_schedules WHERE repository = $1 AND flow = $2 AND idx >= $3", [
    repository,
    flow,
    entries.length,
  ]);
}

export interface FlowDraft {
  flow: string;
  pullRequest: number;
  headSha: string;
  /** Absent for a draft that failed validation. */
  versionId?: string;
}

export async function saveDrafts(
  tx: Queryable,
  repository: string,
  drafts: readonly FlowDraft[],
): Promise<void> {
  for (const draft of drafts) {
    await tx.query(
      `INSERT INTO flow_drafts (repository, head_sha, flow, pull_request, version_id)
       VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (repository, head_sha, flow) DO UPDATE
         SET pull_request = EXCLUDED.pull_request, version_id = EXCLUDED.version_id`,
      [repository, draft.headSha, draft.flow, draft.pullRequest, draft.versionId ?? null],
    );
  }
}

/** The drafts at one head commit, ordered by flow name (the order of the buttons). */
export async function listDrafts(
  db: Queryable,
  repository: string,
  headSha: string,
): Promise<FlowDraft[]> {
  const result = await db.query<{
    flow: string;
    pull_request: number;
    head_sha: string;
    version_id: string | null;
  }>(
    "SELECT flow, pull_request, head_sha, version_id FROM flow_drafts WHERE repository = $1 AND head_sha = $2 ORDER BY flow",
    [repository, headSha],
  );
  return result.rows.map((row) => ({
    flow: row.flow,
    pullRequest: row.pull_request,
    headSha: row.head_sha,
    ...(row.version_id !== null ? { versionId: row.version_id } : {}),
  }));
}
