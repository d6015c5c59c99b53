/**
 * The run API: what people and agents can do with runs, whichever process holds them.
 * Implementations: `app/cli/direct-client.ts` opens the store in this process;
 * `app/cli/http-client.ts` talks to a running Baton (`baton serve`, or a `baton run --wait`
 * in another terminal, which owns the embedded database while it runs), served by
 * `api-server.ts`.
 */
import type { Json, RunEvent, RunState, RunStatus } from "../engine/types.js";

/** A run with its history: enough to be shown without the database. */
export interface RunView {
  id: string;
  /** `owner/repo` for a repository's flow, `local` for a local flow file. */
  repository: string;
  flow: string;
  number: number;
  state: RunState;
  events: RunEvent[];
}

export interface StartRunRequest {
  /** A local flow file: its path (for people and for sub-flows beside it) and content. */
  flowFile: { path: string; source: string };
  inputs: Record<string, Json>;
}

/** Start the live version of a repository's flow (it must declare `on.manual`). */
export interface StartLiveRunRequest {
  /** `owner/repo`. */
  repository: string;
  flow: string;
  inputs: Record<string, Json>;
}

export interface StartedRun {
  id: string;
  number: number;
  flow: string;
  /** `owner/repo`, or `local`. */
  repository?: string;
}

export interface RunSummary {
  id: string;
  repository: string;
  flow: string;
  number: number;
  status: RunStatus;
  createdAt: number;
  finishedAt?: number;
}

export interface LogLine {
  step: string;
  attempt: number;
  stream: "stdout" | "stderr";
  seq: number;
  text: string;
}

export interface ApprovalVerdict {
  counted: boolean;
  reason?: string;
  /** Who the decision was recorded for (the token's login against a GitHub app). */
  user?: string;
}

export interface RunListFilter {
  /** `owner/repo`, or `local`. Required against a GitHub app (see api-server.ts). */
  repository?: string;
  flow?: string;
  status?: RunStatus;
  limit?: number;
}

/** A flow's webhook-trigger secret, shown once to a repository admin. */
export interface WebhookSecret {
  repository: string;
  flow: string;
  secret: string;
  /** Where the flow's webhook is: POST it, signed with the secret (X-Baton-Signature-256). */
  path: string;
  rotated: boolean;
}

export interface BatonApi {
  startRun(request: StartRunRequest): Promise<StartedRun>;
  /** Start the live version of a repository's flow. */
  startLiveRun(request: StartLiveRunRequest): Promise<StartedRun>;
  listRuns(filter: RunListFilter): Promise<RunSummary[]>;
  /** A run by full id, unique id prefix, `<flow>#<number>` or `<owner>/<repo>/<flow>#<number>`. */
  getRun(ref: string): Promise<RunView>;
  getLogs(runRef: string, step?: string, afterSeq?: number): Promise<LogLine[]>;
  /** The flow's policy judges the decision: it may not count, and then says why. */
  decide(
    runRef: string,
    step: string,
    decision: "approve" | "reject",
    comment?: string,
  ): Promise<ApprovalVerdict>;
  signal(runRef: string, name: string, payload: Json): Promise<void>;
  /** (Default reason: "cancelled by <who>") */
  cancel(runRef: string, reason?: string): Promise<void>;
  retry(runRef: string, fromStep?: string): Promise<void>;
  /** A flow's webhook-trigger secret (repository admins); `rotate` makes a new one. */
  webhookSecret(
    repository: string,
    flow: string,
    options: { rotate: boolean },
  ): Promise<WebhookSecret>;
  /** Whether this client executes runs itself (direct) or a server does (HTTP). */
  readonly executesRuns: boolean;
  close(): Promise<void>;
}

/** An error the server reported, with the HTTP status and its machine-readable code. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    /** More of the server's answer: `details` (a list of problems), `permission`, `required`. */
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}
