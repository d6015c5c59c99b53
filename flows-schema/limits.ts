/**
 * Limits that keep the validator safe on hostile input: it runs on every push and pull
 * request, on files anyone with a fork can write. Each limit is far above what a real flow
 * needs and turns into a diagnostic, never an exception.
 */

/** Flow files are read whole into memory; real ones are a few KiB. (1 MiB) */
export const MAX_SOURCE_BYTES = 1024 * 1024;

/**
 * Nesting depth of maps and lists. The YAML composer recurses per level, so a file of
 * 100,000 `[` exhausts the stack (or, worse, memory). Real flows nest about 6 deep. (64)
 */
export const MAX_NESTING = 64;

/**
 * Alias expansions allowed when building the document, as yaml counts them (uses of an anchor
 * times the aliases inside it): enough for a retry policy reused by hundreds of steps, far
 * too little for a "billion laughs" bomb. (1000)
 */
export const MAX_ALIAS_COUNT = 1000;

/**
 * Steps per flow. The graph checks walk `needs` chains recursively, and a run's check run
 * cannot show more steps in any useful way; split larger processes into sub-flows. (1000)
 */
export const MAX_STEPS = 1000;

/** Diagnostics reported per file: after that the rest is noise. (100) */
export const MAX_DIAGNOSTICS = 100;

/**
 * An upper estimate of the nesting depth of a YAML text, computed without parsing so that
 * it is safe to run before the parser: open flow brackets plus block indentation levels
 * plus leading `- ` / `? ` indicators on a line. Brackets inside strings are counted too,
 * which only over-estimates; real flows stay far below the limit either way.
 * Returns the 0-based offset of the first line where the estimate exceeds `limit`.
 */
export function findExcessiveNesting(source: string, limit: number): number | undefined {
  let brackets = 0;
  const indents: number[] = [];
  let lineStart = 0;
  while (lineStart <= source.length) {
    let lineEnd = source.indexOf("\n", lineStart);
    if (lineEnd === -1) lineEnd = source.length;
    let index = lineStart;
    while (index < lineEnd && (source[index] === " " || source[index] === "\t")) index += 1;
    const indent = index - lineStart;
    if (index < lineEnd && source[index] !== "#") {
      while (indents.length > 0 && (indents[indents.length - 1] ?? 0) >= indent) indents.pop();
      indents.push(indent);
      let indicators = 0;
      while (
        index + 1 < lineEnd &&
        (source[index] === "-" || source[index] === "?") &&
        (source[index + 1] === " " || source[index + 1] === "\t")
      ) {
        indicators += 1;
        index += 2;
        while (index < lineEnd && source[index] === " ") index += 1;
      }
      for (let at = index; at < lineEnd; at += 1) {
        const char = source[at];
        if (char === "[" || char === "{") brackets += 1;
        else if ((char === "]" || char === "}") && brackets > 0) brackets -= 1;
        if (brackets + indents.length + indicators > limit) return at;
      }
      if (brackets + indents.length + indicators > limit) return lineStart;
    }
    lineStart = lineEnd + 1;
  }
  return undefined;
}
