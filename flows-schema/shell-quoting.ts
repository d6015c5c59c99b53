/**
 * Where a value lands in a shell script: outside quotes, in double quotes, in single
 * quotes, in a here-document. Baton never pastes a value into a script (DESIGN rule 11):
 * each `${{ }}` of a `run` or `compensate` script becomes a reference to an environment
 * variable (`${BATON_EXPR_1}`, …) and the value travels in the environment. A reference
 * expands everywhere a `$VAR` would, which is everywhere except inside single quotes
 * (`'…'`, `$'…'`) and in a here-document whose delimiter is quoted (`<<'EOF'`): there the
 * validator warns. The agent runner uses the same reading to place `{prompt}` in its
 * command template.
 *
 * This is a reading of POSIX shell and bash quoting good enough for those two uses, not a
 * parser: it follows quotes, backslashes, comments, `$( )`, `${ }`, backticks and
 * here-documents. A script it misreads still gets only a variable reference, never the
 * value as text, so a misreading can cost a wrong warning, never an injection.
 */

/** The environment variable that carries the value of the n-th (from 1) `${{ }}` of a script. */
export function scriptVariable(n: number): string {
  return `BATON_EXPR_${n}`;
}

/** What `${{ }}` number n of a script becomes in the script's text. */
export function scriptReference(n: number): string {
  return `\${${scriptVariable(n)}}`;
}

/** Names that Baton sets for scripts; a flow's own `env` or `with` should not use them. */
export const SCRIPT_VARIABLE_PATTERN = /^BATON_EXPR_[0-9]+$/;

export type HoleContext =
  /** Outside any quotes: the shell splits the value into words (as with any `$VAR`). */
  | { kind: "bare" }
  /** Inside `"…"` (or `${ }`, `$( )` within them): one word, expanded. */
  | { kind: "double" }
  /** In the body of a here-document with an unquoted delimiter: expanded. */
  | { kind: "heredoc"; delimiter: string }
  /** Inside `'…'`: not expanded. */
  | { kind: "single" }
  /** Inside `$'…'`: not expanded. */
  | { kind: "ansi-c" }
  /** In the body of a here-document with a quoted delimiter (`<<'EOF'`): not expanded. */
  | { kind: "quoted-heredoc"; delimiter: string }
  /** In a comment: not run at all. */
  | { kind: "comment" };

/** Whether a `$VAR` at this place is replaced by the variable's value. */
export function expands(context: HoleContext): boolean {
  return (
    context.kind === "bare" ||
    context.kind === "double" ||
    context.kind === "heredoc" ||
    context.kind === "comment"
  );
}

type Frame =
  /** Shell code: the script itself, or inside `$( )`, `${ }`, backticks. */
  | { kind: "code"; closer: "" | ")" | "}" | "`"; depth: number; wordStart: boolean }
  | { kind: "double" }
  | { kind: "single" }
  | { kind: "ansi-c" }
  | { kind: "comment" }
  | { kind: "heredoc"; body: Heredoc; line: string; hole: boolean };

interface Heredoc {
  delimiter: string;
  quoted: boolean;
  /** `<<-`: leading tabs of body lines (and of the delimiter line) are removed. */
  strip: boolean;
}

const WORD_END = /[\s;&|()<>]/;

/**
 * The context of each hole (a `null` piece) of a script given as text pieces and holes,
 * in order. Holes are opaque: they stand for a `${VAR}` and do not change the quoting.
 */
export function holeContexts(pieces: readonly (string | null)[]): HoleContext[] {
  const stack: Frame[] = [{ kind: "code", closer: "", depth: 0, wordStart: true }];
  const pending: Heredoc[] = [];
  const contexts: HoleContext[] = [];
  const top = (): Frame => stack[stack.length - 1] as Frame;
  // In `${ }`, a `#` is an operator (`${#x}`), never a comment.
  const code = (closer: "" | ")" | "}" | "`"): Frame => ({
    kind: "code",
    closer,
    depth: 0,
    wordStart: closer !== "}",
  });
  const startHeredoc = (): void => {
    const body = pending.shift();
    if (body) stack.push({ kind: "heredoc", body, line: "", hole: false });
  };

  for (const piece of pieces) {
    if (piece === null) {
      contexts.push(contextOf(stack));
      const frame = top();
      if (frame.kind === "heredoc") frame.hole = true;
      if (frame.kind === "code") frame.wordStart = false;
      continue;
    }
    for (let i = 0; i < piece.length; i += 1) {
      const c = piece[i] as string;
      const next = piece[i + 1];
      const frame = top();
      switch (frame.kind) {
        case "heredoc": {
          if (c !== "\n") {
            frame.line += c;
            break;
          }
          const line = frame.body.strip ? frame.line.replace(/^\t+/, "") : frame.line;
          if (!frame.hole && line === frame.body.delimiter) {
            stack.pop();
            startHeredoc();
          } else {
            frame.line = "";
            frame.hole = false;
          }
          break;
        }
        case "single":
          if (c === "'") stack.pop();
          break;
        case "ansi-c":
          if (c === "\\") i += 1;
          else if (c === "'") stack.pop();
          break;
        case "comment":
          if (c === "\n") {
            stack.pop();
            i -= 1; // the newline ends the line for the code around the comment too
          }
          break;
        case "double":
          if (c === "\\") i += 1;
          else if (c === '"') stack.pop();
          else if (c === "`") stack.push(code("`"));
          else if (c === "$" && next === "(") {
            stack.push(code(")"));
            i += 1;
          } else if (c === "$" && next === "{") {
            stack.push(code("}"));
            i += 1;
          }
          break;
        case "code": {
          const wordStart = frame.wordStart;
          frame.wordStart = /[\s;&|()<>]/.test(c);
          if (c === "\\") {
            i += 1;
          } else if (c === "#" && wordStart) {
            stack.push({ kind: "comment" });
          } else if (c === "'") {
            stack.push({ kind: "single" });
          } else if (c === '"') {
            stack.push({ kind: "double" });
          } else if (c === "`") {
            if (frame.closer === "`") stack.pop();
            else stack.push(code("`"));
          } else if (c === "$" && next === "'") {
            stack.push({ kind: "ansi-c" });
            i += 1;
          } else if (c === "$" && next === "(") {
            stack.push(code(")"));
            i += 1;
          } else if (c === "$" && next === "{") {
            stack.push(code("}"));
            i += 1;
          } else if (c === "(" && frame.closer === ")") {
            frame.depth += 1;
          } else if (c === ")" && frame.closer === ")") {
            if (frame.depth > 0) frame.depth -= 1;
            else stack.pop();
          } else if (c === "}" && frame.closer === "}") {
            stack.pop();
          } else if (c === "<" && next === "<" && frame.depth === 0) {
            // (At depth > 0 of `$((`, `<<` is a shift.)
            if (piece[i + 2] === "<") {
              i += 2; // a here-string (<<<), not a here-document
            } else {
              const parsed = readHeredocOperator(piece, i + 2);
              if (parsed) pending.push(parsed.heredoc);
              i = (parsed?.end ?? i + 2) - 1;
            }
          } else if (c === "\n" && pending.length > 0) {
            startHeredoc();
          }
          break;
        }
      }
    }
  }
  return contexts;
}

function contextOf(stack: readonly Frame[]): HoleContext {
  const frame = stack[stack.length - 1] as Frame;
  switch (frame.kind) {
    case "single":
      return { kind: "single" };
    case "ansi-c":
      return { kind: "ansi-c" };
    case "comment":
      return { kind: "comment" };
    case "double":
      return { kind: "double" };
    case "heredoc":
      return frame.body.quoted
        ? { kind: "quoted-heredoc", delimiter: frame.body.delimiter }
        : { kind: "heredoc", delimiter: frame.body.delimiter };
    case "code": {
      // In `"${x:-…}"` the value is still one word; in `"$(…)"` quoting starts afresh.
      const outer = stack[stack.length - 2];
      return frame.closer === "}" && outer?.kind === "double"
        ? { kind: "double" }
        : { kind: "bare" };
    }
  }
}

/** After `<<`: `-`, blanks, then the delimiter word (quoted if any part of it is). */
function readHeredocOperator(
  text: string,
  start: number,
): { heredoc: Heredoc; end: number } | undefined {
  let j = start;
  let strip = false;
  if (text[j] === "-") {
    strip = true;
    j += 1;
  }
  while (text[j] === " " || text[j] === "\t") j += 1;
  let delimiter = "";
  let quoted = false;
  while (j < text.length && !WORD_END.test(text[j] as string)) {
    const c = text[j] as string;
    if (c === "'" || c === '"') {
      quoted = true;
      const close = text.indexOf(c, j + 1);
      if (close === -1) return undefined;
      delimiter += text.slice(j + 1, close);
      j = close + 1;
    } else if (c === "\\") {
      quoted = true;
      delimiter += text[j + 1] ?? "";
      j += 2;
    } else {
      delimiter += c;
      j += 1;
    }
  }
  if (delimiter === "") return undefined;
  return { heredoc: { delimiter, quoted, strip }, end: j };
}
