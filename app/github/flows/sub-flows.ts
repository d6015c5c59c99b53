/**
 * Sub-flows of repository flows, for the runtime's `start-sub-run` (`subRunTask`): the
 * `flow: <name>` step of a repository's flow runs `.github/flows/<name>.yml` (or `.yaml`)
 * of the same repository, at the commit the parent's version is pinned to, read and
 * validated as every flow of that commit is (`loadFlowsAt`), and stored as a version of
 * its own. Never another repository's, never a branch's newer file: what runs is what was
 * reviewed with the parent.
 */
import {
  invalidSubFlow,
  localSubFlows,
  subFlowNameError,
  type SubFlowSource,
} from "../../runtime/index.js";
import type { GitHubApp } from "../github-app.js";
import { FLOWS_DIRECTORY, loadFlowsAt } from "./load-flows.js";

export function repositorySubFlows(app: Pick<GitHubApp, "github">): SubFlowSource {
  return {
    async load(parent, name) {
      const { run, version } = parent;
      // Local runs against the app (`baton run` with BATON_URL) keep local sub-flows.
      if (version.sourceKind === "local") return localSubFlows.load(parent, name);
      const refused = subFlowNameError(name);
      if (refused !== undefined) return { error: refused };
      if (!run.github)
        return {
          error: `run ${run.id} of ${version.repository} has no GitHub installation to read sub-flow "${name}" with`,
        };
      const octokit = app.github.installation(run.github.installationId);
      // Transient failures (GitHub down) throw: the task is tried again.
      const loaded = await loadFlowsAt(octokit, version.repository, version.sha);
      const file = loaded.files.find((candidate) => candidate.name === name);
      const at = `${version.repository}@${version.sha.slice(0, 7)}`;
      if (!file)
        return {
          error:
            `sub-flow "${name}" not found: expected ${FLOWS_DIRECTORY}/${name}.yml (or .yaml) ` +
            `in ${at}, the commit of the parent flow`,
        };
      const problems = loaded.problems.filter((problem) => problem.file === file.path);
      if (!file.flow || file.source === undefined || problems.length > 0)
        return {
          error: `${invalidSubFlow(file.path, [...problems, ...file.diagnostics])}\n(at ${at})`,
        };
      return {
        file: {
          sourceKind: "repository",
          repository: version.repository,
          path: file.path,
          sha: version.sha,
          name: file.name,
          definition: file.flow,
          source: file.source,
        },
      };
    },
  };
}
