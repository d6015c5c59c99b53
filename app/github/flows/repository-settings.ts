/**
 * `.github/baton.yml`: a repository's settings for Baton, read at the default branch's
 * head with its flows (only the live version counts: a pull request cannot loosen the
 * rules it is judged by). The format is documented in this folder's README.
 *
 * ```yaml
 * drafts:
 *   forks: false   # may draft flows of pull requests from forks run? (Default: false)
 * workflows:
 *   callers: [acme/app, acme/*]   # whose flows may dispatch this repository's workflows (Default: none)
 * ```
 */
import { isMap, isNode, parseDocument } from "yaml";
import { z } from "zod";
import type { Diagnostic } from "../../../flows-schema/diagnostic.js";
import {
  findExcessiveNesting,
  MAX_ALIAS_COUNT,
  MAX_NESTING,
} from "../../../flows-schema/limits.js";
import { locate, nodeRange } from "../../../flows-schema/locate-in-yaml.js";

export const SETTINGS_PATH = ".github/baton.yml";

export const repositorySettings = z
  .strictObject({
    drafts: z
      .strictObject({
        forks: z
          .boolean()
          .default(false)
          .describe(
            "Whether draft flows of pull requests from forks may run (still only on request " +
              "of someone with write permission). (Default: false)",
          ),
      })
      .default({ forks: false }),
    workflows: z
      .strictObject({
        callers: z
          .array(
            z.string().regex(/^[A-Za-z0-9_.-]+\/(?:[A-Za-z0-9_.-]+|\*)$/, "owner/repo or owner/*"),
          )
          .default([])
          .describe(
            "Repositories (owner/repo, or owner/* for all of an owner's) whose flows may dispatch " +
              "this repository's workflows as steps. A flow always may dispatch its own repository's. " +
              "(Default: none)",
          ),
      })
      .default({ callers: [] }),
  })
  .describe("Baton's settings for one repository.");

export type RepositorySettings = z.output<typeof repositorySettings>;

export const DEFAULT_SETTINGS: RepositorySettings = {
  drafts: { forks: false },
  workflows: { callers: [] },
};

export interface ParsedSettings {
  /** Present when the file is valid (or empty). */
  settings?: RepositorySettings;
  diagnostics: Diagnostic[];
}

/** Parse and validate the settings file; every problem is a diagnostic with its position. */
export function parseRepositorySettings(source: string, file = SETTINGS_PATH): ParsedSettings {
  const at = (
    offset: number,
    endOffset: number,
    message: string,
    path: (string | number)[],
  ): Diagnostic => {
    const start = position(source, offset);
    const end = endOffset > offset ? position(source, endOffset) : { ...start, col: start.col + 1 };
    return {
      file,
      line: start.line,
      column: start.col,
      endLine: end.line,
      endColumn: end.col,
      severity: "error",
      message,
      path,
    };
  };
  // The same guards as for flow files: a pull request may hold a hostile file.
  const tooDeep = findExcessiveNesting(source, MAX_NESTING);
  if (tooDeep !== undefined)
    return {
      diagnostics: [at(tooDeep, tooDeep, `nested more than ${MAX_NESTING} levels deep`, [])],
    };
  const document = parseDocument(source, { uniqueKeys: true });
  if (document.errors.length > 0) {
    return {
      diagnostics: document.errors.map((error) =>
        at(error.pos[0], error.pos[1], `YAML syntax: ${error.message.split("\n")[0] ?? ""}`, []),
      ),
    };
  }
  if (document.contents !== null && !isMap(document.contents)) {
    return {
      diagnostics: [
        at(0, 0, "the settings file must be a map, e.g. `drafts: { forks: false }`", []),
      ],
    };
  }
  let data: unknown;
  try {
    data = document.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (error: unknown) {
    return {
      diagnostics: [at(0, 0, `the file cannot be read: ${(error as Error).message}`, [])],
    };
  }
  const result = repositorySettings.safeParse(data);
  if (result.success) return { settings: result.data, diagnostics: [] };
  return {
    diagnostics: result.error.issues.map((issue) => {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      const unknownKeys = issue.code === "unrecognized_keys" ? issue.keys : [];
      const target = unknownKeys[0] !== undefined ? [...path, unknownKeys[0]] : path;
      const located = locate(document, target);
      const key = located.pair?.key;
      const range = nodeRange(unknownKeys.length > 0 && isNode(key) ? key : located.node) ?? [0, 0];
      const where = path.length > 0 ? `${path.join(".")}: ` : "";
      const message =
        unknownKeys.length > 0
          ? `${where}unknown key${unknownKeys.length > 1 ? "s" : ""} ${unknownKeys.map((k) => `\`${k}\``).join(", ")}; the settings are \`drafts.forks\` and \`workflows.callers\``
          : `${where}${issue.message}`;
      return at(range[0], range[1], message, target);
    }),
  };
}

/** 1-based line and column (UTF-16 code units, as editors and GitHub count) of an offset. */
function position(source: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = source.indexOf("\n"); i !== -1 && i < offset; i = source.indexOf("\n", i + 1)) {
    line += 1;
    lineStart = i + 1;
  }
  return { line, col: offset - lineStart + 1 };
}
