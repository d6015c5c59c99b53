/**
 * GitHub's published REST description (@octokit/openapi, api.github.com), as the fake's
 * contract: every request must be a documented operation (method and templated path),
 * with documented query parameters, and a JSON body valid against the operation's schema.
 *
 * The description is 13 MB: it is read once per process, on the first request.
 */
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { RefResolver, Schema } from "./json-schema.js";
import { validateJson } from "./json-schema.js";

interface Parameter {
  name: string;
  in: "path" | "query" | "header" | "cookie";
  required?: boolean;
  schema?: Schema;
  "x-multi-segment"?: boolean;
}

interface Operation {
  operationId: string;
  parameters?: (Parameter | { $ref: string })[];
  requestBody?: { required?: boolean; content: Record<string, { schema?: Schema }> };
}

interface OpenApiDocument {
  /** Path items hold operations by method, and also `parameters` and `summary`. */
  paths: Record<string, Record<string, unknown>>;
  components: Record<string, Record<string, unknown>>;
}

interface Route {
  method: string;
  template: string;
  pattern: RegExp;
  paramNames: string[];
  /** Literal characters in the template: the more, the more specific (GitHub's router agrees). */
  literalLength: number;
  operation: Operation;
}

export interface MatchedOperation {
  operationId: string;
  /** e.g. `/repos/{owner}/{repo}/check-runs/{check_run_id}` */
  template: string;
  params: Record<string, string>;
}

const METHODS = ["get", "put", "post", "patch", "delete", "head", "options"];

let loaded: { doc: OpenApiDocument; routes: Route[] } | undefined;

function load(): { doc: OpenApiDocument; routes: Route[] } {
  if (loaded) return loaded;
  const require = createRequire(import.meta.url);
  const path = require.resolve("@octokit/openapi/generated/api.github.com.json");
  const doc = JSON.parse(readFileSync(path, "utf8")) as OpenApiDocument;
  const routes: Route[] = [];
  for (const [template, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const operation = item[method] as Operation | undefined;
      if (!operation) continue;
      const parameters = resolveParameters(doc, operation);
      const paramNames: string[] = [];
      const source = template
        .replace(/[.*+?^$()|[\]\\]/g, "\\$&")
        .replace(/\\?\{([^}]+)\\?\}/g, (_m, name: string) => {
          paramNames.push(name);
          // `x-multi-segment` parameters (a file path, a tree ref) may contain slashes.
          const multi = parameters.find((p) => p.name === name && p.in === "path")?.[
            "x-multi-segment"
          ];
          return multi ? "(.+)" : "([^/]+)";
        });
      routes.push({
        method: method.toUpperCase(),
        template,
        pattern: new RegExp(`^${source}$`),
        paramNames,
        literalLength: template.replace(/\{[^}]+\}/g, "").length,
        operation,
      });
    }
  }
  routes.sort((a, b) => b.literalLength - a.literalLength);
  loaded = { doc, routes };
  return loaded;
}

function resolveRef(doc: OpenApiDocument, ref: string): unknown {
  if (!ref.startsWith("#/")) throw new Error(`Only local $refs are supported, not ${ref}`);
  let node: unknown = doc;
  for (const part of ref.slice(2).split("/"))
    node = (node as Record<string, unknown>)[part.replaceAll("~1", "/").replaceAll("~0", "~")];
  if (node === undefined) throw new Error(`Unresolvable $ref ${ref}`);
  return node;
}

function resolveParameters(doc: OpenApiDocument, operation: Operation): Parameter[] {
  return (operation.parameters ?? []).map((p) =>
    "$ref" in p ? (resolveRef(doc, p.$ref) as Parameter) : p,
  );
}

/** The documented operation for `method` and `pathname`, or undefined. */
export function findOperation(method: string, pathname: string): MatchedOperation | undefined {
  const { routes } = load();
  for (const route of routes) {
    if (route.method !== method) continue;
    const match = route.pattern.exec(pathname);
    if (!match) continue;
    const params: Record<string, string> = {};
    route.paramNames.forEach((name, i) => {
      params[name] = decodeURIComponent(match[i + 1] ?? "");
    });
    return { operationId: route.operation.operationId, template: route.template, params };
  }
  return undefined;
}

/**
 * What is wrong with a request to a documented operation: undocumented or missing required
 * query parameters, a body where none is documented, or a body that violates the schema.
 */
export function checkRequest(
  matched: MatchedOperation,
  method: string,
  query: URLSearchParams,
  body: unknown,
): string[] {
  const { doc, routes } = load();
  const route = routes.find((r) => r.template === matched.template && r.method === method);
  if (!route) return [`${method} ${matched.template} is not documented`];
  const problems: string[] = [];
  const parameters = resolveParameters(doc, route.operation);
  const queryParams = parameters.filter((p) => p.in === "query");
  for (const name of new Set(query.keys()))
    if (!queryParams.some((p) => p.name === name))
      problems.push(
        `query: ${name} is not a documented parameter of ${route.operation.operationId}`,
      );
  for (const p of queryParams) {
    if (p.required && !query.has(p.name)) problems.push(`query: ${p.name} is required`);
    const value = query.get(p.name);
    if (value !== null && p.schema) problems.push(...checkQueryValue(p.name, value, p.schema));
  }

  const resolver: RefResolver = (ref) => resolveRef(doc, ref) as Schema;
  const requestBody = route.operation.requestBody;
  if (body === undefined) {
    if (requestBody?.required) problems.push("body: is required");
  } else if (!requestBody) {
    problems.push(`body: ${route.operation.operationId} takes no body`);
  } else {
    const schema = requestBody.content["application/json"]?.schema;
    if (!schema) problems.push("body: the operation documents no JSON body");
    else problems.push(...validateJson(schema, body, resolver));
  }
  return problems;
}

/**
 * What is wrong with a webhook payload, against the schema GitHub's description publishes
 * for it (`x-webhooks`, keyed `<event>-<action>` with hyphens): the drivers' payloads are
 * checked with this, so a patched example stays shaped like what GitHub sends.
 */
export function checkWebhookPayload(
  event: string,
  action: string | undefined,
  payload: unknown,
): string[] {
  const { doc } = load();
  const hooks = (doc as unknown as { "x-webhooks"?: Record<string, Record<string, unknown>> })[
    "x-webhooks"
  ];
  const key = [event, action]
    .filter((part) => part !== undefined)
    .join("-")
    .replaceAll("_", "-");
  const post = hooks?.[key]?.post as Operation | undefined;
  const schema = post?.requestBody?.content["application/json"]?.schema;
  if (!schema) return [`GitHub's description has no webhook ${key}`];
  const resolver: RefResolver = (ref) => resolveRef(doc, ref) as Schema;
  return validateJson(schema, payload, resolver);
}

/** A query value against its parameter's schema: the enum, and integer or boolean syntax. */
function checkQueryValue(name: string, value: string, schema: Schema): string[] {
  const enumValues = schema.enum;
  if (Array.isArray(enumValues) && !enumValues.map(String).includes(value))
    return [`query: ${name}=${value} is not one of ${JSON.stringify(enumValues)}`];
  if (schema.type === "integer" && !/^-?\d+$/.test(value))
    return [`query: ${name}=${value} is not an integer`];
  if (schema.type === "boolean" && value !== "true" && value !== "false")
    return [`query: ${name}=${value} is not a boolean`];
  return [];
}
