/**
 * What a step token may do over HTTP (the Baton action calls these):
 *
 *   POST /api/steps/outputs                  { outputs: { name: "value" } }
 *   POST /api/runs/{run}/signals/{name}      { payload }   (only the token's own run)
 *
 * A token that is malformed, forged or expired is refused (401), as is a second report of
 * outputs for the same attempt (a replay, 409) or a report for an attempt that no longer
 * runs (409); every refusal is recorded in `step_token_rejections` (a hash of the token,
 * never the token). A signal whose bearer is not a step token is passed on to the run API,
 * which knows GitHub users.
 */
import type { IncomingMessage } from "node:http";
import type { Json } from "../../engine/types.js";
import { tokenOf } from "../../http/api-server.js";
import { errorStatus } from "../../http/error-status.js";
import { readJsonObject, sendJson } from "../../http/json-io.js";
import { attemptIsCurrent } from "../../runtime/index.js";
import type { GitHubApp, HttpRoute } from "../github-app.js";
import type { StepTokenClaims } from "./step-token.js";
import {
  attemptKeyOf,
  isStepToken,
  stepTokenKey,
  tokenDigest,
  verifyStepToken,
} from "./step-token.js";
import type { TokenRejectionReason } from "../../store/workflow-dispatches.js";
import {
  getDispatch,
  recordOutputs,
  recordTokenRejection,
} from "../../store/workflow-dispatches.js";

export const OUTPUTS_PATH = "/api/steps/outputs";
/** Outputs of one step, in all: what `$GITHUB_OUTPUT` of a job would hold, with room. */
export const MAX_OUTPUTS_BYTES = 1024 * 1024;
const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly reason?: TokenRejectionReason,
    readonly key?: string,
  ) {
    super(message);
  }
}

export function stepTokenRoute(app: GitHubApp, options: { secretKey?: string } = {}): HttpRoute {
  return async (request, response, url) => {
    if (request.method !== "POST") return false;
    const signal = /^\/api\/runs\/([^/]+)\/signals\/([^/]+)$/.exec(url.pathname);
    if (url.pathname !== OUTPUTS_PATH && !signal) return false;
    const token = tokenOf(request);
    if (signal && (token === undefined || !isStepToken(token))) return false; // a GitHub user's
    try {
      const claims = await authenticate(app, token, options.secretKey);
      const body = await readJsonObject(request, MAX_OUTPUTS_BYTES);
      if (!body.ok)
        throw body.problem === "too-large"
          ? new Refusal(413, "too_large", `the body is over ${MAX_OUTPUTS_BYTES} bytes`)
          : new Refusal(400, "bad_request", "the body must be a JSON object");
      if (signal) {
        const [ref = "", name = ""] = signal.slice(1).map(decodeURIComponent);
        if (ref !== claims.run)
          throw new Refusal(
            403,
            "forbidden",
            `a step token signals only its own run (${claims.run}); use a GitHub token for other runs`,
          );
        await app.service.signal(
          ref,
          name,
          (body.value.payload ?? null) as Json,
          `step:${claims.step}`,
        );
        sendJson(response, 200, { ok: true, run: claims.run, signal: name });
        return true;
      }
      const outputs = outputsOf(body.value.outputs);
      const key = attemptKeyOf(claims);
      await reportOutputs(app, key, claims, outputs);
      sendJson(response, 200, {
        run: claims.run,
        step: claims.step,
        attempt: claims.attempt,
        outputs: Object.keys(outputs).length,
      });
    } catch (error: unknown) {
      if (!(error instanceof Refusal)) {
        // The run service's own refusals (no such run, the run ended) keep their status.
        const { status, code } = errorStatus(error);
        if (status >= 500) throw error;
        sendJson(response, status, { error: { code, message: (error as Error).message } });
        return true;
      }
      if (error.reason && token !== undefined)
        await recordTokenRejection(app.store, {
          reason: error.reason,
          ...(error.key !== undefined ? { key: error.key } : {}),
          tokenSha256: tokenDigest(token),
          ...(remoteAddressOf(request) !== undefined
            ? { remoteAddress: remoteAddressOf(request) }
            : {}),
        });
      if (error.reason)
        app.log.warn("refused a step token", { reason: error.reason, key: error.key });
      sendJson(response, error.status, { error: { code: error.code, message: error.message } });
    }
    return true;
  };
}

async function authenticate(
  app: GitHubApp,
  token: string | undefined,
  secretKey: string | undefined,
): Promise<StepTokenClaims> {
  if (token === undefined)
    throw new Refusal(401, "unauthorized", "give the step token: `Authorization: Bearer <token>`");
  const check = verifyStepToken(await stepTokenKey(app.store, secretKey), token, app.now());
  if (check.ok) return check.claims;
  const key = check.claims ? attemptKeyOf(check.claims) : undefined;
  const message = {
    malformed: "this is not a Baton step token",
    forged: "the step token's signature is wrong: it was not issued by this Baton",
    expired: `the step token expired at ${new Date((check.claims?.exp ?? 0) * 1000).toISOString()}: the step's timeout passed`,
  }[check.reason];
  throw new Refusal(401, "unauthorized", message, check.reason, key);
}

async function reportOutputs(
  app: GitHubApp,
  key: string,
  claims: StepTokenClaims,
  outputs: Record<string, string>,
): Promise<void> {
  const dispatch = await getDispatch(app.store, key);
  // A compensating workflow may report too (a workflow written as a step does); its
  // outputs are kept and not used.
  const running = await attemptIsCurrent(app.store, key);
  if (!dispatch || !running || dispatch.status === "completed")
    throw new Refusal(
      409,
      "conflict",
      `attempt ${claims.attempt} of step ${claims.step} is not running any more (it finished, timed out or was cancelled)`,
      "not-running",
      key,
    );
  if (!(await recordOutputs(app.store, key, outputs)))
    throw new Refusal(
      409,
      "conflict",
      `the outputs of attempt ${claims.attempt} of step ${claims.step} were reported already: a step reports once`,
      "replayed",
      key,
    );
}

function outputsOf(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new Refusal(
      400,
      "bad_request",
      'outputs must be an object of names to strings, e.g. {"version": "1.2"}',
    );
  const outputs: Record<string, string> = {};
  for (const [name, output] of Object.entries(value as Record<string, unknown>)) {
    if (!OUTPUT_NAME.test(name))
      throw new Refusal(
        400,
        "bad_request",
        `output name \`${name}\` must match ${OUTPUT_NAME.source}`,
      );
    if (typeof output !== "string")
      throw new Refusal(400, "bad_request", `output \`${name}\` must be a string`);
    outputs[name] = output;
  }
  return outputs;
}

function remoteAddressOf(request: IncomingMessage): string | undefined {
  return request.socket.remoteAddress;
}
