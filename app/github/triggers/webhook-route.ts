/**
 * `on.webhook` triggers: `POST /api/flows/{owner}/{repo}/{flow}/webhook`.
 *
 * The request:
 * - header `X-Baton-Signature-256: sha256=<hex>`, the HMAC-SHA256 of the raw body with the
 *   flow's webhook secret (`baton webhook-secret`; see webhook-secrets.ts), as GitHub signs
 *   its own webhooks;
 * - a JSON object body of at most 1 MiB (an empty body is `{}`). The whole body is the
 *   run's `${{ trigger.payload }}`; its `inputs` field, if any, holds the run's inputs
 *   (an object of name: value), checked against the flow's `on.manual.inputs`.
 *
 * The answers: 202 `{ runId, number, flow, status }` when the run started (status
 * `queued` when its concurrency group made it wait); 404 when no live flow at that path
 * accepts webhooks (an unknown repository or flow, or a flow without `on.webhook`: the
 * same answer, so that the URL tells nobody which flows exist); 401 when the signature is
 * missing or wrong, or no secret was issued yet; 413 for a body over the limit; 400 for a
 * body that is not a JSON object; 422 `{ error: "invalid_inputs", errors: [...] }` when
 * the inputs do not fit; 409 when the flow's concurrency group rejects the run. Refused
 * requests (401, 404, 413) are recorded in `flow_webhook_rejections` with the reason and
 * the sender's address, never the body or the signature.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { Json } from "../../engine/types.js";
import {
  ConcurrencyGroupError,
  ConcurrencyRejectedError,
  InvalidInputsError,
} from "../../runtime/errors.js";
import type { GitHubApp, HttpRoute } from "../github-app.js";
import { errorMessage } from "./start-triggered-run.js";
import {
  getInstalledRepository,
  getLiveFlow,
  recordWebhookRejection,
  webhookSecretGeneration,
} from "./triggers-sql.js";
import { deriveWebhookSecret, signWebhookBody, webhookSecretKey } from "./webhook-secrets.js";
import { sendJson } from "../../http/json-io.js";

export const WEBHOOK_SIGNATURE_HEADER = "x-baton-signature-256";

/** Larger bodies are refused (413). */
export const MAX_WEBHOOK_TRIGGER_BYTES = 1024 * 1024;

const ROUTE = /^\/api\/flows\/([^/]+)\/([^/]+)\/([^/]+)\/webhook$/;

export interface WebhookRouteOptions {
  /** (Default: MAX_WEBHOOK_TRIGGER_BYTES) */
  maxBodyBytes?: number;
  /** The key secrets derive from. (Default: BATON_SECRET_KEY, else the stored key) */
  secretKey?: string;
  /** Who webhook runs are started by. (Default: "webhook") */
  actor?: string;
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
  return async (request, response, url) => {
    const match = ROUTE.exec(url.pathname);
    if (!match) return false;
    const [owner, repo, flowName] = match.slice(1).map((part) => safeDecode(part ?? ""));
    const repository = `${owner ?? ""}/${repo ?? ""}`;
    const flow = flowName ?? "";
    const receivedAt = new Date(app.now());
    try {
      if (request.method !== "POST") {
        response.setHeader("allow", "POST");
        throw new Refusal(405, "method_not_allowed", "Use POST.");
      }
      const body = await readBody(request, maxBytes);
      const live = await getLiveFlow(app.store, repository, flow);
      if (!live) throw new Refusal(404, "not_found", NOT_FOUND, "no live flow at this path");
      if (live.definition.on?.webhook === undefined) {
        throw new Refusal(404, "not_found", NOT_FOUND, "the live flow has no on.webhook");
      }
      const generation = await webhookSecretGeneration(app.store, repository, flow);
      if (generation === undefined) {
        throw new Refusal(
          401,
          "no_secret",
          "No webhook secret was issued for this flow yet; a repository admin gets one with `baton webhook-secret`.",
          "no secret issued yet",
        );
      }
      const key = await webhookSecretKey(app.store, options.secretKey);
      const secret = deriveWebhookSecret(key, repository, flow, generation);
      checkSignature(request.headers[WEBHOOK_SIGNATURE_HEADER], secret, body);

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
        const installed = await getInstalledRepository(tx, repository);
        if (!installed) throw new Refusal(404, "not_found", NOT_FOUND);
        return app.service.startRunIn(tx, {
          flowFile: { versionId: current.versionId },
          inputs: inputs as Record<string, Json>,
          actor: options.actor ?? "webhook",
          trigger: { event: "webhook", payload: payload as Json },
          github: {
            installationId: installed.installationId,
            headSha: installed.liveSha ?? current.sha,
          },
        });
      });
      app.log.info("a webhook started a run", {
        repository,
        flow,
        run: `${run.flow}#${run.number}`,
      });
      sendJson(response, 202, {
        runId: run.runId,
        number: run.number,
        flow: run.flow,
        status: run.status,
      });
    } catch (error: unknown) {
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

function checkSignature(header: string | string[] | undefined, secret: string, body: Buffer): void {
  if (header === undefined) {
    throw new Refusal(
      401,
      "unsigned",
      `The request is not signed: send ${WEBHOOK_SIGNATURE_HEADER}: sha256=<HMAC-SHA256 of the body with the flow's secret, in hex>.`,
      "no signature",
    );
  }
  const given = Array.isArray(header) ? (header[0] ?? "") : header;
  if (!/^sha256=[0-9a-f]{64}$/i.test(given)) {
    throw new Refusal(
      401,
      "bad_signature",
      `${WEBHOOK_SIGNATURE_HEADER} must be sha256=<64 hex digits>.`,
      "malformed signature",
    );
  }
  const expected = Buffer.from(signWebhookBody(secret, body));
  const actual = Buffer.from(given.toLowerCase());
  if (expected.length !== actual.length || !timingSafeEqual(expected, actual)) {
    throw new Refusal(
      401,
      "bad_signature",
      "The signature does not match the body: sign the exact bytes sent, with the flow's current secret.",
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

async function readBody(request: IncomingMessage, maxBytes: number): Promise<Buffer> {
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
    // The rest of an oversized body is not read: close the connection after answering.
    if (error.status === 413) response.setHeader("connection", "close");
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
