/**
 * JSON over HTTP for Baton's routes (the run API, the runner protocol, webhook triggers):
 * one way to read a bounded JSON-object body and one way to answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export type JsonObjectBody =
  | { ok: true; value: Record<string, unknown> }
  /** Over `maxBytes`, or not a JSON object: the caller answers in its own words. */
  | { ok: false; problem: "too-large" | "not-an-object" };

/** Read a JSON object of at most `maxBytes` bytes; an empty body is `{}`. */
export async function readJsonObject(
  request: IncomingMessage,
  maxBytes: number,
): Promise<JsonObjectBody> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) return { ok: false, problem: "too-large" };
    chunks.push(chunk);
  }
  if (size === 0) return { ok: true, value: {} };
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      return { ok: false, problem: "not-an-object" };
    return { ok: true, value: parsed as Record<string, unknown> };
  } catch {
    return { ok: false, problem: "not-an-object" };
  }
}

/** Answer `body` as JSON (nothing, if an answer has already started). */
export function sendJson(response: ServerResponse, status: number, body: unknown): void {
  if (response.headersSent) return;
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}
