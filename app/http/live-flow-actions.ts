/**
 * What can be done to a repository's live flow by name, once the caller is allowed to:
 * start it by hand, and hand out its webhook-trigger secret. Both clients use these
 * (`ServiceClient` locally, `GitHubUserClient` after asking GitHub for the permission).
 */
import type { Json } from "../engine/types.js";
import { webhookSecret } from "../github/triggers/webhook-secrets.js";
import type { BatonService } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import { getFlowVersion } from "../store/flow-versions.js";
import type { FlowVersion } from "../store/model.js";
import type { StartedRun, WebhookSecret } from "./api.js";
import {
  LiveFlowNotFoundError,
  RepositoryNotServedError,
  TriggerNotDeclaredError,
} from "./errors.js";
import type { GitHubRepository } from "../store/repositories.js";
import { getInstalledRepository } from "../store/repositories.js";
import { listLiveFlows } from "../store/live-flows.js";

/** The repository, if the app serves it (installed, not removed). */
export async function servedRepository(
  store: Database,
  repository: string,
): Promise<GitHubRepository> {
  const installed = await getInstalledRepository(store, repository);
  if (!installed) throw new RepositoryNotServedError(repository);
  return installed;
}

/** The live version of a repository's flow; throws LiveFlowNotFoundError. */
export async function liveFlowVersion(
  store: Database,
  repository: string,
  flow: string,
): Promise<FlowVersion> {
  const live = await listLiveFlows(store, repository);
  const versionId = live.find((entry) => entry.flow === flow)?.versionId;
  const version = versionId === undefined ? undefined : await getFlowVersion(store, versionId);
  if (!version) {
    const names = live.filter((entry) => entry.versionId !== undefined).map((entry) => entry.flow);
    throw new LiveFlowNotFoundError(repository, flow, names);
  }
  return version;
}

export interface StartLiveRunOptions {
  repository: string;
  flow: string;
  inputs: Record<string, Json>;
  /** Who asks: the token's GitHub login (or the local user). */
  actor: string;
  /** How the request came: `api` (Default) for the HTTP API and the CLI. */
  via?: string;
}

/**
 * Start the live version of a flow that declares `on.manual`, on the repository's live
 * commit, with its inputs validated (InvalidInputsError lists every problem).
 */
export async function startLiveRun(
  service: BatonService,
  store: Database,
  options: StartLiveRunOptions,
): Promise<StartedRun> {
  const installed = await servedRepository(store, options.repository);
  const version = await liveFlowVersion(store, installed.repository, options.flow);
  if (version.definition.on?.manual === undefined)
    throw new TriggerNotDeclaredError(installed.repository, options.flow, "manual");
  const started = await service.startRun({
    flowFile: { versionId: version.id },
    inputs: options.inputs,
    actor: options.actor,
    trigger: {
      event: "manual",
      payload: { via: options.via ?? "api", sender: { login: options.actor } },
    },
    github: {
      installationId: installed.installationId,
      headSha: installed.liveSha ?? version.sha,
    },
  });
  return {
    id: started.runId,
    number: started.number,
    flow: started.flow,
    repository: installed.repository,
  };
}

/** A live flow's webhook-trigger secret; `rotate` replaces it (the old one stops working). */
export async function liveFlowWebhookSecret(
  store: Database,
  options: { repository: string; flow: string; rotate: boolean; by: string },
): Promise<WebhookSecret> {
  const installed = await servedRepository(store, options.repository);
  const version = await liveFlowVersion(store, installed.repository, options.flow);
  if (version.definition.on?.webhook === undefined)
    throw new TriggerNotDeclaredError(installed.repository, options.flow, "webhook");
  const issued = await webhookSecret(store, installed.repository, options.flow, {
    rotate: options.rotate,
    by: options.by,
  });
  return {
    repository: installed.repository,
    flow: options.flow,
    secret: issued.secret,
    path: issued.path,
    rotated: options.rotate,
  };
}
