/**
 * Evaluating `${{ }}` expressions with GitHub's own evaluator (`@actions/expressions`):
 * `if:` conditions, and templates in step specs and flow outputs. Parsing is shared with
 * the validator (flows-schema/expressions.ts), so both agree on what an expression is.
 */
import { Evaluator, data } from "@actions/expressions";
import type { FunctionDefinition } from "@actions/expressions/funcs/info";
import type { TemplatePart } from "../../flows-schema/expressions.js";
import {
  conditionSource,
  parseExpression,
  splitTemplate,
  usesStatusFunction,
} from "../../flows-schema/expressions.js";
import { scriptReference, scriptVariable } from "../../flows-schema/shell-quoting.js";
import type { Json } from "./types.js";

/** What expressions see. Contexts are plain JSON; status functions are precomputed booleans. */
export interface ExpressionScope {
  contexts: { [name: string]: Json };
  status?: { success: boolean; failure: boolean; cancelled: boolean };
}

export class ExpressionEvaluationFailed extends Error {
  constructor(
    readonly source: string,
    message: string,
    options?: { cause: unknown },
  ) {
    super(`cannot evaluate \`${source.trim()}\`: ${message}`, options);
    this.name = "ExpressionEvaluationFailed";
  }
}

function toData(value: Json): data.ExpressionData {
  return JSON.parse(JSON.stringify(value), data.reviver) as data.ExpressionData;
}

function statusFunctions(scope: ExpressionScope): Map<string, FunctionDefinition> {
  const status = scope.status ?? { success: true, failure: false, cancelled: false };
  const constant = (name: string, value: boolean): [string, FunctionDefinition] => [
    name,
    { name, minArgs: 0, maxArgs: 0, call: () => new data.BooleanData(value) },
  ];
  return new Map([
    constant("success", status.success),
    constant("failure", status.failure),
    constant("cancelled", status.cancelled),
    constant("always", true),
  ]);
}

function evaluateSource(
  source: string,
  scope: ExpressionScope,
  implySuccess: boolean,
): data.ExpressionData {
  let expr;
  try {
    expr = parseExpression(source);
  } catch (error: unknown) {
    throw new ExpressionEvaluationFailed(
      source,
      error instanceof Error ? error.message : String(error),
      {
        cause: error,
      },
    );
  }
  const context = new data.Dictionary(
    ...Object.entries(scope.contexts).map(([key, value]) => ({ key, value: toData(value) })),
  );
  const functions = statusFunctions(scope);
  try {
    const value = new Evaluator(expr, context, functions).evaluate();
    if (implySuccess && !usesStatusFunction(expr)) {
      return new data.BooleanData(scope.status?.success !== false && truthy(value));
    }
    return value;
  } catch (error: unknown) {
    throw new ExpressionEvaluationFailed(
      source,
      error instanceof Error ? error.message : String(error),
      {
        cause: error,
      },
    );
  }
}

function truthy(value: data.ExpressionData): boolean {
  switch (value.kind) {
    case data.Kind.Null:
      return false;
    case data.Kind.Boolean:
      return value.value;
    case data.Kind.Number: {
      const n = value.number();
      return n !== 0 && !Number.isNaN(n);
    }
    case data.Kind.String:
      return value.coerceString().length > 0;
    case data.Kind.Array:
    case data.Kind.Dictionary:
      return true;
  }
}

/** The value as a template puts it into a string: objects and arrays as JSON. */
function asString(value: data.ExpressionData): string {
  switch (value.kind) {
    case data.Kind.Null:
      return "";
    case data.Kind.Array:
    case data.Kind.Dictionary:
      return JSON.stringify(value, data.replacer);
    case data.Kind.Boolean:
    case data.Kind.Number:
    case data.Kind.String:
      return value.coerceString();
  }
}

/**
 * Evaluates an `if:`. Strings may be written with or without `${{ }}`; without a status
 * function `success() &&` is implied (as in GitHub Actions). Absent means `success()`.
 * Throws `ExpressionEvaluationFailed`.
 */
export function evaluateCondition(
  condition: string | boolean | undefined,
  scope: ExpressionScope,
): boolean {
  const success = scope.status?.success !== false;
  if (condition === undefined) return success;
  if (typeof condition === "boolean") return success && condition;
  return truthy(evaluateSource(conditionSource(condition).source, scope, true));
}

function templateParts(template: string): TemplatePart[] {
  try {
    return splitTemplate(template);
  } catch (error: unknown) {
    throw new ExpressionEvaluationFailed(
      template,
      error instanceof Error ? error.message : String(error),
      {
        cause: error,
      },
    );
  }
}

/** Expands every `${{ }}` of a template into a string. Throws `ExpressionEvaluationFailed`. */
export function expandTemplate(template: string, scope: ExpressionScope): string {
  if (!template.includes("${{")) return template;
  return templateParts(template)
    .map((part) =>
      part.kind === "text" ? part.value : asString(evaluateSource(part.source, scope, false)),
    )
    .join("");
}

/** A shell script whose values travel beside it, in the environment. */
export interface ExpandedScript {
  /** The script's text: the flow's text, with `${BATON_EXPR_<n>}` for the n-th `${{ }}`. */
  script: string;
  /** `BATON_EXPR_<n>`: the n-th expression's value, as a template would put it in a string. */
  env: Record<string, string>;
}

/**
 * A `run` or `compensate` script, by construction free of values (DESIGN rule 11): each
 * `${{ }}` becomes a reference to a variable, and its value goes into the environment under
 * that name. The text depends only on the template, never on what the expressions are
 * worth; the script's own quoting decides word splitting, as for any `$VAR`. Throws
 * `ExpressionEvaluationFailed`.
 */
export function expandScript(template: string, scope: ExpressionScope): ExpandedScript {
  if (!template.includes("${{")) return { script: template, env: {} };
  const env: Record<string, string> = {};
  let script = "";
  let n = 0;
  for (const part of templateParts(template)) {
    if (part.kind === "text") {
      script += part.value;
      continue;
    }
    n += 1;
    const value = asString(evaluateSource(part.source, scope, false));
    if (value.includes("\0")) {
      throw new ExpressionEvaluationFailed(
        part.source,
        "its value contains a NUL character, which an environment variable cannot hold; remove it (or encode the value, e.g. base64)",
      );
    }
    env[scriptVariable(n)] = value;
    script += scriptReference(n);
  }
  return { script, env };
}

/** Expands every string inside a JSON value (keys are left as written). */
export function expandDeep(value: Json, scope: ExpressionScope): Json {
  if (typeof value === "string") return expandTemplate(value, scope);
  if (Array.isArray(value)) return value.map((item) => expandDeep(item, scope));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, expandDeep(item, scope)]),
    );
  }
  return value;
}
