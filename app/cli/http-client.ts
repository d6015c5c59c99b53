/**
 * `BatonApi` over HTTP: for a Baton process that holds the runs (`baton serve`, or a
 * `baton run --wait` that owns the embedded database).
 */
import type { Json, RunStatus } from "../engine/types.js";
import type {
  ApprovalVerdict,
  BatonApi,
  LogLine,
  RunSummary,
  RunView,
  StartedRun,
  StartRunRequest,
} from "../http/api.js";
import { ApiError } from "../http/api.js";
import { ACTOR_HEADER } from "../http/api-server.js";

export class HttpClient implements BatonApi {
  readonly executesRuns = false;

  constructor(
    private readonly baseUrl: string,
    private readonly token: string,
    private readonly actor: string,
  ) {}

  private async call<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<T> {
    let response: Response;
    try {
      response = await fetch(new URL(path, this.baseUrl), {
        method,
        headers: {
          authorization: `Bearer ${this.token}`,
          [ACTOR_HEADER]: this.actor,
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error: unknown) {
      throw new Error(
        `cannot reach Baton at ${this.baseUrl}: ${error instanceof Error ? error.message : String(error)}`,
        {
          cause: error,
        },
      );
    }
    const payload = (await response.json().catch(() => ({}))) as {
      error?: { message?: string; code?: string; details?: unknown };
    };
    if (!response.ok) {
      const details = Array.isArray(payload.error?.details)
        ? `\n  ${(payload.error.details as string[]).join("\n  ")}`
        : "";
      throw new ApiError(
        `${payload.error?.message ?? `HTTP ${response.status}`}${details}`,
        response.status,
        payload.error?.code ?? "http_error",
      );
    }
    return payload as T;
  }

  startRun(request: StartRunRequest): Promise<StartedRun> {
    return this.call("POST", "/api/runs", request);
  }

  listRuns(filter: { flow?: string; status?: RunStatus; limit?: number }): Promise<RunSummary[]> {
    const query = new URLSearchParams();
    if (filter.flow) query.set("flow", filter.flow);
    if (filter.status) query.set("status", filter.status);
    if (filter.limit !== undefined) query.set("limit", String(filter.limit));
    return this.call("GET", `/api/runs?${query.toString()}`);
  }

  getRun(ref: string): Promise<RunView> {
    return this.call("GET", `/api/runs/${encodeURIComponent(ref)}`);
  }

  getLogs(runRef: string, step?: string, afterSeq?: number): Promise<LogLine[]> {
    const query = new URLSearchParams();
    if (step) query.set("step", step);
    if (afterSeq !== undefined) query.set("after", String(afterSeq));
    return this.call("GET", `/api/runs/${encodeURIComponent(runRef)}/logs?${query.toString()}`);
  }

  async decide(
    runRef: string,
    step: string,
    decision: "approve" | "reject",
    comment?: string,
  ): Promise<ApprovalVerdict> {
    return this.call(
      "POST",
      `/api/runs/${encodeURIComponent(runRef)}/steps/${encodeURIComponent(step)}/${decision}`,
      { comment },
    );
  }

  async signal(runRef: string, name: string, payload: Json): Promise<void> {
    await this.call(
      "POST",
      `/api/runs/${encodeURIComponent(runRef)}/signals/${encodeURIComponent(name)}`,
      { payload },
    );
  }

  async cancel(runRef: string, reason: string): Promise<void> {
    await this.call("POST", `/api/runs/${encodeURIComponent(runRef)}/cancel`, { reason });
  }

  async retry(runRef: string, fromStep?: string): Promise<void> {
    await this.call("POST", `/api/runs/${encodeURIComponent(runRef)}/retry`, { fromStep });
  }

  async close(): Promise<void> {}
}
