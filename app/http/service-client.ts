/**
 * `BatonApi` on a `BatonService` in this process, acting as one person. It checks
 * nothing about who that person is: callers decide that first (locally, the declared
 * user is trusted, see app/cli/direct-client.ts; against a GitHub app,
 * `GitHubUserClient` asks GitHub, then acts through this class).
 */
import type { ApproverFacts, Json } from "../engine/types.js";
import type { Permission } from "../github/permissions.js";
import { AmbiguousRunRefError, type BatonService, RunNotFoundError } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import type { Run } from "../store/model.js";
import { listRuns } from "../store/runs.js";
import type {
  ApprovalVerdict,
  BatonApi,
  LogLine,
  RunListFilter,
  RunSummary,
  RunView,
  StartedRun,
  StartLiveRunRequest,
  StartRunRequest,
  WebhookSecret,
} from "./api.js";
import { liveFlowWebhookSecret, startLiveRun } from "./live-flow-actions.js";
import { findRunCandidates, runRefOf } from "./run-refs.js";

/** What an action on a run needs. */
export interface RunPurpose {
  /** The permission on the run's repository. */
  needs: Permission;
  /** What is done, for messages: "cancelling a run". */
  action: string;
  /** The permission becomes a fact of an approval decision: it must be GitHub's answer now. */
  decides?: boolean;
  /** For a decision: the approval step it is about (whose policy says which facts matter). */
  step?: string;
}

export interface ServiceClientOptions {
  store: Database;
  service: BatonService;
  /** Who acts: recorded on runs, approvals, signals, cancellations. */
  actor: string;
  /** What is known about the actor, for approval policies. */
  approverFacts: ApproverFacts;
}

export class ServiceClient implements BatonApi {
  readonly executesRuns = true;
  protected readonly store: Database;
  protected readonly service: BatonService;
  protected readonly actor: string;
  readonly #facts: ApproverFacts;

  constructor(options: ServiceClientOptions) {
    this.store = options.store;
    this.service = options.service;
    this.actor = options.actor;
    this.#facts = options.approverFacts;
  }

  async startRun(request: StartRunRequest): Promise<StartedRun> {
    const started = await this.service.startRun({
      flowFile: request.flowFile,
      inputs: request.inputs,
      actor: this.actor,
    });
    return { id: started.runId, number: started.number, flow: started.flow };
  }

  startLiveRun(request: StartLiveRunRequest): Promise<StartedRun> {
    return startLiveRun(this.service, this.store, { ...request, actor: this.actor });
  }

  async listRuns(filter: RunListFilter): Promise<RunSummary[]> {
    const runs = await listRuns(this.store, filter);
    return runs.map(toRunSummary);
  }

  async getRun(ref: string): Promise<RunView> {
    const { run } = await this.allowed(ref, { needs: "read", action: "reading a run" });
    const details = await this.service.getRun(run.id);
    if (!details.state) throw new Error(`run ${details.run.id} has no state yet; try again`);
    return {
      id: details.run.id,
      repository: details.run.repository,
      flow: details.run.flow,
      number: details.run.number,
      state: details.state,
      events: details.events,
    };
  }

  async getLogs(runRef: string, step?: string, afterSeq?: number): Promise<LogLine[]> {
    const { run } = await this.allowed(runRef, { needs: "read", action: "reading logs" });
    const chunks = await this.service.getLogs(run.id, {
      ...(step !== undefined ? { step } : {}),
      ...(afterSeq !== undefined ? { afterSeq } : {}),
    });
    return chunks.map((chunk) => ({
      step: chunk.step,
      attempt: chunk.attempt,
      stream: chunk.stream === "stderr" ? "stderr" : "stdout",
      seq: chunk.seq,
      text: chunk.chunk,
    }));
  }

  async decide(
    runRef: string,
    step: string,
    decision: "approve" | "reject",
    comment?: string,
  ): Promise<ApprovalVerdict> {
    // Anyone who can read the run may submit; the flow's policy judges the facts.
    const { run, facts } = await this.allowed(runRef, {
      needs: "read",
      action: `${decision === "approve" ? "approving" : "rejecting"} a step`,
      decides: true,
      step,
    });
    const options = {
      user: this.actor,
      via: "cli" as const,
      facts,
      ...(comment !== undefined ? { comment } : {}),
    };
    const verdict =
      decision === "approve"
        ? await this.service.approve(run.id, step, options)
        : await this.service.reject(run.id, step, options);
    return {
      counted: verdict?.counted ?? false,
      ...(verdict?.reason !== undefined ? { reason: verdict.reason } : {}),
      user: this.actor,
    };
  }

  async signal(runRef: string, name: string, payload: Json): Promise<void> {
    const { run } = await this.allowed(runRef, { needs: "write", action: "sending a signal" });
    await this.service.signal(run.id, name, payload, this.actor);
  }

  async cancel(runRef: string, reason?: string): Promise<void> {
    const { run } = await this.allowed(runRef, { needs: "write", action: "cancelling a run" });
    await this.service.cancel(run.id, reason ?? `cancelled by ${this.actor}`, this.actor);
  }

  async retry(runRef: string, fromStep?: string): Promise<void> {
    const { run } = await this.allowed(runRef, { needs: "write", action: "retrying a run" });
    await this.service.retry(run.id, {
      by: this.actor,
      ...(fromStep !== undefined ? { fromStep } : {}),
    });
  }

  webhookSecret(
    repository: string,
    flow: string,
    options: { rotate: boolean },
  ): Promise<WebhookSecret> {
    return liveFlowWebhookSecret(this.store, { repository, flow, ...options, by: this.actor });
  }

  async close(): Promise<void> {}

  /**
   * The run `ref` names, if the actor may act on it as the purpose needs, and the facts
   * about the actor that approval policies judge. Locally: any run, as declared.
   */
  protected async allowed(
    ref: string,
    _purpose: RunPurpose,
  ): Promise<{ run: Run; facts: ApproverFacts }> {
    return { run: await this.resolveRun(ref), facts: this.#facts };
  }

  /**
   * The repository run references resolve within, when the client is one repository's
   * (a workflow's OIDC identity). (Default: none: every run the client may see)
   */
  protected refScope: string | undefined = undefined;

  /** The one run `ref` names among those `visible` keeps (Default: all). */
  protected async resolveRun(
    ref: string,
    visible: (runs: Run[]) => Promise<Run[]> = (runs) => Promise.resolve(runs),
  ): Promise<Run> {
    const runs = await visible(await findRunCandidates(this.store, ref, this.refScope));
    if (runs.length === 0) throw new RunNotFoundError(ref);
    if (runs.length > 1)
      throw new AmbiguousRunRefError(
        ref,
        runs.map((run) => `${runRefOf(run)} (${run.id})`),
      );
    return runs[0] as Run;
  }
}

export function toRunSummary(run: Run): RunSummary {
  return {
    id: run.id,
    repository: run.repository,
    flow: run.flow,
    number: run.number,
    status: run.status,
    createdAt: run.createdAt.getTime(),
    ...(run.finishedAt ? { finishedAt: run.finishedAt.getTime() } : {}),
  };
}
