/**
 * CODEOWNERS with GitHub's rules
 * (https://docs.github.com/repositories/managing-your-repositorys-settings-and-features/customizing-your-repository/about-code-owners):
 *
 * - the file is read from the default branch, at `.github/CODEOWNERS`, then `CODEOWNERS`,
 *   then `docs/CODEOWNERS`: the first that exists is used;
 * - each line is a pattern and owners (`@user`, `@org/team`, or an e-mail); `#` starts a
 *   comment; the **last** matching pattern wins, and a pattern without owners makes the
 *   path ownerless;
 * - patterns follow gitignore, except that `!` negation and `[ ]` ranges do not work:
 *   `*` matches within a path segment, `**` across segments, a leading `/` or a `/` inside
 *   anchors the pattern at the root (otherwise it matches at any depth), a trailing `/`
 *   matches a directory's contents, and `docs/*` matches files directly in `docs` only.
 */
import type { Octokit } from "../github-client.js";

export const CODEOWNERS_LOCATIONS = [".github/CODEOWNERS", "CODEOWNERS", "docs/CODEOWNERS"];

export interface CodeownersRule {
  pattern: string;
  owners: string[];
  /** 1-based line in the file, for messages. */
  line: number;
  regex: RegExp;
}

export interface Codeowners {
  /** Where the file was found. */
  path: string;
  rules: CodeownersRule[];
}

export function parseCodeowners(text: string): CodeownersRule[] {
  const rules: CodeownersRule[] = [];
  text.split(/\r?\n/).forEach((raw, index) => {
    const line = stripComment(raw).trim();
    if (line === "") return;
    const [pattern = "", ...owners] = line.split(/\s+/);
    // GitHub ignores lines it cannot use (negations, ranges); so do we.
    if (pattern.startsWith("!") || /\[.*\]/.test(pattern)) return;
    rules.push({ pattern, owners, line: index + 1, regex: patternRegex(pattern) });
  });
  return rules;
}

/** The owners of `path` (repository-relative, no leading slash): the last matching rule's. */
export function ownersOf(rules: readonly CodeownersRule[], path: string): string[] {
  const normalized = path.replace(/^\/+/, "");
  for (let i = rules.length - 1; i >= 0; i -= 1) {
    const rule = rules[i] as CodeownersRule;
    if (rule.regex.test(normalized)) return rule.owners;
  }
  return [];
}

/** The repository's CODEOWNERS on its default branch, or undefined when it has none. */
export async function readCodeowners(
  octokit: Octokit,
  repository: string,
): Promise<Codeowners | undefined> {
  const [owner = "", repo = ""] = repository.split("/");
  for (const path of CODEOWNERS_LOCATIONS) {
    try {
      // Without `ref`, the contents API reads the default branch.
      const { data } = await octokit.rest.repos.getContent({ owner, repo, path });
      if (Array.isArray(data) || data.type !== "file") continue;
      const file = data as { content?: string; encoding?: string };
      if (file.encoding !== "base64" || file.content === undefined) continue;
      const text = Buffer.from(file.content, "base64").toString("utf8");
      return { path, rules: parseCodeowners(text) };
    } catch (error: unknown) {
      if ((error as { status?: number }).status !== 404) throw error;
    }
  }
  return undefined;
}

/** `#` starts a comment, unless escaped (`\#`, for paths that start with one). */
function stripComment(line: string): string {
  let out = "";
  for (let i = 0; i < line.length; i += 1) {
    const char = line[i] as string;
    if (char === "\\" && line[i + 1] === "#") {
      out += "#";
      i += 1;
    } else if (char === "#") break;
    else out += char;
  }
  return out;
}

function patternRegex(pattern: string): RegExp {
  let body = pattern;
  // A slash at the start or in the middle anchors the pattern at the root.
  const anchored = body.startsWith("/") || body.slice(0, -1).includes("/");
  body = body.replace(/^\/+/, "");
  const directory = body.endsWith("/");
  if (directory) body = body.slice(0, -1);
  // `docs/*` owns the files directly in docs, not those in its subdirectories.
  const filesOnly = body.endsWith("/*");
  let regex = "";
  for (let i = 0; i < body.length;) {
    if (body.startsWith("**/", i)) {
      regex += "(?:.*/)?";
      i += 3;
    } else if (body.startsWith("**", i)) {
      regex += ".*";
      i += 2;
    } else if (body[i] === "*") {
      regex += "[^/]*";
      i += 1;
    } else if (body[i] === "?") {
      regex += "[^/]";
      i += 1;
    } else {
      regex += (body[i] as string).replace(/[.+^${}()|[\]\\]/g, "\\$&");
      i += 1;
    }
  }
  const prefix = anchored ? "^" : "^(?:.*/)?";
  const suffix = directory ? "/.*$" : filesOnly ? "$" : "(?:/.*)?$";
  return new RegExp(prefix + regex + suffix);
}
