/**
 * `.github/baton.yml`: a repository's settings for Baton, read at the default branch's
 * head with its flows (only the live version counts: a pull request cannot loosen the
 * rules it is judged by). The format is documented in this folder's README.
 *
 * ```yaml
 * drafts:
 *   forks: false   # may draft flows of pull requests from forks run? (Default: false)
 * ```
 */
import { isMap, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import type { Diagnostic } from "../../../flows-schema/diagnostic.js";
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
  })
  .describe("Baton's settings for one repository.");

export type RepositorySettings = z.output<typeof repositorySettings>;

export const DEFAULT_SETTINGS: RepositorySettings = { drafts: { forks: false } };

export interface ParsedSettings {
  /** Present when the file is valid (or empty). */
  settings?: RepositorySettings;
  diagnostics: Diagnostic[];
}

/** Parse and validate the settings file; every problem is a diagnostic with its position. */
export function parseRepositorySettings(source: string, file = SETTINGS_PATH): ParsedSettings {
  const lines = new LineCounter();
  const document = parseDocument(source, { lineCounter: lines, uniqueKeys: true });
  const at = (offset: number, endOffset: number, message: string, path: (string | number)[]) => {
    const start = lines.linePos(offset);
    const end = endOffset > offset ? lines.linePos(endOffset) : { ...start, col: start.col + 1 };
    return {
      file,
      line: start.line,
      column: start.col,
      endLine: end.line,
      endColumn: end.col,
      severity: "error" as const,
      message,
      path,
    };
  };
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
  const result = repositorySettings.safeParse(document.toJS() ?? {});
  if (result.success) return { settings: result.data, diagnostics: [] };
  return {
    diagnostics: result.error.issues.map((issue) => {
      const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
      const unknownKeys = issue.code === "unrecognized_keys" ? issue.keys : [];
      const target = unknownKeys[0] !== undefined ? [...path, unknownKeys[0]] : path;
      const located = locate(document, target);
      const range = nodeRange(
        located.pair && unknownKeys.length > 0 ? (located.pair.key as never) : located.node,
      ) ?? [0, 0];
      const where = path.length > 0 ? `${path.join(".")}: ` : "";
      const message =
        unknownKeys.length > 0
          ? `${where}unknown key${unknownKeys.length > 1 ? "s" : ""} ${unknownKeys.map((k) => `\`${k}\``).join(", ")}; the settings are \`drafts.forks\``
          : `${where}${issue.message}`;
      return at(range[0], range[1], message, target);
    }),
  };
}
