/**
 * `parseFlow`: from the text of a flow file to a checked `FlowDefinition`, or to
 * diagnostics that each point at the offending text. Pure: no I/O, no clock.
 *
 * The stages, each stopping the pipeline when it finds errors:
 * 1. limits on the raw text (size, binary content, nesting), before the YAML parser sees it;
 * 2. YAML syntax (with positions), one document, a map at the top, no duplicate keys;
 * 3. building plain data, with alias expansion capped;
 * 4. the zod schema (types, unknown keys, required keys);
 * 5. semantic checks (graph, expressions, ranges), which may also warn.
 */
import type { Document, Node, Pair, YAMLError } from "yaml";
import {
  isAlias,
  isCollection,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseDocument,
  visit,
} from "yaml";
import { checkSemantics } from "./check-semantics.js";
import type { SemanticFinding } from "./check-semantics.js";
import type { Diagnostic, DocumentPath, Severity } from "./diagnostic.js";
import { compareDiagnostics } from "./diagnostic.js";
import { formatSchemaIssue } from "./format-schema-issue.js";
import {
  findExcessiveNesting,
  MAX_ALIAS_COUNT,
  MAX_DIAGNOSTICS,
  MAX_NESTING,
  MAX_SOURCE_BYTES,
} from "./limits.js";
import { locate, nodeRange, scalarKeyText, scalarOffsets } from "./locate-in-yaml.js";
import type { FlowDefinition } from "./schema.js";
import { flowDefinition } from "./schema.js";

export interface ParseResult {
  /** Present if and only if there is no error; warnings may accompany it. */
  flow?: FlowDefinition;
  /** Errors and warnings, ordered by position. */
  diagnostics: Diagnostic[];
}

/** The flow's name as DESIGN.md defines it: the file name without `.yml`/`.yaml`. */
export function flowNameFromFile(file: string): string {
  const base = file.split(/[\\/]/).pop() ?? file;
  return base.replace(/\.ya?ml$/i, "");
}

/** Positions in one source text. */
class SourceText {
  readonly lines = new LineCounter();
  constructor(
    readonly text: string,
    readonly file: string,
  ) {}

  diagnostic(
    start: number,
    end: number,
    severity: Severity,
    message: string,
    path: DocumentPath,
  ): Diagnostic {
    const clampedStart = Math.max(0, Math.min(start, this.text.length));
    const clampedEnd = Math.max(clampedStart, Math.min(end, this.text.length));
    const from = this.position(clampedStart);
    // An empty range still underlines one character, so editors and carets show it.
    const to =
      clampedEnd > clampedStart
        ? this.position(clampedEnd)
        : { line: from.line, col: from.col + 1 };
    return {
      file: this.file,
      line: from.line,
      column: from.col,
      endLine: to.line,
      endColumn: to.col,
      severity,
      message,
      path,
    };
  }

  private position(offset: number): { line: number; col: number } {
    // LineCounter only knows the lines the parser saw; before parsing, count ourselves.
    if (this.lines.lineStarts.length === 0) {
      let line = 1;
      let lineStart = 0;
      for (
        let index = this.text.indexOf("\n");
        index !== -1 && index < offset;
        index = this.text.indexOf("\n", index + 1)
      ) {
        line += 1;
        lineStart = index + 1;
      }
      return { line, col: offset - lineStart + 1 };
    }
    return this.lines.linePos(offset);
  }
}

export function parseFlow(source: string, file: string): ParseResult {
  const text = new SourceText(source, file);
  const built: { flow?: FlowDefinition } = {};
  const diagnostics = stages(text, built).sort(compareDiagnostics);
  const hasError = diagnostics.some((diagnostic) => diagnostic.severity === "error");
  let shown = diagnostics;
  if (diagnostics.length > MAX_DIAGNOSTICS) {
    shown = diagnostics.slice(0, MAX_DIAGNOSTICS);
    const last = shown[shown.length - 1] ?? text.diagnostic(0, 0, "error", "", []);
    shown.push({
      ...last,
      severity: hasError ? "error" : "warning",
      message: `too many problems: ${diagnostics.length - MAX_DIAGNOSTICS} more not shown; fix these first`,
      path: [],
    });
  }
  return !hasError && built.flow
    ? { flow: built.flow, diagnostics: shown }
    : { diagnostics: shown };
}

/** Runs the stages in order; sets `built.flow` when the schema accepted the data. */
function stages(text: SourceText, built: { flow?: FlowDefinition }): Diagnostic[] {
  const source = text.text;

  // 1. Limits on the raw text.
  const bytes = Buffer.byteLength(source, "utf8");
  if (bytes > MAX_SOURCE_BYTES) {
    return [
      text.diagnostic(
        0,
        0,
        "error",
        `the file is ${bytes} bytes; a flow file may be at most ${MAX_SOURCE_BYTES} bytes (1 MiB)`,
        [],
      ),
    ];
  }
  const nul = source.indexOf("\u0000");
  if (nul !== -1) {
    return [
      text.diagnostic(
        nul,
        nul + 1,
        "error",
        "the file is not text: it contains a NUL byte; flow files are UTF-8 YAML",
        [],
      ),
    ];
  }
  const deep = findExcessiveNesting(source, MAX_NESTING);
  if (deep !== undefined) {
    return [
      text.diagnostic(
        deep,
        deep + 1,
        "error",
        `the YAML nests deeper than ${MAX_NESTING} levels here; flow files are never this deep`,
        [],
      ),
    ];
  }

  // 2. YAML syntax. Duplicate keys are found below, with both positions.
  const document = parseDocument(source, {
    lineCounter: text.lines,
    prettyErrors: false,
    uniqueKeys: false,
    strict: true,
  });
  const syntax = [...document.errors, ...document.warnings].map((error) =>
    yamlDiagnostic(text, error),
  );
  if (syntax.some((diagnostic) => diagnostic.severity === "error")) return syntax;

  const contents = document.contents;
  if (contents === null || (isScalar(contents) && contents.value === null)) {
    return [
      ...syntax,
      text.diagnostic(0, 0, "error", "the file is empty: a flow needs at least `steps`", []),
    ];
  }
  if (!isMap(contents)) {
    const [start, end] = firstLineOf(source, nodeRange(contents) ?? [0, 0]);
    const kind = isSeq(contents) ? "a list" : "a single value";
    return [
      ...syntax,
      text.diagnostic(
        start,
        end,
        "error",
        `a flow file must be a map of keys such as \`on\` and \`steps\`, not ${kind}`,
        [],
      ),
    ];
  }
  const structure = checkKeys(text, document);
  if (structure.length > 0) return [...syntax, ...structure];

  // 3. Plain data. Alias expansion is capped: "billion laughs" stops here.
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error: unknown) {
    const message = error instanceof Error ? error.message : String(error);
    const alias = firstAlias(document);
    const [start, end] = nodeRange(alias) ?? [0, 0];
    const reason = /alias/i.test(message)
      ? `aliases expand to too much data (more than ${MAX_ALIAS_COUNT} expansions); write the values out instead`
      : `the YAML cannot be turned into data: ${message}`;
    return [...syntax, text.diagnostic(start, end, "error", reason, [])];
  }

  // 4. The schema.
  const parsed = flowDefinition.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue) => formatSchemaIssue(issue, data));
    return [
      ...syntax,
      ...problems.map((problem) =>
        atPath(text, document, problem.path, problem.at, "error", problem.message),
      ),
    ];
  }

  // 5. Semantics.
  const findings = checkSemantics(parsed.data, { flowName: flowNameFromFile(text.file) });
  built.flow = parsed.data;
  return [...syntax, ...findings.map((finding) => fromFinding(text, document, finding))];
}

/** A range cut at the end of its first line: for whole documents, one line says enough. */
function firstLineOf(source: string, [start, end]: [number, number]): [number, number] {
  const lineEnd = source.indexOf("\n", start);
  return [start, lineEnd !== -1 && lineEnd < end ? Math.max(lineEnd, start + 1) : end];
}

function yamlDiagnostic(text: SourceText, error: YAMLError): Diagnostic {
  const [start, end] = firstLineOf(text.text, error.pos);
  const severity: Severity = error.name === "YAMLWarning" ? "warning" : "error";
  let message = error.message.replace(/\s+at line \d+, column \d+.*$/s, "");
  if (error.code === "MULTIPLE_DOCS")
    message =
      "a flow file holds one YAML document: remove the `---` and what follows, or move it to its own file";
  else message = `invalid YAML: ${message.charAt(0).toLowerCase()}${message.slice(1)}`;
  return text.diagnostic(start, end, severity, message, []);
}

/** Duplicate keys (error at the second, naming the first) and keys that are not plain scalars. */
function checkKeys(text: SourceText, document: Document.Parsed): Diagnostic[] {
  const diagnostics: Diagnostic[] = [];
  visit(document, {
    Map(_key, map, ancestors) {
      const seen = new Map<string, Pair>();
      for (const pair of map.items) {
        const key = pair.key;
        const [start, end] = nodeRange(key as Node | null) ?? nodeRange(map) ?? [0, 0];
        if (!isScalar(key) || isCollection(pair.key)) {
          diagnostics.push(
            text.diagnostic(start, end, "error", "keys must be plain names, not lists or maps", []),
          );
          continue;
        }
        const name = scalarKeyText(key.value);
        const first = seen.get(name);
        if (first) {
          const firstLine = text.lines.linePos(nodeRange(first.key as Node)?.[0] ?? 0).line;
          const path = [...pathOf(ancestors), name];
          diagnostics.push(
            text.diagnostic(
              start,
              end,
              "error",
              `duplicate key \`${name}\`: it is already set at line ${firstLine}; keep one of them`,
              path,
            ),
          );
        } else seen.set(name, pair);
      }
    },
  });
  return diagnostics;
}

/** The data path of a node from `visit`'s ancestors. */
function pathOf(ancestors: readonly unknown[]): DocumentPath {
  const path: DocumentPath = [];
  for (let index = 0; index < ancestors.length; index += 1) {
    const ancestor = ancestors[index];
    if (isPair(ancestor) && isScalar(ancestor.key)) path.push(scalarKeyText(ancestor.key.value));
    else if (isSeq(ancestor)) {
      const child = ancestors[index + 1];
      path.push(ancestor.items.indexOf(child));
    }
  }
  return path;
}

function firstAlias(document: Document.Parsed): Node | undefined {
  let found: Node | undefined;
  visit(document, {
    Alias(_key, node) {
      found = node;
      return visit.BREAK;
    },
  });
  return found;
}

/** A diagnostic at a data path: the key of its entry, or its value; the nearest existing ancestor if it is missing. */
function atPath(
  text: SourceText,
  document: Document.Parsed,
  path: DocumentPath,
  at: "key" | "value",
  severity: Severity,
  message: string,
): Diagnostic {
  for (let length = path.length; length >= 0; length -= 1) {
    const prefix = path.slice(0, length);
    const found = locate(document, prefix);
    if (found.depth !== prefix.length) continue;
    const key = found.pair?.key as Node | undefined;
    const value = found.node;
    // Point at the key for key problems, for missing parts, and for whole maps or lists
    // (a multi-line underline helps nobody).
    const preferKey =
      at === "key" ||
      length < path.length ||
      !value ||
      isCollection(value) ||
      isAlias(value) ||
      (isScalar(value) && value.value === null);
    const target = preferKey && key ? key : value;
    const range = length === 0 ? firstKeyRange(document) : nodeRange(target);
    if (range) return text.diagnostic(range[0], range[1], severity, message, path);
  }
  return text.diagnostic(0, 0, severity, message, path);
}

function firstKeyRange(document: Document.Parsed): [number, number] | undefined {
  const contents = document.contents;
  if (isMap(contents)) return nodeRange(contents.items[0]?.key);
  return undefined;
}

function fromFinding(
  text: SourceText,
  document: Document.Parsed,
  finding: SemanticFinding,
): Diagnostic {
  if (finding.offset !== undefined) {
    const { node } = locate(document, finding.path);
    if (isScalar(node)) {
      const offsets = scalarOffsets(text.text, node);
      const start = offsets?.[finding.offset];
      if (offsets && start !== undefined) {
        const lastIndex =
          Math.min(finding.offset + Math.max(1, finding.length ?? 1), offsets.length) - 1;
        const end = (offsets[lastIndex] ?? start) + 1;
        // A range crossing lines is cut at the first line's end: carets stay on one line.
        const lineEnd = text.text.indexOf("\n", start);
        return text.diagnostic(
          start,
          lineEnd !== -1 && end > lineEnd ? Math.max(lineEnd, start + 1) : end,
          finding.severity,
          finding.message,
          finding.path,
        );
      }
    }
  }
  return atPath(
    text,
    document,
    finding.path,
    finding.at ?? "value",
    finding.severity,
    finding.message,
  );
}
