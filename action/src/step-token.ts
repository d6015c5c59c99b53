/**
 * Baton's step token, as the action sees it: `bst1.<base64url(JSON payload)>.<base64url(signature)>`.
 * The action reads the payload to learn Baton's URL and the run, step and attempt the token
 * is for; it cannot check the signature (only Baton holds the key), so nothing here is
 * trusted for more than addressing and wording error messages: Baton verifies every use.
 */
import { InputError } from "./errors.js";

export interface StepTokenPayload {
  /** Baton's base URL, e.g. https://baton.example.com */
  url: string;
  /** The run's id (a UUID). */
  run: string;
  step: string;
  attempt: number;
  /** When the token stops being accepted, in unix seconds. */
  exp: number;
}

export interface StepToken {
  /** The token as given: sent to Baton, masked in the log, never printed. */
  raw: string;
  payload: StepTokenPayload;
}

const PREFIX = "bst1";
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** Why a string is not a step token, or undefined when its payload reads well. */
function payloadOf(raw: string): StepTokenPayload | string {
  const parts = raw.split(".");
  if (parts.length !== 3 || parts[0] !== PREFIX)
    return `it does not have the form ${PREFIX}.<payload>.<signature>`;
  const [, encoded = "", signature = ""] = parts;
  if (!BASE64URL.test(encoded) || !BASE64URL.test(signature))
    return "its payload or signature is not base64url";
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(encoded, "base64url").toString("utf8"));
  } catch {
    return "its payload is not JSON";
  }
  if (decoded === null || typeof decoded !== "object") return "its payload is not a JSON object";
  const { url, run, step, attempt, exp } = decoded as Record<string, unknown>;
  if (typeof url !== "string" || typeof run !== "string" || typeof step !== "string")
    return "its payload lacks url, run or step";
  if (typeof attempt !== "number" || typeof exp !== "number")
    return "its payload lacks attempt or exp";
  return { url, run, step, attempt, exp };
}

/** Decodes a step token's payload without verifying it (see the file's comment). */
export function decodeStepToken(raw: string, source: string): StepToken {
  const payload = payloadOf(raw);
  if (typeof payload === "string")
    throw new InputError(
      `The ${source} is not a Baton step token: ${payload}. ` +
        "Pass the workflow's `baton` input unchanged: `step-token: ${{ inputs.baton }}`.",
    );
  return { raw, payload };
}

/** The token's expiry as an ISO date, for messages. */
export const expiryOf = (payload: StepTokenPayload): string =>
  new Date(payload.exp * 1000).toISOString();
