/**
 * Baton's HTTP API, as far as the action uses it, over the global fetch. Transient
 * failures (no answer, 429, 502, 503, 504) are retried with backoff, because a runner
 * that loses a report loses the step's outputs; any other 4xx is final, since sending it
 * again would be refused the same way.
 */
import type { Purpose } from "./errors.js";
import { BatonHttpError, BatonUnreachableError, UnexpectedAnswerError } from "./errors.js";

export interface BatonClientOptions {
  /** Tries per request, the first included. (Default: 4) */
  attempts?: number;
  /** The wait before the first retry; doubled before each next one. (Default: 1000 ms) */
  backoffMs?: number;
  /** The longest a single request may take before it counts as no answer. (Default: 30 000 ms) */
  requestTimeoutMs?: number;
  /** Told before each retry (the action logs it). */
  onRetry?: (why: string, delayMs: number) => void;
}

export interface BatonRequest {
  method: "GET" | "POST";
  path: string;
  /** Sent as `Authorization: Bearer <token>`. */
  token: string;
  body?: unknown;
  purpose: Purpose;
}

const TRANSIENT_STATUSES = new Set([429, 502, 503, 504]);
/** A Retry-After longer than this is not honoured: the job would look hung. */
const MAX_RETRY_AFTER_MS = 30_000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Baton's error body is `{ error: { code, message } }`; anything else is quoted as text. */
function errorOf(text: string): { code: string | undefined; message: string } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  const error =
    parsed !== null && typeof parsed === "object" && "error" in parsed ? parsed.error : undefined;
  if (error !== null && typeof error === "object") {
    const { code, message } = error as Record<string, unknown>;
    if (typeof message === "string")
      return { code: typeof code === "string" ? code : undefined, message };
  }
  const snippet = text.trim().slice(0, 200);
  return { code: undefined, message: snippet === "" ? "no body" : snippet };
}

function retryAfterMs(response: Response): number | undefined {
  const header = response.headers.get("retry-after");
  if (header === null) return undefined;
  const seconds = Number(header);
  return Number.isFinite(seconds) && seconds >= 0
    ? Math.min(seconds * 1000, MAX_RETRY_AFTER_MS)
    : undefined;
}

export class BatonClient {
  private readonly attempts: number;
  private readonly backoffMs: number;
  private readonly requestTimeoutMs: number;

  constructor(
    /** Baton's base URL, without a trailing slash. */
    readonly baseUrl: string,
    private readonly options: BatonClientOptions = {},
  ) {
    this.attempts = options.attempts ?? 4;
    this.backoffMs = options.backoffMs ?? 1000;
    this.requestTimeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  /** The request's JSON answer; a BatonHttpError, BatonUnreachableError or UnexpectedAnswerError. */
  async call(request: BatonRequest): Promise<unknown> {
    const url = `${this.baseUrl}${request.path}`;
    let networkFailed = false;
    for (let attempt = 1; ; attempt++) {
      const delay = this.backoffMs * 2 ** (attempt - 1);
      const sent = await fetch(url, {
        method: request.method,
        headers: {
          authorization: `Bearer ${request.token}`,
          accept: "application/json",
          ...(request.body === undefined ? {} : { "content-type": "application/json" }),
        },
        body: request.body === undefined ? undefined : JSON.stringify(request.body),
        signal: AbortSignal.timeout(this.requestTimeoutMs),
      }).then(
        (response) => ({ response }),
        (error: unknown) => ({ error }),
      );
      if ("error" in sent) {
        if (attempt >= this.attempts)
          throw new BatonUnreachableError(request.purpose, url, attempt, { cause: sent.error });
        networkFailed = true;
        const why = sent.error instanceof Error ? sent.error.message : String(sent.error);
        this.options.onRetry?.(`${request.method} ${url} failed (${why})`, delay);
        await sleep(delay);
        continue;
      }
      const { response } = sent;
      const text = await response.text();
      if (response.ok) {
        try {
          return JSON.parse(text) as unknown;
        } catch {
          throw new UnexpectedAnswerError(url, `${response.status} with a body that is not JSON`);
        }
      }
      if (TRANSIENT_STATUSES.has(response.status) && attempt < this.attempts) {
        const wait = retryAfterMs(response) ?? delay;
        this.options.onRetry?.(`${request.method} ${url} answered ${response.status}`, wait);
        await sleep(wait);
        continue;
      }
      const { code, message } = errorOf(text);
      throw new BatonHttpError(
        request.purpose,
        request.method,
        url,
        response.status,
        code,
        message,
        attempt,
        networkFailed,
      );
    }
  }
}
