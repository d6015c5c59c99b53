/**
 * A validator for the subset of JSON Schema that GitHub's OpenAPI description uses in
 * request bodies: type (one or several, and OpenAPI's `nullable`), properties, required,
 * additionalProperties, enum, const, items, min/maxItems, uniqueItems, min/maxLength,
 * pattern, minimum/maximum, min/maxProperties, oneOf/anyOf/allOf/not, and local `$ref`s.
 *
 * Written here rather than taken from node_modules: the only validator there (ajv) is a
 * transitive dependency of the linter, not ours to import. `format` is not checked
 * (GitHub's own validation of formats is looser than the keyword suggests).
 */

export type Schema = Record<string, unknown>;

/** Resolves `#/components/...` references against the document the schema came from. */
export type RefResolver = (ref: string) => Schema;

/** The problems with `value`, each `<json pointer>: <what is wrong>`; empty when valid. */
export function validateJson(schema: Schema, value: unknown, resolve: RefResolver): string[] {
  const problems: string[] = [];
  check(schema, value, "", resolve, problems);
  return problems;
}

function typeOf(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  if (typeof value === "number") return Number.isInteger(value) ? "integer" : "number";
  return typeof value;
}

function matchesType(type: string, value: unknown): boolean {
  const actual = typeOf(value);
  return type === actual || (type === "number" && actual === "integer");
}

function check(
  schemaIn: Schema,
  value: unknown,
  at: string,
  resolve: RefResolver,
  problems: string[],
): void {
  const schema = typeof schemaIn.$ref === "string" ? resolve(schemaIn.$ref) : schemaIn;
  const where = at === "" ? "body" : at;

  // OpenAPI 3.0's `nullable` admits null, whatever else the schema says (with no `type`,
  // as on an `anyOf`, it must not make null the only type allowed).
  if (value === null && schema.nullable === true) return;
  const types = schema.type === undefined ? [] : [schema.type].flat().map(String);
  if (types.length > 0 && !types.some((t) => matchesType(t, value))) {
    problems.push(`${where}: is ${typeOf(value)}, not ${types.join(" or ")}`);
    return;
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((option) => deepEqual(option, value))) {
    // OpenAPI 3.0: `nullable` admits null even when the enum does not list it.
    if (!(value === null && schema.nullable === true))
      problems.push(
        `${where}: ${JSON.stringify(value)} is not one of ${JSON.stringify(schema.enum)}`,
      );
  }
  if ("const" in schema && !deepEqual(schema.const, value))
    problems.push(`${where}: must be ${JSON.stringify(schema.const)}`);

  if (typeof value === "string") {
    // Length in characters (code points), as GitHub counts them.
    const length = [...value].length;
    if (typeof schema.maxLength === "number" && length > schema.maxLength)
      problems.push(`${where}: is ${length} characters long, more than ${schema.maxLength}`);
    if (typeof schema.minLength === "number" && length < schema.minLength)
      problems.push(`${where}: is ${length} characters long, fewer than ${schema.minLength}`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value))
      problems.push(`${where}: does not match ${schema.pattern}`);
  }
  if (typeof value === "number") {
    if (typeof schema.minimum === "number" && value < schema.minimum)
      problems.push(`${where}: ${value} is less than ${schema.minimum}`);
    if (typeof schema.maximum === "number" && value > schema.maximum)
      problems.push(`${where}: ${value} is more than ${schema.maximum}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.maxItems === "number" && value.length > schema.maxItems)
      problems.push(`${where}: has ${value.length} items, more than ${schema.maxItems}`);
    if (typeof schema.minItems === "number" && value.length < schema.minItems)
      problems.push(`${where}: has ${value.length} items, fewer than ${schema.minItems}`);
    if (schema.uniqueItems === true) {
      const seen = new Set(value.map((item) => JSON.stringify(item)));
      if (seen.size !== value.length) problems.push(`${where}: has duplicate items`);
    }
    if (isSchema(schema.items))
      value.forEach((item, index) =>
        check(schema.items as Schema, item, `${at}/${index}`, resolve, problems),
      );
  }
  if (typeOf(value) === "object") {
    const object = value as Record<string, unknown>;
    const properties = isSchema(schema.properties)
      ? (schema.properties as Record<string, Schema>)
      : {};
    for (const name of Array.isArray(schema.required) ? (schema.required as string[]) : [])
      if (!(name in object)) problems.push(`${where}: ${name} is required`);
    const keys = Object.keys(object);
    if (typeof schema.maxProperties === "number" && keys.length > schema.maxProperties)
      problems.push(`${where}: has more than ${schema.maxProperties} properties`);
    if (typeof schema.minProperties === "number" && keys.length < schema.minProperties)
      problems.push(`${where}: has fewer than ${schema.minProperties} properties`);
    for (const key of keys) {
      const path = `${at}/${key}`;
      const property = properties[key];
      if (property) check(property, object[key], path, resolve, problems);
      else if (schema.additionalProperties === false)
        problems.push(`${where}: ${key} is not a documented property`);
      else if (isSchema(schema.additionalProperties))
        check(schema.additionalProperties as Schema, object[key], path, resolve, problems);
    }
  }

  if (Array.isArray(schema.allOf))
    for (const part of schema.allOf as Schema[]) check(part, value, at, resolve, problems);
  if (Array.isArray(schema.anyOf)) {
    const results = (schema.anyOf as Schema[]).map((part) => validateAt(part, value, at, resolve));
    if (!results.some((r) => r.length === 0))
      problems.push(`${where}: matches none of anyOf (${summarise(results)})`);
  }
  if (Array.isArray(schema.oneOf)) {
    const results = (schema.oneOf as Schema[]).map((part) => validateAt(part, value, at, resolve));
    const matching = results.filter((r) => r.length === 0).length;
    if (matching === 0) problems.push(`${where}: matches none of oneOf (${summarise(results)})`);
    else if (matching > 1) problems.push(`${where}: matches ${matching} of oneOf, not exactly one`);
  }
  if (isSchema(schema.not) && validateAt(schema.not as Schema, value, at, resolve).length === 0)
    problems.push(`${where}: matches a schema it must not`);
}

function validateAt(schema: Schema, value: unknown, at: string, resolve: RefResolver): string[] {
  const problems: string[] = [];
  check(schema, value, at, resolve, problems);
  return problems;
}

function summarise(results: string[][]): string {
  return results.map((r, i) => `#${i}: ${r.slice(0, 2).join("; ")}`).join(" | ");
}

function isSchema(value: unknown): boolean {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}
