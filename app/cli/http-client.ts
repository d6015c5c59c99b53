/**
 * `BatonApi` over HTTP: for a Baton process that holds the runs (`baton serve`, or a
 * `baton run --wait` that owns the embedded database), or a GitHub app (`BATON_URL`, with
 * a GitHub user token).
 */
import type { Json } from "../engine/types.js";
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
      error?: { message?: string; code?: string; details?: unknown } & Record<string, unknown>;
    };
    if (!response.ok) {
      const { message, code, ...extra } = payload.error ?? {};
      // The message already lists invalid inputs; other details are appended.
      const details =
        Array.isArray(extra.details) && code !== "invalid_inputs"
          ? `\n  ${(extra.details as unknown[]).map(String).join("\n  ")}`
          : "";
      throw new ApiError(
        `${message ?? `HTTP ${response.status}`}${details}`,
        response.status,
        code ?? "http_error",
        extra,
      );
    }
    return payload as T;
  }

  startRun(request: StartRunRequest): Promise<StartedRun> {
    return this.call("POST", "/api/runs", request);
  }

  startLiveRun(request: StartLiveRunRequest): Promise<StartedRun> {
    const [owner = "", repo = ""] = request.repository.split("/");
    return this.call(
      "POST",
      `/api/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/flows/${encodeURIComponent(request.flow)}/runs`,
      { inputs: request.inputs },
    );
  }

  listRuns(filter: RunListFilter): Promise<RunSummary[]> {
    const query = new URLSearchParams();
    if (filter.repository) query.set("repository", filter.repository);
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

  async cancel(runRef: string, reason?: string): Promise<void> {
    await this.call("POST", `/api/runs/${encodeURIComponent(runRef)}/cancel`, { reason });
  }

  async retry(runRef: string, fromStep?: string): Promise<void> {
    await this.call("POST", `/api/runs/${encodeURIComponent(runRef)}/retry`, { fromStep });
  }

  webhookSecret(
    repository: string,
    flow: string,
    options: { rotate: boolean },
  ): Promise<WebhookSecret> {
    const [owner = "", repo = ""] = repository.split("/");
    return this.call(
      "POST",
      `/api/flows/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}/${encodeURIComponent(flow)}/webhook-secret`,
      { rotate: options.rotate },
    );
  }

  async close(): Promise<void> {}
}
