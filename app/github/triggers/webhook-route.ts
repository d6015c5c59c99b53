/**
 * `on.webhook` triggers: `POST /api/flows/{owner}/{repo}/{flow}/webhook`.
 *
 * The request, signed as Stripe and Slack sign theirs:
 * - `X-Baton-Timestamp: <Unix seconds>`, within 5 minutes of the app's clock;
 * - `X-Baton-Delivery: <id>`, 1-100 of `A-Za-z0-9._-` (a UUID), new for every request:
 *   an id the flow has accepted before is a replay;
 * - `X-Baton-Signature-256: sha256=<hex>`, the HMAC-SHA256, under the flow's webhook
 *   secret (`baton webhook-secret`; see webhook-secrets.ts), of
 *   `v1:<timestamp>:<delivery>:<body>` (the body's exact bytes);
 * - a JSON object body of at most 1 MiB (an empty body is `{}`). The whole body is the
 *   run's `${{ trigger.payload }}`; its `inputs` field, if any, holds the run's inputs
 *   (an object of name: value), checked against the flow's `on.manual.inputs`.
 *
 * Nothing of the body is trusted before the signature is: the headers are checked before
 * the body is read, the body is hashed as it streams in and read no further than the
 * limit, and at most `maxUnverified` bodies (Default: 32) are read at once per process.
 *
 * The answers: 202 `{ runId, number, flow, status }` when the run started (status
 * `queued` when its concurrency group made it wait); 404 when no live flow at that path
 * accepts webhooks (an unknown repository or flow, or a flow without `on.webhook`: the
 * same answer, so that the URL tells nobody which flows exist); 401 when a header is
 * missing or malformed, the timestamp is stale, the signature is wrong, or no secret was
 * issued yet; 409 `replayed` for a delivery id seen before; 413 for a body over the
 * limit; 503 with Retry-After when too many bodies are being read; 400 for a body that
 * is not a JSON object; 422 `{ error: "invalid_inputs", errors: [...] }` when the inputs
 * do not fit; 409 when the flow's concurrency group rejects the run. Refused requests
 * (401, 404, 409 replayed, 413) are recorded in `flow_webhook_rejections` with the reason
 * and the sender's address, never the body or the signature.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import type { Json } from "../../engine/types.js";
import {
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  InvalidInputsError,
} from "../../runtime/index.js";
import type { GitHubApp, HttpRoute } from "../github-app.js";
import { errorMessage } from "./start-triggered-run.js";
import {
  recordWebhookDelivery,
  recordWebhookRejection,
  setWebhookDeliveryRun,
  webhookSecretIssue,
} from "../../store/triggers.js";
import { getLiveFlow } from "../../store/live-flows.js";
import { getInstalledRepository } from "../../store/repositories.js";
import {
  DELIVERY_ID,
  deriveWebhookSecret,
  WEBHOOK_DELIVERY_HEADER,
  WEBHOOK_SIGNATURE_HEADER,
  WEBHOOK_TIMESTAMP_HEADER,
  webhookSecretKey,
  webhookSignedPrefix,
} from "./webhook-secrets.js";
import { sendJson } from "../../http/json-io.js";

export { WEBHOOK_SIGNATURE_HEADER };

/** Larger bodies are refused (413). */
export const MAX_WEBHOOK_TRIGGER_BYTES = 1024 * 1024;

/** How far a request's timestamp may be from the app's clock, either way: 5 minutes. */
export const WEBHOOK_TOLERANCE_MS = 5 * 60_000;

/** Accepted delivery ids are remembered this long (at least twice the tolerance). */
const DELIVERY_MEMORY_MS = 60 * 60_000;

/** Bodies read at once before their signature is known, per process. */
export const MAX_UNVERIFIED_WEBHOOK_BODIES = 32;

const ROUTE = /^\/api\/flows\/([^/]+)\/([^/]+)\/([^/]+)\/webhook$/;

export interface WebhookRouteOptions {
  /** (Default: MAX_WEBHOOK_TRIGGER_BYTES) */
  maxBodyBytes?: number;
  /** The key secrets derive from. (Default: BATON_SECRET_KEY, else the stored key) */
  secretKey?: string;
  /** Who webhook runs are started by. (Default: "webhook") */
  actor?: string;
  /** Bodies read at once before their signature is checked. (Default: MAX_UNVERIFIED_WEBHOOK_BODIES) */
  maxUnverified?: number;
  /** How far a timestamp may be from now. (Default: WEBHOOK_TOLERANCE_MS) */
  toleranceMs?: number;
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** Why, for `flow_webhook_rejections`; undefined: not recorded. */
    readonly recorded?: string,
  ) {
    super(message);
  }
}

const NOT_FOUND = "No live flow at this URL accepts webhooks (it needs `on.webhook`).";

export function webhookTriggerRoute(app: GitHubApp, options: WebhookRouteOptions = {}): HttpRoute {
  const maxBytes = options.maxBodyBytes ?? MAX_WEBHOOK_TRIGGER_BYTES;
  const maxUnverified = options.maxUnverified ?? MAX_UNVERIFIED_WEBHOOK_BODIES;
  const toleranceMs = options.toleranceMs ?? WEBHOOK_TOLERANCE_MS;
  let unverified = 0;
  return async (request, response, url) => {
    const match = ROUTE.exec(url.pathname);
    if (!match) return false;
    const [owner, repo, flowName] = match.slice(1).map((part) => safeDecode(part ?? ""));
    const repository = `${owner ?? ""}/${repo ?? ""}`;
    const flow = flowName ?? "";
    const receivedAt = new Date(app.now());
    let reading = false;
    try {
      if (request.method !== "POST") {
        response.setHeader("allow", "POST");
        throw new Refusal(405, "method_not_allowed", "Use POST.");
      }
      const live = await getLiveFlow(app.store, repository, flow);
      if (!live) throw new Refusal(404, "not_found", NOT_FOUND, "no live flow at this path");
      if (live.definition.on?.webhook === undefined) {
        throw new Refusal(404, "not_found", NOT_FOUND, "the live flow has no on.webhook");
      }
      // The headers before the body: an unsigned, stale or malformed request is refused
      // before a byte of its body is read.
      const signed = signedHeaders(request, receivedAt.getTime(), toleranceMs);
      const issue = await webhookSecretIssue(app.store, repository, flow);
      const installed = await getInstalledRepository(app.store, repository);
      if (
        issue === undefined ||
        !installed ||
        // Issued to another repository that had this name (a rename, a transfer).
        (issue.repositoryId !== undefined &&
          installed.githubId !== undefined &&
          issue.repositoryId !== installed.githubId)
      ) {
        throw new Refusal(
          401,
          "no_secret",
          "No webhook secret was issued for this flow yet; a repository admin gets one with `baton webhook-secret`.",
          issue === undefined ? "no secret issued yet" : "secret issued to another repository",
        );
      }
      const key = await webhookSecretKey(app.store, options.secretKey);
      const secret = deriveWebhookSecret(key, { repository, flow, ...issue });
      if (unverified >= maxUnverified) {
        response.setHeader("retry-after", "1");
        throw new Refusal(
          503,
          "busy",
          "Too many webhook bodies are being received at once; retry in a second.",
        );
      }
      unverified++;
      reading = true;
      const hmac = createHmac("sha256", secret).update(
        webhookSignedPrefix(signed.timestamp, signed.delivery),
      );
      const body = await readBody(request, maxBytes, (chunk) => hmac.update(chunk));
      unverified--;
      reading = false;
      checkSignature(signed.signature, hmac.digest("hex"));

      const payload = parseBody(body);
      const inputs = payload.inputs ?? {};
      if (typeof inputs !== "object" || inputs === null || Array.isArray(inputs)) {
        throw new Refusal(400, "bad_request", "`inputs` must be an object of name: value.");
      }
      const run = await app.store.transaction(async (tx) => {
        const current = await getLiveFlow(tx, repository, flow);
        // Read again in the transaction: the flow may have changed since the checks above.
        if (current?.definition.on?.webhook === undefined) {
          throw new Refusal(404, "not_found", NOT_FOUND);
        }
        const installedNow = await getInstalledRepository(tx, repository);
        if (!installedNow) throw new Refusal(404, "not_found", NOT_FOUND);
        // In the run's transaction: of two requests with one delivery id, one starts a run.
        const first = await recordWebhookDelivery(tx, {
          repository,
          flow,
          id: signed.delivery,
          receivedAt,
          forgetBefore: new Date(receivedAt.getTime() - DELIVERY_MEMORY_MS),
        });
        if (!first) {
          throw new Refusal(
            409,
            "replayed",
            `Delivery ${signed.delivery} was accepted before: send every request with a new ${WEBHOOK_DELIVERY_HEADER}.`,
            `replayed delivery ${signed.delivery}`,
          );
        }
        const started = await app.service.startRunIn(tx, {
          flowFile: { versionId: current.versionId },
          inputs: inputs as Record<string, Json>,
          actor: options.actor ?? "webhook",
          trigger: { event: "webhook", payload: payload as Json },
          github: {
            installationId: installedNow.installationId,
            headSha: installedNow.liveSha ?? current.versionSha,
          },
        });
        await setWebhookDeliveryRun(tx, {
          repository,
          flow,
          id: signed.delivery,
          runId: started.runId,
        });
        return started;
      });
      app.log.info("a webhook started a run", {
        repository,
        flow,
        delivery: signed.delivery,
        run: `${run.flow}#${run.number}`,
      });
      sendJson(response, 202, {
        runId: run.runId,
        number: run.number,
        flow: run.flow,
        status: run.status,
      });
    } catch (error: unknown) {
      if (reading) unverified--;
      await answerError(app, response, error, {
        repository,
        flow,
        receivedAt,
        remoteAddress: request.socket.remoteAddress,
      });
    }
    return true;
  };
}

interface SignedHeaders {
  timestamp: string;
  delivery: string;
  signature: string;
}

const HOW_TO_SIGN = `sign v1:<timestamp>:<delivery>:<body> with the flow's secret (HMAC-SHA256, hex) into ${WEBHOOK_SIGNATURE_HEADER}: sha256=<hex>, with ${WEBHOOK_TIMESTAMP_HEADER}: <Unix seconds> and ${WEBHOOK_DELIVERY_HEADER}: <a new id>`;

function unsignedRefusal(): Refusal {
  return new Refusal(401, "unsigned", `The request is not signed: ${HOW_TO_SIGN}.`, "no signature");
}

/** The signing headers, checked for form and freshness (the signature itself comes later). */
function signedHeaders(request: IncomingMessage, now: number, toleranceMs: number): SignedHeaders {
  const one = (name: string): string | undefined => {
    const value = request.headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const signature = one(WEBHOOK_SIGNATURE_HEADER);
  if (signature === undefined) throw unsignedRefusal();
  if (!/^sha256=[0-9a-f]{64}$/i.test(signature)) {
    throw new Refusal(
      401,
      "bad_signature",
      `${WEBHOOK_SIGNATURE_HEADER} must be sha256=<64 hex digits>.`,
      "malformed signature",
    );
  }
  const timestamp = one(WEBHOOK_TIMESTAMP_HEADER);
  if (timestamp === undefined || !/^\d{1,12}$/.test(timestamp)) {
    throw new Refusal(
      401,
      "bad_timestamp",
      `${WEBHOOK_TIMESTAMP_HEADER} must be the time of sending in Unix seconds (date +%s); ${HOW_TO_SIGN}.`,
      timestamp === undefined ? "no timestamp" : "malformed timestamp",
    );
  }
  const skew = Number(timestamp) * 1000 - now;
  if (Math.abs(skew) > toleranceMs) {
    throw new Refusal(
      401,
      "stale_timestamp",
      `${WEBHOOK_TIMESTAMP_HEADER} is ${Math.round(Math.abs(skew) / 1000)} s ${skew < 0 ? "old" : "in the future"}; it must be within ${toleranceMs / 1000} s of now: sign each request when it is sent (and check the sender's clock).`,
      `timestamp ${Math.round(skew / 1000)} s from now`,
    );
  }
  const delivery = one(WEBHOOK_DELIVERY_HEADER);
  if (delivery === undefined || !DELIVERY_ID.test(delivery)) {
    throw new Refusal(
      401,
      "bad_delivery",
      `${WEBHOOK_DELIVERY_HEADER} must be a new id for each request: 1-100 of A-Z a-z 0-9 . _ - (a UUID).`,
      delivery === undefined ? "no delivery id" : "malformed delivery id",
    );
  }
  return { timestamp, delivery, signature };
}

function checkSignature(given: string, expectedHex: string): void {
  const expected = Buffer.from(`sha256=${expectedHex}`);
  const actual = Buffer.from(given.toLowerCase());
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new Refusal(
      401,
      "bad_signature",
      "The signature does not match: sign v1:<timestamp>:<delivery>:<the exact bytes sent> with the flow's current secret.",
      "signature does not match",
    );
  }
}

function parseBody(body: Buffer): Record<string, unknown> {
  if (body.length === 0) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch (error: unknown) {
    throw new Refusal(400, "bad_request", `The body is not JSON: ${errorMessage(error)}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Refusal(400, "bad_request", "The body must be a JSON object.");
  }
  return parsed as Record<string, unknown>;
}

/** The body, each chunk also given to `onChunk` as it arrives; refused past `maxBytes`. */
async function readBody(
  request: IncomingMessage,
  maxBytes: number,
  onChunk: (chunk: Buffer) => void,
): Promise<Buffer> {
  const declared = Number(request.headers["content-length"]);
  const tooLarge = () =>
    new Refusal(
      413,
      "too_large",
      `The body is over ${maxBytes} bytes.`,
      `body over ${maxBytes} bytes`,
    );
  if (Number.isFinite(declared) && declared > maxBytes) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) throw tooLarge();
    onChunk(chunk);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function answerError(
  app: GitHubApp,
  response: ServerResponse,
  error: unknown,
  where: { repository: string; flow: string; receivedAt: Date; remoteAddress: string | undefined },
): Promise<void> {
  if (error instanceof Refusal) {
    // The body of a refused request is not read (or not all of it): close the connection
    // after answering rather than drain it.
    response.setHeader("connection", "close");
    if (error.recorded !== undefined) {
      try {
        await recordWebhookRejection(app.store, {
          // The path is the sender's: keep it short.
          repository: where.repository.slice(0, 200),
          flow: where.flow.slice(0, 200),
          reason: error.recorded,
          remoteAddress: where.remoteAddress,
          receivedAt: where.receivedAt,
        });
      } catch (recordError: unknown) {
        app.log.error("a refused webhook trigger could not be recorded", {
          repository: where.repository,
          flow: where.flow,
          reason: error.recorded,
          error: errorMessage(recordError),
        });
      }
      app.log.warn("a webhook trigger was refused", {
        repository: where.repository,
        flow: where.flow,
        reason: error.recorded,
        remoteAddress: where.remoteAddress,
      });
    }
    return sendJson(response, error.status, { error: error.code, message: error.message });
  }
  if (error instanceof InvalidInputsError) {
    return sendJson(response, 422, {
      error: "invalid_inputs",
      message: `The inputs do not fit flow ${error.flow}. Pass them as "inputs": { "name": value } in the body.`,
      errors: error.errors,
    });
  }
  if (error instanceof ConcurrencyGroupError) {
    return sendJson(response, 422, { error: "concurrency_group", message: error.message });
  }
  if (error instanceof ConcurrencyRejectedError) {
    return sendJson(response, 409, { error: "concurrency_rejected", message: error.message });
  }
  app.log.error("a webhook trigger failed", {
    repository: where.repository,
    flow: where.flow,
    error: errorMessage(error),
  });
  sendJson(response, 500, { error: "internal", message: "Starting the run failed; try again." });
}

function safeDecode(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}
