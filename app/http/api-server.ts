/**
 * The run API over HTTP: every operation of `BatonApi`, as JSON routes.
 *
 * Locally, the process that owns the embedded database (`baton serve`, `baton run --wait`)
 * serves it on 127.0.0.1 so that other terminals can approve, signal or cancel its runs.
 * The token is a random secret written to the data directory with mode 0600: whoever can
 * read it could open the database anyway, so it proves nothing more and nothing less.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { timingSafeEqual } from "node:crypto";
import type { BatonApi } from "./api.js";
import { ApiError } from "./api.js";
import { errorStatus } from "./error-status.js";
import type { Json, RunStatus } from "../engine/types.js";

/** Request bodies larger than this are refused (413): runs are started with a flow file and inputs. */
export const MAX_BODY_BYTES = 2 * 1024 * 1024;

/** Local identities are declared, not proven: the header names who acts (see README, "Local mode"). */
export const ACTOR_HEADER = "x-baton-actor";

export interface ApiServerOptions {
  /** Opens a client acting as the given person. */
  clientFor(actor: string): BatonApi;
  token: string;
  defaultActor: string;
}

type Handler = (request: {
  params: string[];
  query: URLSearchParams;
  body: Record<string, unknown>;
  client: BatonApi;
}) => Promise<{ status: number; body: unknown }>;

const ok = (body: unknown = { ok: true }) => ({ status: 200, body });
const str = (value: unknown): string | undefined => (typeof value === "string" ? value : undefined);

const routes: Array<{ method: string; pattern: RegExp; handler: Handler }> = [
  {
    method: "POST",
    pattern: /^\/api\/runs$/,
    handler: async ({ body, client }) => {
      const flowFile = body.flowFile as { path?: unknown; source?: unknown } | undefined;
      if (typeof flowFile?.path !== "string" || typeof flowFile.source !== "string") {
        throw new ApiError("flowFile.path and flowFile.source are required", 400, "bad_request");
      }
      const inputs = (body.inputs ?? {}) as Record<string, Json>;
      const started = await client.startRun({
        flowFile: { path: flowFile.path, source: flowFile.source },
        inputs,
      });
      return { status: 201, body: started };
    },
  },
  {
    method: "GET",
    pattern: /^\/api\/runs$/,
    handler: async ({ query, client }) => {
      const limit = query.get("limit");
      return ok(
        await client.listRuns({
          flow: query.get("flow") ?? undefined,
          status: (query.get("status") as RunStatus | null) ?? undefined,
          limit: limit === null ? undefined : Number(limit),
        }),
      );
    },
  },
  {
    method: "GET",
    pattern: /^\/api\/runs\/([^/]+)$/,
    handler: async ({ params, client }) => ok(await client.getRun(params[0] ?? "")),
  },
  {
    method: "GET",
    pattern: /^\/api\/runs\/([^/]+)\/logs$/,
    handler: async ({ params, query, client }) => {
      const after = query.get("after");
      return ok(
        await client.getLogs(
          params[0] ?? "",
          query.get("step") ?? undefined,
          after === null ? undefined : Number(after),
        ),
      );
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/steps\/([^/]+)\/(approve|reject)$/,
    handler: async ({ params, body, client }) => {
      const [run = "", step = "", decision] = params;
      const verdict = await client.decide(
        run,
        step,
        decision === "approve" ? "approve" : "reject",
        str(body.comment),
      );
      return ok(verdict);
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/signals\/([^/]+)$/,
    handler: async ({ params, body, client }) => {
      await client.signal(params[0] ?? "", params[1] ?? "", (body.payload ?? null) as Json);
      return ok();
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/cancel$/,
    handler: async ({ params, body, client }) => {
      await client.cancel(params[0] ?? "", str(body.reason) ?? "cancelled");
      return ok();
    },
  },
  {
    method: "POST",
    pattern: /^\/api\/runs\/([^/]+)\/retry$/,
    handler: async ({ params, body, client }) => {
      await client.retry(params[0] ?? "", str(body.fromStep));
      return ok();
    },
  },
];

function tokenMatches(given: string | undefined, expected: string): boolean {
  if (given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

async function readBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY_BYTES)
      throw new ApiError(`request body over ${MAX_BODY_BYTES} bytes`, 413, "too_large");
    chunks.push(chunk);
  }
  if (size === 0) return {};
  try {
    const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed))
      throw new Error("not an object");
    return parsed as Record<string, unknown>;
  } catch {
    throw new ApiError("the request body must be a JSON object", 400, "bad_request");
  }
}

function send(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(text),
  });
  response.end(text);
}

export function createApiServer(options: ApiServerOptions): Server {
  return createServer((request, response) => {
    void (async () => {
      try {
        const header = request.headers.authorization;
        const token = header?.startsWith("Bearer ") ? header.slice("Bearer ".length) : undefined;
        if (!tokenMatches(token, options.token)) {
          throw new ApiError("missing or wrong token", 401, "unauthorized");
        }
        const url = new URL(request.url ?? "/", "http://localhost");
        const route = routes.find(
          (r) => r.method === request.method && r.pattern.test(url.pathname),
        );
        if (!route)
          throw new ApiError(`no route ${request.method} ${url.pathname}`, 404, "not_found");
        const params = (route.pattern.exec(url.pathname) ?? []).slice(1).map(decodeURIComponent);
        const actorHeader = request.headers[ACTOR_HEADER];
        const actor =
          typeof actorHeader === "string" && actorHeader !== ""
            ? actorHeader
            : options.defaultActor;
        const body = request.method === "POST" ? await readBody(request) : {};
        const result = await route.handler({
          params,
          query: url.searchParams,
          body,
          client: options.clientFor(actor),
        });
        send(response, result.status, result.body);
      } catch (error: unknown) {
        const { status, code } = errorStatus(error);
        const message = error instanceof Error ? error.message : String(error);
        const details = (error as { errors?: unknown }).errors;
        send(response, status, {
          error: { code, message, ...(Array.isArray(details) ? { details } : {}) },
        });
      }
    })();
  });
}
