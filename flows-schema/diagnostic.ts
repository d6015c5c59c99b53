/**
 * What the validator reports: one problem, at one place in one file. The CLI prints these
 * compiler-style, the API returns them as JSON, and the GitHub app turns them into
 * check-run annotations, so the shape is part of Baton's contract.
 */

/** A path into the flow document, e.g. ["steps", "build", "needs", 0]. */
export type DocumentPath = (string | number)[];

export type Severity = "error" | "warning";

export interface Diagnostic {
  /** The file as the caller named it (the CLI passes paths relative to its cwd). */
  file: string;
  /** 1-based line of the first character of the offending text. */
  line: number;
  /** 1-based column, counted in UTF-16 code units like editors and GitHub annotations. */
  column: number;
  /** 1-based line of the character after the offending text. */
  endLine: number;
  /** 1-based column of the character after the offending text (exclusive). */
  endColumn: number;
  severity: Severity;
  /** What is wrong and, where we can tell, how to fix it. */
  message: string;
  /** Where in the document; empty for problems with the file as a whole. */
  path: DocumentPath;
}

/** Renders a document path the way the messages name keys: `steps.build.needs[0]`. */
export function formatPath(path: DocumentPath): string {
  let text = "";
  for (const segment of path) {
    if (typeof segment === "number") text += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(segment)) text += text === "" ? segment : `.${segment}`;
    else text += `[${JSON.stringify(segment)}]`;
  }
  return text;
}

/** Orders diagnostics by position, then errors before warnings, for stable output. */
export function compareDiagnostics(a: Diagnostic, b: Diagnostic): number {
  return (
    a.line - b.line ||
    a.column - b.column ||
    (a.severity === b.severity ? 0 : a.severity === "error" ? -1 : 1) ||
    a.message.localeCompare(b.message)
  );
}
