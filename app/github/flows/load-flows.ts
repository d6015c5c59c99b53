/**
 * Loading a repository's flows at one commit, through the git data API: the commit's
 * tree (recursive, one request), then the blobs of `.github/flows/*.yml|*.yaml` (not
 * subfolders) and of `.github/baton.yml`, parsed and validated. Nothing here writes.
 *
 * A recursive tree is cut off past GitHub's limit (100,000 entries or 7 MB) and says
 * `truncated`: then the tree is walked one level at a time down to `.github/flows`,
 * which costs three small requests instead of one. A file over the validator's size
 * limit is not downloaded; it gets a diagnostic instead.
 */
import type { Diagnostic } from "../../../flows-schema/diagnostic.js";
import { MAX_SOURCE_BYTES } from "../../../flows-schema/limits.js";
import { flowNameFromFile, parseFlow } from "../../../flows-schema/parse-flow.js";
import type { FlowDefinition } from "../../../flows-schema/schema.js";
import type { Octokit } from "../github-client.js";
import type { ParsedSettings } from "./repository-settings.js";
import { parseRepositorySettings, SETTINGS_PATH } from "./repository-settings.js";

export const FLOWS_DIRECTORY = ".github/flows";

/** `.github/flows/<name>.yml` or `.yaml`, directly in the folder. */
const FLOW_FILE = /^\.github\/flows\/[^/]+\.ya?ml$/;

export function isFlowFile(path: string): boolean {
  return FLOW_FILE.test(path);
}

export interface LoadedFlowFile {
  /** The flow's name: the file name without the extension. */
  name: string;
  path: string;
  /** The git blob SHA: equal SHAs mean equal content. */
  blobSha: string;
  /** The text; absent when the file was too large to read. */
  source?: string;
  /** Present if and only if the file is valid (warnings may accompany it). */
  flow?: FlowDefinition;
  diagnostics: Diagnostic[];
}

export interface LoadedSettings {
  blobSha: string;
  source: string;
  parsed: ParsedSettings;
}

export interface LoadedFlows {
  repository: string;
  /** The commit the flows were read at. */
  sha: string;
  /** One per flow name, ordered by name. */
  files: LoadedFlowFile[];
  /** `.github/baton.yml`, when the commit has one. */
  settings?: LoadedSettings;
  /**
   * Problems with files that do not become a flow: a second file of the same name
   * (`x.yml` and `x.yaml`), a symbolic link.
   */
  problems: Diagnostic[];
}

interface TreeEntry {
  path: string;
  type: string;
  mode: string;
  sha: string;
  size?: number;
}

/** Read, parse and validate the flows of `repository` at commit `sha`. */
export async function loadFlowsAt(
  octokit: Octokit,
  repository: string,
  sha: string,
): Promise<LoadedFlows> {
  const [owner = "", repo = ""] = repository.split("/");
  const entries = await flowTreeEntries(octokit, owner, repo, sha);
  const problems: Diagnostic[] = [];
  const byName = new Map<string, TreeEntry>();
  let settingsEntry: TreeEntry | undefined;
  for (const entry of [...entries].sort((a, b) => a.path.localeCompare(b.path))) {
    if (entry.type !== "blob") continue;
    const isFlow = FLOW_FILE.test(entry.path);
    if (!isFlow && entry.path !== SETTINGS_PATH) continue;
    if (entry.mode === "120000") {
      problems.push(
        fileProblem(entry.path, "a symbolic link is not followed; commit the file itself"),
      );
      continue;
    }
    if (!isFlow) {
      settingsEntry = entry;
      continue;
    }
    const name = flowNameFromFile(entry.path);
    const first = byName.get(name);
    if (first) {
      problems.push(
        fileProblem(
          entry.path,
          `flow "${name}" is already defined by ${first.path}; rename or delete one of them`,
        ),
      );
      continue;
    }
    byName.set(name, entry);
  }

  const files = await Promise.all(
    [...byName.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(async ([name, entry]): Promise<LoadedFlowFile> => {
        const base = { name, path: entry.path, blobSha: entry.sha };
        if (entry.size !== undefined && entry.size > MAX_SOURCE_BYTES) {
          return {
            ...base,
            diagnostics: [
              fileProblem(
                entry.path,
                `the file is ${entry.size} bytes; a flow file may be at most ${MAX_SOURCE_BYTES} bytes (1 MiB)`,
              ),
            ],
          };
        }
        const source = await readBlob(octokit, owner, repo, entry.sha);
        const parsed = parseFlow(source, entry.path);
        return {
          ...base,
          source,
          ...(parsed.flow ? { flow: parsed.flow } : {}),
          diagnostics: parsed.diagnostics,
        };
      }),
  );

  let settings: LoadedSettings | undefined;
  if (settingsEntry) {
    if (settingsEntry.size !== undefined && settingsEntry.size > MAX_SOURCE_BYTES) {
      problems.push(fileProblem(SETTINGS_PATH, "the settings file is larger than 1 MiB"));
    } else {
      const source = await readBlob(octokit, owner, repo, settingsEntry.sha);
      settings = { blobSha: settingsEntry.sha, source, parsed: parseRepositorySettings(source) };
    }
  }
  return { repository, sha, files, ...(settings ? { settings } : {}), problems };
}

/** The tree entries under `.github/` that may matter, with full paths. */
async function flowTreeEntries(
  octokit: Octokit,
  owner: string,
  repo: string,
  sha: string,
): Promise<TreeEntry[]> {
  const { data } = await octokit.rest.git.getTree({ owner, repo, tree_sha: sha, recursive: "1" });
  if (!data.truncated) return data.tree.map(toEntry).filter((e) => e.path.startsWith(".github/"));
  // Truncated: walk down level by level; each level is small.
  const root = await octokit.rest.git.getTree({ owner, repo, tree_sha: sha });
  const github = root.data.tree.find((e) => e.path === ".github" && e.type === "tree");
  if (!github?.sha) return [];
  const dotGithub = await octokit.rest.git.getTree({ owner, repo, tree_sha: github.sha });
  const entries = dotGithub.data.tree.map((e) => ({ ...toEntry(e), path: `.github/${e.path}` }));
  const flows = dotGithub.data.tree.find((e) => e.path === "flows" && e.type === "tree");
  if (flows?.sha) {
    const flowsTree = await octokit.rest.git.getTree({ owner, repo, tree_sha: flows.sha });
    // A non-recursive listing can be truncated too, past 100,000 entries in one folder;
    // nobody keeps that many flows, so it is reported rather than paged through.
    if (flowsTree.data.truncated)
      throw new Error(
        `${owner}/${repo}@${sha}: ${FLOWS_DIRECTORY} lists more entries than GitHub returns at once`,
      );
    entries.push(
      ...flowsTree.data.tree.map((e) => ({ ...toEntry(e), path: `${FLOWS_DIRECTORY}/${e.path}` })),
    );
  }
  return entries;
}

function toEntry(entry: {
  path?: string;
  type?: string;
  mode?: string;
  sha?: string;
  size?: number;
}): TreeEntry {
  return {
    path: entry.path ?? "",
    type: entry.type ?? "",
    mode: entry.mode ?? "",
    sha: entry.sha ?? "",
    ...(entry.size !== undefined ? { size: entry.size } : {}),
  };
}

async function readBlob(octokit: Octokit, owner: string, repo: string, sha: string) {
  const { data } = await octokit.rest.git.getBlob({ owner, repo, file_sha: sha });
  const bytes =
    data.encoding === "base64"
      ? Buffer.from(data.content, "base64")
      : Buffer.from(data.content, "utf8");
  return bytes.toString("utf8");
}

/** A problem with a file as a whole, shown on its first line. */
export function fileProblem(path: string, message: string): Diagnostic {
  return {
    file: path,
    line: 1,
    column: 1,
    endLine: 1,
    endColumn: 2,
    severity: "error",
    message,
    path: [],
  };
}
