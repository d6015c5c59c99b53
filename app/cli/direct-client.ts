/**
 * `BatonApi` on the store in this process: the runtime service, with the local notion of
 * identity. Locally there is no GitHub to ask who someone is, so the acting person is
 * the declared one (`$BATON_USER`, `--as`) with admin permission; the flow's policy still
 * applies (listed users, self-approval, required counts).
 */
import type { ApproverFacts, Json, RunStatus } from "../engine/types.js";
import type {
  ApprovalVerdict,
  BatonApi,
  LogLine,
  RunSummary,
  RunView,
  StartedRun,
  StartRunRequest,
} from "../http/api.js";
import { BatonService } from "../runtime/service.js";
import type { Database } from "../store/database.js";

const LOCAL_FACTS: ApproverFacts = { permission: "admin", teams: [], codeowner: false };

export class DirectClient implements BatonApi {
  readonly executesRuns = true;
  readonly #service: BatonService;

  constructor(
    db: Database,
    private readonly actor: string,
  ) {
    this.#service = new BatonService({ store: db });
  }

  async startRun(request: StartRunRequest): Promise<StartedRun> {
    const started = await this.#service.startRun({
      flowFile: request.flowFile,
      inputs: request.inputs,
      actor: this.actor,
    });
    return { id: started.runId, number: started.number, flow: started.flow };
  }

  async listRuns(filter: {
    flow?: string;
    status?: RunStatus;
    limit?: number;
  }): Promise<RunSummary[]> {
    const runs = await this.#service.listRuns(filter);
    return runs.map((run) => ({
      id: run.id,
      flow: run.flow,
      number: run.number,
      status: run.status,
      createdAt: run.createdAt.getTime(),
      ...(run.finishedAt ? { finishedAt: run.finishedAt.getTime() } : {}),
    }));
  }

  async getRun(ref: string): Promise<RunView> {
    const details = await this.#service.getRun(ref);
    if (!details.state) throw new Error(`run ${details.run.id} has no state yet; try again`);
    return {
      id: details.run.id,
      flow: details.run.flow,
      number: details.run.number,
      state: details.state,
      events: details.events,
    };
  }

  async getLogs(runRef: string, step?: string, afterSeq?: number): Promise<LogLine[]> {
    const chunks = await this.#service.getLogs(runRef, {
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
    const options = {
      user: this.actor,
      via: "cli" as const,
      facts: LOCAL_FACTS,
      ...(comment !== undefined ? { comment } : {}),
    };
    const verdict =
      decision === "approve"
        ? await this.#service.approve(runRef, step, options)
        : await this.#service.reject(runRef, step, options);
    return {
      counted: verdict?.counted ?? false,
      ...(verdict?.reason !== undefined ? { reason: verdict.reason } : {}),
    };
  }

  async signal(runRef: string, name: string, payload: Json): Promise<void> {
    await this.#service.signal(runRef, name, payload, this.actor);
  }

  async cancel(runRef: string, reason: string): Promise<void> {
    await this.#service.cancel(runRef, reason, this.actor);
  }

  async retry(runRef: string, fromStep?: string): Promise<void> {
    await this.#service.retry(runRef, {
      by: this.actor,
      ...(fromStep !== undefined ? { fromStep } : {}),
    });
  }

  async close(): Promise<void> {}
}
