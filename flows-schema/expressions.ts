/**
 * `${{ … }}` expressions: finding them in strings, parsing them with GitHub's own
 * implementation (`@actions/expressions`), and reading which contexts they reference.
 * Evaluation lives in the engine; this file only parses, so the validator and the engine
 * agree on what an expression is.
 */
import {
  Binary,
  ContextAccess,
  FunctionCall,
  Grouping,
  IndexAccess,
  Literal,
  Logical,
  Unary,
} from "@actions/expressions/ast";
import type { Expr } from "@actions/expressions";
import { ExpressionError, Lexer, Parser } from "@actions/expressions";

/** The contexts a flow's expressions may use. */
export const CONTEXTS = ["inputs", "steps", "trigger", "run", "env"] as const;
export type ContextName = (typeof CONTEXTS)[number];

/** Status functions, beyond GitHub's built-ins (contains, format, toJSON, …). */
export const STATUS_FUNCTIONS = ["success", "failure", "always", "cancelled"] as const;
const statusFunctionInfo = STATUS_FUNCTIONS.map((name) => ({ name, minArgs: 0, maxArgs: 0 }));

export type TemplatePart =
  | { kind: "text"; value: string }
  /** `offset` is where `source` starts in the template string (after `${{`). */
  | { kind: "expression"; source: string; offset: number };

export class TemplateError extends Error {
  constructor(
    message: string,
    /** Character offset in the template string. */
    readonly offset: number,
  ) {
    super(message);
    this.name = "TemplateError";
  }
}

/**
 * Splits `"v${{ inputs.version }}-x"` into text and expression parts. A `}}` inside a quoted
 * string of the expression does not close it.
 */
export function splitTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let position = 0;
  while (position < template.length) {
    const open = template.indexOf("${{", position);
    if (open === -1) {
      parts.push({ kind: "text", value: template.slice(position) });
      break;
    }
    if (open > position) parts.push({ kind: "text", value: template.slice(position, open) });
    const start = open + 3;
    let index = start;
    let inString = false;
    let close = -1;
    while (index < template.length) {
      const char = template[index];
      if (char === "'") {
        // '' is an escaped quote inside a string literal.
        if (inString && template[index + 1] === "'") index += 1;
        else inString = !inString;
      } else if (!inString && char === "}" && template[index + 1] === "}") {
        close = index;
        break;
      }
      index += 1;
    }
    if (close === -1) throw new TemplateError("unterminated expression: `${{` without `}}`", open);
    parts.push({ kind: "expression", source: template.slice(start, close), offset: start });
    position = close + 2;
  }
  return parts;
}

/** Whether a string contains `${{`. */
export function hasExpression(value: string): boolean {
  return value.includes("${{");
}

export class ExpressionSyntaxError extends Error {
  constructor(
    message: string,
    /** 0-based column inside the expression source. */
    readonly column: number,
  ) {
    super(message);
    this.name = "ExpressionSyntaxError";
  }
}

/** Parses one expression (without `${{ }}`). Throws `ExpressionSyntaxError`. */
export function parseExpression(source: string): Expr {
  if (source.trim() === "") throw new ExpressionSyntaxError("empty expression", 0);
  try {
    const { tokens } = new Lexer(source).lex();
    return new Parser(tokens, [...CONTEXTS], statusFunctionInfo).parse();
  } catch (error: unknown) {
    if (error instanceof ExpressionError) {
      throw new ExpressionSyntaxError(error.message, error.pos.column);
    }
    throw new ExpressionSyntaxError(error instanceof Error ? error.message : String(error), 0);
  }
}

/**
 * The text of an `if:`: GitHub Actions allows it with or without `${{ }}`. Returns the
 * expression source and its offset in the given string.
 */
export function conditionSource(condition: string): { source: string; offset: number } {
  const trimmed = condition.trim();
  const lead = condition.indexOf(trimmed);
  if (trimmed.startsWith("${{") && trimmed.endsWith("}}")) {
    const parts = splitTemplate(trimmed);
    const only = parts.length === 1 ? parts[0] : undefined;
    if (only?.kind === "expression") return { source: only.source, offset: lead + only.offset };
  }
  return { source: condition, offset: 0 };
}

/** A static path through a context, e.g. `steps.build.outputs.version` → ["steps", "build", "outputs", "version"]. */
export interface ContextReference {
  path: string[];
  /** 0-based column of the context name in the expression source. */
  column: number;
}

/**
 * Every context access with its longest static path (`steps['build'].outputs.x` included).
 * A dynamic index (`steps[inputs.name]`) ends the path at the segment before it.
 */
export function contextReferences(expr: Expr): ContextReference[] {
  const references: ContextReference[] = [];
  const walk = (node: Expr): void => {
    const path = staticPath(node);
    if (path) {
      references.push(path);
      // Dynamic indexes below the static part may hold more references.
      if (node instanceof IndexAccess) walkIndexes(node);
      return;
    }
    if (node instanceof IndexAccess) {
      walk(node.expr);
      walk(node.index);
    } else if (node instanceof FunctionCall) node.args.forEach(walk);
    else if (node instanceof Logical) node.args.forEach(walk);
    else if (node instanceof Binary) {
      walk(node.left);
      walk(node.right);
    } else if (node instanceof Unary) walk(node.expr);
    else if (node instanceof Grouping) walk(node.group);
  };
  const walkIndexes = (node: Expr): void => {
    if (node instanceof IndexAccess) {
      walkIndexes(node.expr);
      if (!(node.index instanceof Literal)) walk(node.index);
    }
  };
  walk(expr);
  return references;
}

function staticPath(node: Expr): ContextReference | undefined {
  const found = openPath(node);
  return found && { path: found.path, column: found.column };
}

/** `closed` once a dynamic index was met: later segments are not part of the static path. */
function openPath(node: Expr): (ContextReference & { closed: boolean }) | undefined {
  if (node instanceof ContextAccess) {
    return { path: [node.name.lexeme], column: node.name.range.start.column, closed: false };
  }
  if (node instanceof IndexAccess) {
    const base = openPath(node.expr);
    if (!base || base.closed) return base;
    // `.*` filters produce a Star node and `[expr]` any node: both end the static path.
    if (node.index instanceof Literal) {
      return { ...base, path: [...base.path, node.index.literal.coerceString()] };
    }
    return { ...base, closed: true };
  }
  return undefined;
}

/** The names of the functions an expression calls (lower case, as GitHub compares them). */
export function calledFunctions(expr: Expr): string[] {
  const names: string[] = [];
  const walk = (node: Expr): void => {
    if (node instanceof FunctionCall) {
      names.push(node.functionName.lexeme.toLowerCase());
      node.args.forEach(walk);
    } else if (node instanceof IndexAccess) {
      walk(node.expr);
      walk(node.index);
    } else if (node instanceof Logical) node.args.forEach(walk);
    else if (node instanceof Binary) {
      walk(node.left);
      walk(node.right);
    } else if (node instanceof Unary) walk(node.expr);
    else if (node instanceof Grouping) walk(node.group);
  };
  walk(expr);
  return names;
}

/** Whether an `if:` names a status function; without one, `success() &&` is implied. */
export function usesStatusFunction(expr: Expr): boolean {
  return calledFunctions(expr).some((name) =>
    (STATUS_FUNCTIONS as readonly string[]).includes(name),
  );
}
