/**
 * A run's inputs checked against the flow's `on.manual.inputs`: types, required inputs,
 * defaults, unknown names. Values may arrive as strings (`baton run flow k=v`, a
 * `/baton run` comment), so numbers and booleans are coerced from their text.
 */
import type { InputDefinition } from "../../flows-schema/schema.js";
import type { FlowDefinition, Json } from "./types.js";

export function resolveInputs(
  flow: FlowDefinition,
  given: Record<string, Json>,
): { ok: true; inputs: Record<string, Json> } | { ok: false; errors: string[] } {
  const definitions: Record<string, InputDefinition> = flow.on?.manual?.inputs ?? {};
  const errors: string[] = [];
  const inputs: Record<string, Json> = {};
  const known = Object.keys(definitions);
  for (const name of Object.keys(given)) {
    if (!(name in definitions)) {
      errors.push(
        known.length === 0
          ? `unknown input "${name}": this flow takes no inputs`
          : `unknown input "${name}": this flow's inputs are ${known.join(", ")}`,
      );
    }
  }
  for (const [name, definition] of Object.entries(definitions)) {
    const value = given[name];
    if (value === undefined || value === null) {
      if (definition.default !== undefined) {
        const coerced = coerce(name, definition, definition.default);
        if (coerced.ok) inputs[name] = coerced.value;
        else errors.push(`the default of ${coerced.error}`);
      } else if (definition.required) {
        errors.push(
          `input "${name}" is required${definition.description ? ` (${definition.description})` : ""}`,
        );
      }
      continue;
    }
    const coerced = coerce(name, definition, value);
    if (coerced.ok) inputs[name] = coerced.value;
    else errors.push(coerced.error);
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, inputs };
}

type Coerced = { ok: true; value: Json } | { ok: false; error: string };

function coerce(name: string, definition: InputDefinition, value: Json): Coerced {
  const shown = JSON.stringify(value);
  switch (definition.type) {
    case "string":
      if (typeof value === "string") return { ok: true, value };
      if (typeof value === "number" || typeof value === "boolean")
        return { ok: true, value: String(value) };
      return { ok: false, error: `input "${name}" must be a string, not ${shown}` };
    case "number": {
      if (typeof value === "number" && Number.isFinite(value)) return { ok: true, value };
      if (typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
        return { ok: true, value: Number(value) };
      }
      return { ok: false, error: `input "${name}" must be a number, not ${shown}` };
    }
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      if (value === "true" || value === "false") return { ok: true, value: value === "true" };
      return { ok: false, error: `input "${name}" must be true or false, not ${shown}` };
    case "choice": {
      const options = definition.options ?? [];
      if (typeof value === "string" && options.includes(value)) return { ok: true, value };
      return {
        ok: false,
        error: `input "${name}" must be one of ${options.join(", ")}, not ${shown}`,
      };
    }
  }
}
