/**
 * Creating a run, with its concurrency group (in the caller's transaction).
 *
 * The group's decision is serialised across processes by a transaction-scoped advisory
 * lock on the group key, and reads the runs table under it:
 * - nobody active or queued in the group: the run is created and admitted;
 * - `queue`: created only; `run-ended` of the active run admits the oldest queued one;
 * - `cancel-in-progress`: every unfinished run of the group is asked to cancel, and the
 *   new run is admitted at once (the cancelled ones may still be compensating);
 * - `reject`: `ConcurrencyRejectedError`, and the caller's transaction rolls back.
 */
import { concurrencyOf } from "../engine/index.js";
import type { Json, Millis, NewRunEvent, RunMeta, Trigger } from "../engine/types.js";
import type { Transaction } from "../store/database.js";
import { uuidv7 } from "../store/ids.js";
import type { FlowVersion, RunGitHub } from "../store/model.js";
import type { ConcurrencyScope } from "../store/runs.js";
import {
  allocateRunNumber,
  insertRun,
  lockConcurrencyGroup,
  unfinishedRunsInGroup,
} from "../store/runs.js";
import type { Advanced } from "./advance-run.js";
import { advanceRun } from "./advance-run.js";
import { ConcurrencyGroupError, ConcurrencyRejectedError } from "./errors.js";
import type { FlowCache } from "./flow-cache.js";

export interface CreateRunRequest {
  version: FlowVersion;
  /** Already checked with `resolveInputs`. */
  inputs: Record<string, Json>;
  actor: string;
  trigger: Trigger;
  parent?: { runId: string; step: string; attempt: number };
  url?: string;
  /** For a repository's flow: where GitHub shows the run (its check run) and who acts for it. */
  github?: RunGitHub;
}

export async function createRun(
  tx: Transaction,
  flows: FlowCache,
  request: CreateRunRequest,
  now: Millis,
): Promise<Advanced> {
  const { version } = request;
  const id = uuidv7(now);
  const number = await allocateRunNumber(tx, version.repository, version.name);
  const meta: RunMeta = {
    id,
    number,
    // The commit the run is about: a pull request's head for runs it started (the flow
    // itself stays pinned to its version's commit).
    sha: request.github?.headSha ?? version.sha,
    repository: version.repository,
    actor: request.actor,
    ...(request.url !== undefined ? { url: request.url } : {}),
  };
  let concurrency: ReturnType<typeof concurrencyOf>;
  try {
    concurrency = concurrencyOf(version.definition, {
      inputs: request.inputs,
      trigger: request.trigger,
      meta,
    });
  } catch (error: unknown) {
    throw new ConcurrencyGroupError(version.name, { cause: error });
  }
  let admitted = true;
  if (concurrency) {
    const scope = { repository: version.repository, group: concurrency.group };
    await lockConcurrencyGroup(tx, scope);
    const unfinished = await unfinishedRunsInGroup(tx, scope);
    if (unfinished.length > 0) {
      switch (concurrency.mode) {
        case "reject":
          throw new ConcurrencyRejectedError(
            version.name,
            concurrency.group,
            unfinished.map((run) => run.id),
          );
        case "queue":
          admitted = false;
          break;
        case "cancel-in-progress":
          for (const other of unfinished) {
            await advanceRun(
              tx,
              flows,
              other.id,
              [
                {
                  type: "run.cancel-requested",
                  at: now,
                  by: request.actor,
                  reason: `superseded by run ${version.name}#${number} (concurrency group "${concurrency.group}")`,
                },
              ],
              now,
            );
          }
          break;
      }
    }
  }
  await insertRun(tx, {
    id,
    flowVersionId: version.id,
    repository: version.repository,
    flow: version.name,
    number,
    ...(concurrency ? { concurrencyGroup: concurrency.group } : {}),
    ...(request.parent ? { parent: request.parent } : {}),
    actor: request.actor,
    triggerEvent: request.trigger.event,
    inputs: request.inputs,
    createdAt: new Date(now),
    ...(request.github ? { github: request.github } : {}),
  });
  const created: NewRunEvent = {
    type: "run.created",
    at: now,
    meta,
    inputs: request.inputs,
    trigger: request.trigger,
    ...(concurrency ? { concurrencyGroup: concurrency.group } : {}),
    ...(request.parent ? { parent: request.parent } : {}),
  };
  const inputs: NewRunEvent[] = admitted ? [created, { type: "run.admitted", at: now }] : [created];
  return advanceRun(tx, flows, id, inputs, now);
}

/**
 * After a run of `group` (in its repository) ended: if nothing in the group is active any
 * more, admit the oldest queued run. Returns its id, if any.
 */
export async function admitNextInGroup(
  tx: Transaction,
  flows: FlowCache,
  group: ConcurrencyScope,
  now: Millis,
): Promise<string | undefined> {
  await lockConcurrencyGroup(tx, group);
  const unfinished = await unfinishedRunsInGroup(tx, group);
  if (unfinished.some((run) => run.status !== "queued")) return undefined;
  const next = unfinished[0];
  if (!next) return undefined;
  await advanceRun(tx, flows, next.id, [{ type: "run.admitted", at: now }], now);
  return next.id;
}
