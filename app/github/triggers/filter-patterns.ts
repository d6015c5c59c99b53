/**
 * Branch and path patterns of `on.github` filters, with GitHub Actions' filter-pattern
 * semantics (docs: "Filter pattern cheat sheet"), so a filter copied from a workflow means
 * the same in a flow:
 *
 * - `*` any characters except `/`; `**` any characters, `/` included (`a/**` matches
 *   everything under `a/`, and `**\/x` matches `x` at any depth, the top included);
 * - `?` zero or one of the preceding character; `+` one or more of it;
 * - `[abc]`, `[a-z]` one character of the set; `\` escapes the next character;
 * - `!pattern` (not first) excludes what an earlier pattern included: the last pattern that
 *   matches decides.
 */

/** A compiled list of patterns: does `value` match, given the order and the negations? */
export type PatternList = (value: string) => boolean;

const cache = new Map<string, RegExp>();

export function compilePatterns(patterns: readonly string[]): PatternList {
  const compiled = patterns.map((pattern) => {
    const negated = pattern.startsWith("!");
    return { negated, regex: patternRegExp(negated ? pattern.slice(1) : pattern) };
  });
  return (value) => {
    let matched = false;
    for (const { negated, regex } of compiled) {
      if (regex.test(value)) matched = !negated;
    }
    return matched;
  };
}

/** One pattern as an anchored regular expression. */
export function patternRegExp(pattern: string): RegExp {
  const known = cache.get(pattern);
  if (known) return known;
  let source = "";
  for (let i = 0; i < pattern.length; i++) {
    const char = pattern[i] as string;
    if (char === "*") {
      if (pattern[i + 1] === "*") {
        i += 1;
        if (pattern[i + 1] === "/") {
          // `**/` also matches nothing at all: `**/x.js` matches `x.js`.
          i += 1;
          source += "(?:.*/)?";
        } else {
          source += ".*";
        }
      } else {
        source += "[^/]*";
      }
    } else if (char === "?" || char === "+") {
      // Quantify the preceding character (or class); at the start there is nothing to repeat.
      source += source === "" ? escapeRegExp(char) : char;
    } else if (char === "[") {
      const end = pattern.indexOf("]", i + 1);
      if (end === -1) {
        source += "\\[";
      } else {
        const set = pattern.slice(i + 1, end).replace(/[\\\]^]/g, "\\$&");
        source += `[${set}]`;
        i = end;
      }
    } else if (char === "\\" && i + 1 < pattern.length) {
      i += 1;
      source += escapeRegExp(pattern[i] as string);
    } else {
      source += escapeRegExp(char);
    }
  }
  const regex = new RegExp(`^${source}$`);
  if (cache.size > 1000) cache.clear();
  cache.set(pattern, regex);
  return regex;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
