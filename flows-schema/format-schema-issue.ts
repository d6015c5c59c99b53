/**
 * zod's issues, rewritten for people editing YAML: the key path, what was expected, what
 * was found, and the keys that are allowed when one is unknown. Each message names the
 * place (`steps.build.timeout`) because the CLI may show it without the source line.
 */
import type { z } from "zod";
import type { DocumentPath } from "./diagnostic.js";
import { formatPath } from "./diagnostic.js";
import { flowDefinition } from "./schema.js";
import { didYouMean } from "./suggest.js";

type Issue = z.core.$ZodIssue;

export interface SchemaProblem {
  path: DocumentPath;
  /** Point at the key of the entry (unknown keys, invalid names) rather than its value. */
  at: "key" | "value";
  message: string;
}

function lowerFirst(text: string): string {
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** How a value looks, for "got …": `the number 3`, `a list`. */
export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `the string ${JSON.stringify(value)}`;
  if (typeof value === "number") return `the number ${value}`;
  return `\`${JSON.stringify(value) ?? typeof value}\``;
}

const TYPE_NAMES: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  object: "a map",
  record: "a map",
  array: "a list",
  null: "nothing",
};

function valueAt(root: unknown, path: DocumentPath): unknown {
  let current = root;
  for (const segment of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

/** Name of the place, for messages: "`steps.build.timeout`", or "the flow" at the root. */
function place(path: DocumentPath): string {
  return path.length === 0 ? "the flow" : `\`${formatPath(path)}\``;
}

type Schema = z.core.$ZodType;

/** The keys a strict object accepts at a data path (through unions, records, optionals). */
export function allowedKeys(path: DocumentPath, root: Schema = flowDefinition): string[] {
  const candidates = schemasAt(root, path);
  const keys = new Set<string>();
  for (const schema of candidates) {
    const def = schema._zod.def as { type: string; shape?: Record<string, Schema> };
    if (def.type === "object" && def.shape) Object.keys(def.shape).forEach((key) => keys.add(key));
  }
  return [...keys];
}

function unwrap(schema: Schema): Schema[] {
  const def = schema._zod.def as {
    type: string;
    innerType?: Schema;
    options?: Schema[];
  };
  if (
    (def.type === "optional" || def.type === "nullable" || def.type === "default") &&
    def.innerType
  ) {
    return unwrap(def.innerType);
  }
  if (def.type === "union" && def.options) return def.options.flatMap(unwrap);
  return [schema];
}

function schemasAt(root: Schema, path: DocumentPath): Schema[] {
  let current = unwrap(root);
  for (const segment of path) {
    const next: Schema[] = [];
    for (const schema of current) {
      const def = schema._zod.def as {
        type: string;
        shape?: Record<string, Schema>;
        valueType?: Schema;
        element?: Schema;
      };
      if (def.type === "object" && def.shape && typeof segment === "string") {
        const child = def.shape[segment];
        if (child) next.push(...unwrap(child));
      } else if (def.type === "record" && def.valueType) next.push(...unwrap(def.valueType));
      else if (def.type === "array" && def.element && typeof segment === "number") {
        next.push(...unwrap(def.element));
      }
    }
    current = next;
  }
  return current;
}

/** Rewrites one zod issue (found at `base` inside a union) into problems with messages. */
export function formatSchemaIssue(
  issue: Issue,
  data: unknown,
  base: DocumentPath = [],
): SchemaProblem[] {
  const path: DocumentPath = [...base, ...(issue.path as (string | number)[])];
  const value = valueAt(data, path);
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => {
        const allowed = allowedKeys(path);
        const hint = didYouMean(key, allowed);
        const list =
          hint === "" && allowed.length > 0 ? `; allowed here: ${allowed.join(", ")}` : hint;
        return {
          path: [...path, key],
          at: "key",
          message: `unknown key \`${key}\` in ${place(path)}${list}`,
        };
      });
    case "invalid_type": {
      if (value === undefined) {
        const key = path[path.length - 1];
        return [
          {
            path: path.slice(0, -1),
            at: "key",
            message: `${place(path.slice(0, -1))} is missing the required key \`${String(key)}\``,
          },
        ];
      }
      const expected = TYPE_NAMES[issue.expected] ?? issue.expected;
      return [
        {
          path,
          at: "value",
          message: `${place(path)} must be ${expected}, not ${describeValue(value)}`,
        },
      ];
    }
    case "invalid_union": {
      // Report the branch that got furthest: a map given where a map is allowed should
      // hear about its keys, not "expected number".
      const branches = issue.errors;
      const deep = branches.filter(
        (issues) =>
          !issues.every((inner) => inner.code === "invalid_type" && inner.path.length === 0),
      );
      if (deep.length > 0) {
        const best = deep.reduce((a, b) => (b.length < a.length ? b : a));
        return best.flatMap((inner) => formatSchemaIssue(inner, data, path));
      }
      const expected = [
        ...new Set(
          branches.flatMap((issues) =>
            issues.map((inner) =>
              inner.code === "invalid_type" ? (TYPE_NAMES[inner.expected] ?? inner.expected) : "",
            ),
          ),
        ),
      ].filter((name) => name !== "");
      const list =
        expected.length > 1
          ? `${expected.slice(0, -1).join(", ")} or ${expected[expected.length - 1]}`
          : expected[0];
      return [
        {
          path,
          at: "value",
          message: `${place(path)} must be ${list ?? "something else"}, not ${describeValue(value)}`,
        },
      ];
    }
    case "invalid_value": {
      const options = issue.values.map((option) => String(option));
      const hint = typeof value === "string" ? didYouMean(value, options) : "";
      return [
        {
          path,
          at: "value",
          message: `${place(path)} must be one of ${options.join(", ")}, not ${describeValue(value)}${hint}`,
        },
      ];
    }
    case "invalid_format": {
      // Our regexes carry a message that starts with what the value must be.
      const message = issue.message.startsWith("Invalid")
        ? `is not in the expected format (${issue.message})`
        : issue.message;
      const subject = typeof value === "string" ? ` (${JSON.stringify(value)})` : "";
      return [
        {
          path,
          at: "value",
          message: message.startsWith("must")
            ? `${place(path)}${subject} ${message}`
            : `${place(path)}${subject}: ${lowerFirst(message)}`,
        },
      ];
    }
    case "invalid_key": {
      const key = String(path[path.length - 1]);
      const inner = issue.issues[0];
      const reason =
        inner && !inner.message.startsWith("Invalid")
          ? lowerFirst(inner.message)
          : "is not a valid name";
      return [{ path, at: "key", message: `\`${key}\` in ${place(path.slice(0, -1))}: ${reason}` }];
    }
    case "too_small": {
      const minimum = Number(issue.minimum);
      const message =
        issue.origin === "array"
          ? minimum === 1
            ? "must not be an empty list; remove the key instead"
            : `must have at least ${minimum} items`
          : `must be at least ${minimum}`;
      return [{ path, at: "value", message: `${place(path)} ${message}` }];
    }
    case "too_big":
      return [
        { path, at: "value", message: `${place(path)} must be at most ${Number(issue.maximum)}` },
      ];
    case "invalid_element":
    case "not_multiple_of":
    case "custom":
      return [{ path, at: "value", message: `${place(path)}: ${issue.message}` }];
  }
}
