/**
 * The webhook inbox: `POST /api/github/webhooks` verifies a delivery's signature, stores
 * it, and answers 202 — in that order, and nothing more (docs/architecture.md, rule 3). GitHub waits
 * 10 s for the answer and never redelivers by itself, so the answer never waits on
 * processing: a worker processes stored deliveries later (`processDeliveries`).
 *
 * Answers:
 * - 202 stored (or already stored: a redelivery keeps its X-GitHub-Delivery, so the
 *   primary key makes it a no-op and it is processed once);
 * - 401 missing or wrong signature, 400 malformed headers or body, 413 over 25 MB,
 *   415 an unknown content type: each recorded in `github_delivery_rejections` with the
 *   claimed delivery id and event and the reason, never the body;
 * - 503 with Retry-After when the bodies being received and not yet verified would take
 *   more memory than `maxUnverifiedBytes` (Default: 64 MiB): nothing of a request is
 *   trusted before its signature, and its signature covers the whole body, so what
 *   unverified requests may hold is bounded instead (a declared Content-Length is
 *   reserved before a byte is read; a chunked body as it arrives). Logged, not recorded:
 *   it says the app is busy, not that the request was wrong, and GitHub shows the
 *   delivery as failed, to be redelivered;
 * - 503 when the database refuses the write: GitHub then shows the delivery as failed,
 *   and it can be redelivered (by hand, or by the recovery that issue 4 adds).
 *
 * Why not Probot's own webhook middleware (`createNodeMiddleware`): it verifies and then
 * runs the handlers inside the request, answering when they finish (or 202 "still
 * processing" after 9 s), and stores nothing, so a crash or a slow handler loses the
 * delivery. The app mounts this inbox at the same path instead; a delivery handler can
 * still hand the stored delivery to `probot.receive({ id, name, payload })` to reuse
 * Probot's Context and authenticated Octokit.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Logger, stderrLogger } from "../runtime/index.js";
import type { Database, Queryable } from "../store/database.js";
import { pgErrorCode } from "../store/database.js";
import type { NewDelivery } from "../store/deliveries.js";
import { insertDeliveries, insertDelivery, insertRejection } from "../store/deliveries.js";
import { StreamingSignatureCheck } from "./webhook-signature.js";

export const WEBHOOK_PATH = "/api/github/webhooks";

/** GitHub caps webhook payloads at 25 MB; anything larger did not come from GitHub. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/**
 * What all bodies received but not yet verified may hold at once: 64 MiB, two and a half
 * of the largest deliveries, or hundreds of the usual ones (GitHub's are mostly a few KB).
 */
export const MAX_UNVERIFIED_BYTES = 64 * 1024 * 1024;

/** Longer claimed ids or event names are cut when recorded: they are unverified input. */
const MAX_RECORDED_HEADER = 100;

/** Postgres' `untranslatable_character`: jsonb refuses `\u0000` inside strings. */
const UNTRANSLATABLE_CHARACTER = "22P05";

export interface WebhookInboxOptions {
  store: Database;
  /** The app's webhook secret (WEBHOOK_SECRET). */
  secret: string;
  /** Told after a new delivery is stored, to wake a worker; never awaited. */
  onStored?: (deliveryId: string) => void;
  /** (Default: one line per message on stderr) */
  log?: Logger;
  /** (Default: MAX_WEBHOOK_BYTES) */
  maxBytes?: number;
  /** Memory for bodies not yet verified, all requests together. (Default: MAX_UNVERIFIED_BYTES) */
  maxUnverifiedBytes?: number;
  /** The clock. (Default: Date.now) */
  now?: () => number;
}

export type WebhookInbox = (request: IncomingMessage, response: ServerResponse) => Promise<void>;

/** Why a request was refused, with the status it gets. */
class Rejection {
  constructor(
    readonly status: number,
    readonly reason: string,
    /** Refused for want of memory, not for what the request is: answered, not recorded. */
    readonly busy = false,
  ) {}
}

/** Bytes that unverified bodies hold, against a budget shared by every request. */
class MemoryBudget {
  #used = 0;
  constructor(readonly limit: number) {}

  /** Take `bytes` if they fit; false (nothing taken) if not. */
  take(bytes: number): boolean {
    if (this.#used + bytes > this.limit) return false;
    this.#used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.#used -= bytes;
  }
}

/**
 * The request handler for `WEBHOOK_PATH` (any other path is the caller's: route first).
 * It never throws: every outcome is an HTTP answer, and failures are logged.
 */
export function createWebhookInbox(options: WebhookInboxOptions): WebhookInbox {
  const log = options.log ?? stderrLogger;
  const now = options.now ?? Date.now;
  const maxBytes = options.maxBytes ?? MAX_WEBHOOK_BYTES;
  const budget = new MemoryBudget(options.maxUnverifiedBytes ?? MAX_UNVERIFIED_BYTES);
  if (options.secret === "") {
    // An empty key would make every signature computable by anyone.
    throw new Error("The webhook secret is empty: set WEBHOOK_SECRET to the app's webhook secret.");
  }

  // The inbox's writes go before the workers' queries waiting for the embedded database.
  const writer = new DeliveryWriter(options.store.urgent?.() ?? options.store, options.store, log);

  return async (request, response) => {
    const receivedAt = new Date(now());
    const deliveryId = header(request, "x-github-delivery");
    const event = header(request, "x-github-event");
    const remoteAddress = request.socket.remoteAddress;

    const reject = async (rejection: Rejection): Promise<void> => {
      if (rejection.busy) {
        log.warn("webhook delivery refused: too many unverified bodies at once", {
          deliveryId: deliveryId?.slice(0, MAX_RECORDED_HEADER),
          event: event?.slice(0, MAX_RECORDED_HEADER),
          remoteAddress,
        });
        response.setHeader("retry-after", "5");
        response.setHeader("connection", "close");
        send(response, 503, { error: rejection.reason });
        return;
      }
      const record = {
        deliveryId: deliveryId?.slice(0, MAX_RECORDED_HEADER),
        event: event?.slice(0, MAX_RECORDED_HEADER),
        reason: rejection.reason,
        remoteAddress,
        receivedAt,
      };
      log.warn("webhook delivery rejected", { status: rejection.status, ...record });
      try {
        await insertRejection(options.store, record);
      } catch (error: unknown) {
        log.error("could not record a rejected webhook delivery", { ...record, error });
      }
      send(response, rejection.status, { error: rejection.reason });
    };

    if (request.method !== "POST") {
      response.setHeader("allow", "POST");
      send(response, 405, { error: "Webhooks are POSTed." });
      request.resume();
      return;
    }
    const check = new StreamingSignatureCheck(options.secret);
    const body = await readBody(request, maxBytes, budget, (chunk) => check.update(chunk));
    if (body instanceof Rejection) return reject(body);
    // The signature first: nothing of an unsigned request is trusted, parsed or stored.
    const verified = check.verify(header(request, "x-hub-signature-256"));
    // Verified or not, the body no longer counts against what unverified bodies may hold.
    budget.give(body.length);
    if (!verified) {
      const signed = header(request, "x-hub-signature-256") !== undefined;
      return reject(
        new Rejection(
          401,
          signed
            ? "X-Hub-Signature-256 does not match the body under the webhook secret"
            : "X-Hub-Signature-256 is missing",
        ),
      );
    }
    const parsed = parseDelivery(request, body, deliveryId, event);
    if (parsed instanceof Rejection) return reject(parsed);

    const stored = {
      id: parsed.id,
      event: parsed.event,
      action: typeof parsed.payload.action === "string" ? parsed.payload.action : undefined,
      installationId: installationIdOf(parsed.payload),
      hookId: numberHeader(request, "x-github-hook-id"),
      receivedAt,
      payloadJson: parsed.json,
    };
    let inserted: boolean;
    try {
      inserted = await writer.store(stored, parsed.payload);
    } catch (error: unknown) {
      log.error("could not store a webhook delivery", {
        id: parsed.id,
        event: parsed.event,
        error,
      });
      send(response, 503, { error: "The delivery could not be stored; redeliver it later." });
      return;
    }
    send(response, 202, { id: parsed.id, duplicate: !inserted });
    if (inserted) options.onStored?.(parsed.id);
  };
}

/**
 * Stores deliveries, grouping those that arrive while a write is in flight into one
 * statement (group commit): at a burst of deliveries the inbox does a few writes instead
 * of one each, which matters most on the embedded database, whose one connection also
 * serves the delivery worker and the runtime. A delivery waits at most for the write in
 * flight, then for its own group's.
 */
class DeliveryWriter {
  #waiting: {
    delivery: NewDelivery;
    payload: Record<string, unknown>;
    settle: (result: { inserted: boolean } | { error: unknown }) => void;
  }[] = [];
  #writing = false;

  constructor(
    /** Where grouped writes go (the urgent lane, when the store has one). */
    private readonly db: Queryable,
    /** Where a failed group's deliveries are written one by one. */
    private readonly fallback: Database,
    private readonly log: Logger,
  ) {}

  store(delivery: NewDelivery, payload: Record<string, unknown>): Promise<boolean> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({
        delivery,
        payload,
        settle: (result) =>
          "error" in result ? reject(toError(result.error)) : resolve(result.inserted),
      });
      if (!this.#writing) void this.#write();
    });
  }

  async #write(): Promise<void> {
    this.#writing = true;
    while (this.#waiting.length > 0) {
      const group = this.#waiting.splice(0, MAX_GROUP);
      try {
        const stored = await insertDeliveries(
          this.db,
          group.map((entry) => entry.delivery),
        );
        // An id twice in one group (a redelivery racing its original) is stored once.
        const claimed = new Set<string>();
        for (const entry of group) {
          const id = entry.delivery.id;
          const inserted = stored.has(id) && !claimed.has(id);
          claimed.add(id);
          entry.settle({ inserted });
        }
      } catch {
        // One bad delivery must not fail the others: store them one by one.
        for (const entry of group) {
          try {
            entry.settle({ inserted: await this.#storeOne(entry.delivery, entry.payload) });
          } catch (error: unknown) {
            entry.settle({ error });
          }
        }
      }
    }
    this.#writing = false;
  }

  async #storeOne(delivery: NewDelivery, payload: Record<string, unknown>): Promise<boolean> {
    try {
      return await insertDelivery(this.fallback, delivery);
    } catch (error: unknown) {
      if (pgErrorCode(error) !== UNTRANSLATABLE_CHARACTER) throw error;
      // jsonb cannot hold U+0000 in a string (a commit message can): keep the rest of
      // the payload, with U+FFFD in its place, rather than lose the delivery.
      this.log.warn("webhook payload contains U+0000; stored with U+FFFD instead", {
        id: delivery.id,
      });
      const payloadJson = JSON.stringify(payload, (_key, value: unknown) =>
        typeof value === "string" ? value.replaceAll("\u0000", "\uFFFD") : value,
      );
      return insertDelivery(this.fallback, { ...delivery, payloadJson });
    }
  }
}

function toError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Deliveries stored in one statement at most (a burst's group). */
const MAX_GROUP = 100;

interface ParsedDelivery {
  id: string;
  event: string;
  payload: Record<string, unknown>;
  /** The payload's JSON text, as received. */
  json: string;
}

function parseDelivery(
  request: IncomingMessage,
  body: Buffer,
  id: string | undefined,
  event: string | undefined,
): ParsedDelivery | Rejection {
  if (id === undefined || id.length > MAX_RECORDED_HEADER)
    return new Rejection(400, "X-GitHub-Delivery is missing or longer than 100 characters");
  if (event === undefined || !/^[a-z_]{1,100}$/.test(event))
    return new Rejection(400, "X-GitHub-Event is missing or not an event name");
  const type = (header(request, "content-type") ?? "application/json").split(";")[0]?.trim();
  let json: string;
  if (type === "application/json") {
    json = body.toString("utf8");
  } else if (type === "application/x-www-form-urlencoded") {
    // A webhook configured with the form content type sends the JSON as `payload=`.
    const payload = new URLSearchParams(body.toString("utf8")).get("payload");
    if (payload === null) return new Rejection(400, "The form body has no payload field");
    json = payload;
  } else {
    return new Rejection(415, `Content-Type ${type ?? ""} is not JSON or a form`);
  }
  let payload: unknown;
  try {
    payload = JSON.parse(json);
  } catch {
    return new Rejection(400, "The body is not JSON");
  }
  if (typeof payload !== "object" || payload === null || Array.isArray(payload))
    return new Rejection(400, "The payload is not a JSON object");
  return { id, event, payload: payload as Record<string, unknown>, json };
}

function installationIdOf(payload: Record<string, unknown>): number | undefined {
  const installation = payload.installation;
  if (typeof installation !== "object" || installation === null) return undefined;
  const id = (installation as { id?: unknown }).id;
  return typeof id === "number" && Number.isSafeInteger(id) ? id : undefined;
}

function header(request: IncomingMessage, name: string): string | undefined {
  const value = request.headers[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

function numberHeader(request: IncomingMessage, name: string): number | undefined {
  const value = header(request, name);
  return value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : undefined;
}

/**
 * The raw body, each chunk given to `onChunk` as it arrives, or a Rejection when it exceeds
 * `maxBytes` (checked while reading) or does not fit in the `budget`. The body's bytes are
 * taken from the budget; the caller gives them back once the body is verified.
 */
function readBody(
  request: IncomingMessage,
  maxBytes: number,
  budget: MemoryBudget,
  onChunk: (chunk: Buffer) => void,
): Promise<Buffer | Rejection> {
  const tooLarge = new Rejection(413, `The body exceeds ${maxBytes} bytes`);
  const busy = new Rejection(
    503,
    "Too many webhook bodies are being received at once; redeliver it later",
    true,
  );
  const declared = Number(request.headers["content-length"]);
  if (Number.isFinite(declared) && declared > maxBytes) {
    request.resume();
    return Promise.resolve(tooLarge);
  }
  // A declared length is reserved before a byte is read; a chunked body chunk by chunk.
  let reserved = Number.isFinite(declared) && declared >= 0 ? declared : 0;
  if (!budget.take(reserved)) {
    request.resume();
    return Promise.resolve(busy);
  }
  // Events rather than `for await`: leaving a `for await` early destroys the request's
  // socket, and the 413 could not be sent.
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let failed: Rejection | undefined;
    const fail = (rejection: Rejection) => {
      // Keep draining without keeping, so that the answer can still be sent.
      failed = rejection;
      chunks.length = 0;
      budget.give(reserved);
      reserved = 0;
      resolve(rejection);
    };
    request.on("data", (chunk: Buffer) => {
      if (failed) return;
      size += chunk.length;
      if (size > maxBytes) return fail(tooLarge);
      if (size > reserved) {
        if (!budget.take(size - reserved)) return fail(busy);
        reserved = size;
      }
      onChunk(chunk);
      chunks.push(chunk);
    });
    let ended = false;
    request.on("end", () => {
      ended = true;
      if (failed) return;
      const body = Buffer.concat(chunks);
      // A body shorter than declared gives back what it did not use.
      budget.give(reserved - body.length);
      reserved = body.length;
      resolve(body);
    });
    // A sender gone mid-body: give its reservation back (an abort may come as either).
    const broken = () => {
      if (!failed && !ended) fail(new Rejection(400, "The request failed while its body was read"));
    };
    request.on("error", broken);
    request.on("close", broken);
  });
}

function send(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
