/**
 * Shared setup of the triggers tests: a GitHubApp on a test database and the fake GitHub,
 * and live flows written the way the flow loader writes them (github_repositories,
 * flow_versions, live_flows, flow_schedules), so the triggers can be tested before the
 * loader and against exactly the rows they read.
 */
import { randomUUID } from "node:crypto";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import type { GitHubApp, GitHubAppPart } from "../../app/github/github-app.js";
import { combineEventHandlers } from "../../app/github/github-app.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { insertDelivery } from "../../app/store/deliveries.js";
import { processDeliveries } from "../../app/github/process-deliveries.js";
import { nextScheduleTick } from "../../app/github/schedule-ticks.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Logger } from "../../app/runtime/log.js";
import type { Database, Queryable } from "../../app/store/database.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import type { FlowVersion } from "../../app/store/model.js";
import type { FakeGitHub } from "../fake-github/server.js";
import { testLogger } from "../helpers/flows.js";

export function createTestApp(
  store: Database,
  options: { fake?: FakeGitHub; now?: () => number; log?: Logger } = {},
): GitHubApp {
  const now = options.now ?? Date.now;
  const fake = options.fake;
  return {
    store,
    service: new BatonService({ store, now }),
    github: fake
      ? createGitHubClient({
          appId: fake.appId,
          privateKey: fake.privateKey,
          baseUrl: fake.url,
          throttle: false,
        })
      : {
          baseUrl: "http://github.invalid",
          app: () => {
            throw new Error("this test talks to no GitHub");
          },
          installation: () => {
            throw new Error("this test talks to no GitHub");
          },
          forRepository: () => Promise.reject(new Error("this test talks to no GitHub")),
        },
    log: options.log ?? testLogger(),
    now,
  };
}

export async function addRepository(
  db: Queryable,
  repository: { name: string; installationId: number; liveSha: string; defaultBranch?: string },
): Promise<void> {
  await db.query(
    `INSERT INTO github_repositories (repository, installation_id, default_branch, live_sha)
     VALUES ($1, $2, $3, $4)
     ON CONFLICT (repository) DO UPDATE SET installation_id = excluded.installation_id,
       live_sha = excluded.live_sha, removed_at = NULL`,
    [
      repository.name,
      repository.installationId,
      repository.defaultBranch ?? "main",
      repository.liveSha,
    ],
  );
}

/**
 * Make `source` the live version of `flow`, read at `sha`, with its schedules waiting for
 * their first tick after `now` (as the loader does).
 */
export async function makeLive(
  db: Queryable,
  repository: string,
  flow: string,
  source: string,
  options: { sha: string; now?: Date },
): Promise<FlowVersion> {
  const path = `.github/flows/${flow}.yml`;
  const parsed = parseFlow(source, path);
  if (!parsed.flow) {
    throw new Error(
      `test flow ${flow} is invalid: ${parsed.diagnostics.map((d) => d.message).join("; ")}`,
    );
  }
  const version = await saveFlowVersion(db, {
    sourceKind: "repository",
    repository,
    path,
    sha: options.sha,
    name: flow,
    definition: parsed.flow,
    source,
  });
  await db.query(
    `INSERT INTO live_flows (repository, flow, path, version_id) VALUES ($1, $2, $3, $4)
     ON CONFLICT (repository, flow) DO UPDATE SET version_id = excluded.version_id`,
    [repository, flow, path, version.id],
  );
  await db.query(`DELETE FROM flow_schedules WHERE repository = $1 AND flow = $2`, [
    repository,
    flow,
  ]);
  for (const [idx, entry] of (parsed.flow.on?.schedule ?? []).entries()) {
    await db.query(
      `INSERT INTO flow_schedules (repository, flow, idx, cron, timezone, version_id, next_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [
        repository,
        flow,
        idx,
        entry.cron,
        entry.timezone,
        version.id,
        nextScheduleTick(entry.cron, entry.timezone, options.now ?? new Date()),
      ],
    );
  }
  return version;
}

/** Store a delivery and process it with the parts' handlers, as the app's worker does. */
export async function deliver(
  app: GitHubApp,
  parts: readonly GitHubAppPart[],
  event: string,
  payload: Record<string, unknown>,
): Promise<{ deliveryId: string; processed: number; failed: number; retried: number }> {
  const deliveryId = randomUUID();
  await insertDelivery(app.store, {
    id: deliveryId,
    event,
    action: typeof payload.action === "string" ? payload.action : undefined,
    installationId: (payload.installation as { id?: number } | undefined)?.id,
    hookId: 1,
    receivedAt: new Date(),
    payloadJson: JSON.stringify(payload),
  });
  const result = await processDeliveries({
    store: app.store,
    handlers: combineEventHandlers(app, parts),
    log: app.log,
    retry: { maxAttempts: 1 },
  });
  return { deliveryId, ...result };
}

export interface StoredRun {
  flow: string;
  number: number;
  actor: string;
  triggerEvent: string;
  trigger: { event: string; payload: Record<string, unknown> };
  inputs: Record<string, unknown>;
  installationId: number | null;
  headSha: string | null;
  pullRequest: number | null;
  issue: number | null;
}

/** The runs of a repository, oldest first, with their trigger as the run.created event holds it. */
export async function runsOf(db: Queryable, repository: string): Promise<StoredRun[]> {
  const result = await db.query<{
    flow: string;
    number: number;
    actor: string;
    trigger_event: string;
    trigger: StoredRun["trigger"];
    inputs: Record<string, unknown>;
    installation_id: string | null;
    head_sha: string | null;
    pull_request: number | null;
    issue: number | null;
  }>(
    `SELECT r.flow, r.number, r.actor, r.trigger_event, r.inputs, r.installation_id, r.head_sha,
            r.pull_request, r.issue, e.data -> 'trigger' AS trigger
       FROM runs r JOIN run_events e ON e.run_id = r.id AND e.type = 'run.created'
      WHERE r.repository = $1 ORDER BY r.created_at, r.id`,
    [repository],
  );
  return result.rows.map((row) => ({
    flow: row.flow,
    number: row.number,
    actor: row.actor,
    triggerEvent: row.trigger_event,
    trigger: row.trigger,
    inputs: row.inputs,
    installationId: row.installation_id === null ? null : Number(row.installation_id),
    headSha: row.head_sha,
    pullRequest: row.pull_request,
    issue: row.issue,
  }));
}

/** The outbox's pending GitHub requests (replies), oldest first. */
export async function pendingGitHubRequests(
  db: Queryable,
): Promise<{ route: string; params: Record<string, unknown>; installationId: number }[]> {
  const result = await db.query<{
    payload: { route: string; params: Record<string, unknown>; installationId: number };
  }>(`SELECT payload FROM tasks WHERE kind = 'github-request' ORDER BY id`);
  return result.rows.map((row) => row.payload);
}
