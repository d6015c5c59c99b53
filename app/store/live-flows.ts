/**
 * The store side of flows from repositories: installed repositories, the live version of
 * each flow (the last valid one), their schedules, and pull requests' drafts. SQL lives
 * here; the event handlers decide.
 */
import type { Diagnostic } from "../../flows-schema/diagnostic.js";
import type { FlowDefinition } from "../../flows-schema/schema.js";
import type { Queryable, Transaction } from "./database.js";
import { CHANNELS } from "./database.js";
import { saveFlowVersion } from "./flow-versions.js";
import { nextScheduleTick } from "../github/schedule-ticks.js";
import type { LoadedFlows } from "../github/flows/load-flows.js";
import type { LiveOutcome } from "../github/flows/render-flows-check.js";
import { DEFAULT_SETTINGS } from "../github/flows/repository-settings.js";

/**
 * A flow of a repository's default branch: its live version (the last valid one) and, when
 * the latest load failed validation, that failure beside it. The one shape every part reads.
 */
export interface LiveFlow {
  repository: string;
  /** The flow's name: its file name without `.yml`. */
  flow: string;
  path: string;
  /** The live version; undefined while no version of the flow was ever valid. */
  versionId?: string;
  /** The commit the live version was read at. */
  versionSha?: string;
  definition?: FlowDefinition;
  source?: string;
  invalidSha?: string;
  diagnostics?: Diagnostic[];
}

/** A live flow that can start runs: it has a valid version, in an installed repository. */
export type RunnableLiveFlow = LiveFlow & {
  versionId: string;
  versionSha: string;
  definition: FlowDefinition;
};

interface DbLiveFlow {
  repository: string;
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
    `${LIVE_FLOWS} WHERE l.repository = $1 ORDER BY l.flow`,
    [repository],
  );
  return result.rows.map(toLiveFlow);
}

const LIVE_FLOWS = `
  SELECT l.repository, l.flow, l.path, l.version_id, v.sha AS version_sha, v.definition,
         v.source, l.invalid_sha, l.diagnostics
    FROM live_flows l LEFT JOIN flow_versions v ON v.id = l.version_id`;

// Runnable: a valid version, and the repository installed (not removed).
const RUNNABLE = `${LIVE_FLOWS}
    JOIN github_repositories r ON r.repository = l.repository AND r.removed_at IS NULL
   WHERE l.version_id IS NOT NULL`;

function toLiveFlow(row: DbLiveFlow): LiveFlow {
  return {
    repository: row.repository,
    flow: row.flow,
    path: row.path,
    ...(row.version_id !== null ? { versionId: row.version_id } : {}),
    ...(row.version_sha !== null ? { versionSha: row.version_sha } : {}),
    ...(row.definition !== null ? { definition: row.definition } : {}),
    ...(row.source !== null ? { source: row.source } : {}),
    ...(row.invalid_sha !== null ? { invalidSha: row.invalid_sha } : {}),
    ...(row.diagnostics !== null ? { diagnostics: row.diagnostics } : {}),
  };
}

function toRunnable(row: DbLiveFlow): RunnableLiveFlow {
  const flow = toLiveFlow(row);
  if (flow.versionId === undefined || flow.versionSha === undefined || !flow.definition)
    throw new Error(`live flow ${row.repository}/${row.flow} has no version`);
  return {
    ...flow,
    versionId: flow.versionId,
    versionSha: flow.versionSha,
    definition: flow.definition,
  };
}

/** The runnable live flows of a repository that list `eventName` under `on.github`, by name. */
export async function liveFlowsOnEvent(
  db: Queryable,
  repository: string,
  eventName: string,
): Promise<RunnableLiveFlow[]> {
  const result = await db.query<DbLiveFlow>(
    `${RUNNABLE} AND l.repository = $1 AND jsonb_exists(v.definition -> 'on' -> 'github', $2)
      ORDER BY l.flow`,
    [repository, eventName],
  );
  return result.rows.map(toRunnable);
}

export async function getLiveFlow(
  db: Queryable,
  repository: string,
  flow: string,
): Promise<RunnableLiveFlow | undefined> {
  const result = await db.query<DbLiveFlow>(`${RUNNABLE} AND l.repository = $1 AND l.flow = $2`, [
    repository,
    flow,
  ]);
  const row = result.rows[0];
  return row ? toRunnable(row) : undefined;
}

/** Names of a repository's runnable live flows (for "did you mean" answers). */
export async function liveFlowNames(db: Queryable, repository: string): Promise<string[]> {
  const result = await db.query<DbLiveFlow>(`${RUNNABLE} AND l.repository = $1 ORDER BY l.flow`, [
    repository,
  ]);
  return result.rows.map((row) => row.flow);
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
