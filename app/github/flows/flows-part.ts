/**
 * Flows from repositories (issue 4, items 3 and 4), as one part of the GitHub app:
 *
 * - live flows: on installation, and on a push to the default branch that touches
 *   `.github/flows/` or `.github/baton.yml`, the flows at the branch's head become live
 *   (live-flows-sql.ts `applyLiveLoad`), and `baton / flows` on that commit says how it went;
 * - drafts: on a pull request that changes flows, `baton / flows` on its head annotates
 *   every problem and summarises the semantic diff against live, with "Run draft" buttons
 *   (draft-runs.ts handles those and `/baton run <flow> --draft` comments).
 *
 * Deliveries arrive in any order and may be processed concurrently: a push's `after` is
 * not trusted. The handler asks GitHub for the branch's head at that moment and loads
 * it; when writing, a load resolved earlier than the live one is dropped.
 */
import type { FlowDefinition } from "../../../flows-schema/schema.js";
import type { EventHandler, GitHubApp, GitHubAppPart, Write } from "../github-app.js";
import type { Octokit } from "../github-client.js";
import { enqueueTasks } from "../../store/tasks.js";
import { saveFlowVersion } from "../../store/flow-versions.js";
import { onRunDraftButton, onRunDraftComment } from "./draft-runs.js";
import { diffFlows, stableJson } from "./flow-diff.js";
import { FLOWS_CHECK_RUN, flowsCheckRunHandler, flowsCheckRunTask } from "./flows-check-run.js";
import type { FlowDraft } from "../../store/live-flows.js";
import { applyLiveLoad, listLiveFlows, saveDrafts } from "../../store/live-flows.js";
import {
  getRepository,
  markRepositoriesRemoved,
  upsertRepository,
} from "../../store/repositories.js";
import type { LoadedFlows } from "./load-flows.js";
import { FLOWS_DIRECTORY, isFlowFile, loadFlowsAt } from "./load-flows.js";
import { byName } from "./order.js";
import { renderDraftCheck, renderLiveCheck } from "./render-flows-check.js";
import { DEFAULT_SETTINGS, SETTINGS_PATH } from "./repository-settings.js";

export { FLOWS_CHECK_RUN } from "./flows-check-run.js";

export interface FlowsPartOptions {
  /** Validate pull requests' drafts and run them on request. (Default: true) */
  drafts?: boolean;
}

export function flowsPart(app: GitHubApp, options: FlowsPartOptions = {}): GitHubAppPart {
  const drafts = options.drafts ?? true;
  return {
    name: "flows",
    events: {
      "installation.created": onInstalled,
      "installation_repositories.added": onInstalled,
      "installation.deleted": onUninstalled,
      "installation_repositories.removed": onUninstalled,
      push: onPush,
      ...(drafts
        ? {
            "pull_request.opened": onPullRequest,
            "pull_request.synchronize": onPullRequest,
            "pull_request.reopened": onPullRequest,
            "check_run.requested_action": onRunDraftButton,
            "issue_comment.created": onRunDraftComment,
          }
        : {}),
    },
    tasks: { [FLOWS_CHECK_RUN]: flowsCheckRunHandler(app) },
  };
}

interface RepositoryRef {
  id?: number;
  full_name: string;
}

/** Record the repositories and make their default branch's flows live. */
const onInstalled: EventHandler = async (event, app) => {
  const installationId = event.installationId;
  if (installationId === undefined) return undefined;
  const payload = event.payload as {
    repositories?: RepositoryRef[];
    repositories_added?: RepositoryRef[];
  };
  const repositories = payload.repositories_added ?? payload.repositories ?? [];
  const octokit = app.github.installation(installationId);
  const writes: Write[] = [];
  for (const ref of repositories) {
    const [owner = "", repo = ""] = ref.full_name.split("/");
    // The installation payloads do not say the default branch.
    const { data } = await octokit.rest.repos.get({ owner, repo });
    writes.push(
      await loadLive(app, octokit, {
        repository: data.full_name,
        githubId: data.id,
        installationId,
        defaultBranch: data.default_branch,
      }),
    );
  }
  return async (tx) => {
    for (const write of writes) await write(tx);
  };
};

/** Their triggers stop; runs already started are not touched. Nothing to read first. */
const onUninstalled: EventHandler = (event, app) => {
  const at = new Date(app.now());
  const installationId = event.installationId;
  const payload = event.payload as { repositories_removed?: RepositoryRef[] };
  const which =
    event.name === "installation"
      ? installationId !== undefined
        ? { installationId }
        : undefined
      : { repositories: (payload.repositories_removed ?? []).map((r) => r.full_name) };
  if (!which) return Promise.resolve(undefined);
  return Promise.resolve(async (tx) => {
    await markRepositoriesRemoved(tx, which, at);
  });
};

/** Pushes hold at most this many commits; a longer push may touch flows unseen. */
const PUSH_COMMITS_LISTED = 2048;

const onPush: EventHandler = async (event, app) => {
  const installationId = event.installationId;
  const payload = event.payload as {
    ref?: string;
    deleted?: boolean;
    forced?: boolean;
    repository?: RepositoryRef & { default_branch?: string; master_branch?: string };
    commits?: { added?: string[]; removed?: string[]; modified?: string[] }[];
  };
  const repository = payload.repository;
  const defaultBranch = repository?.default_branch ?? repository?.master_branch;
  if (installationId === undefined || !repository || !defaultBranch) return undefined;
  if (payload.ref !== `refs/heads/${defaultBranch}` || payload.deleted) return undefined;
  const commits = payload.commits ?? [];
  const touches = commits.some((commit) =>
    [...(commit.added ?? []), ...(commit.removed ?? []), ...(commit.modified ?? [])].some(
      (path) => path.startsWith(`${FLOWS_DIRECTORY}/`) || path === SETTINGS_PATH,
    ),
  );
  const known = await getRepository(app.store, repository.full_name);
  const mayTouch =
    touches || payload.forced === true || commits.length >= PUSH_COMMITS_LISTED || !known?.liveSha;
  if (!mayTouch) return undefined;
  return loadLive(app, app.github.installation(installationId), {
    repository: repository.full_name,
    ...(repository.id !== undefined ? { githubId: repository.id } : {}),
    installationId,
    defaultBranch,
  });
};

/**
 * Resolve the default branch's head now, load its flows unless they are live already,
 * and return the writes: record the repository, apply the load, enqueue its check.
 */
async function loadLive(
  app: GitHubApp,
  octokit: Octokit,
  repo: { repository: string; githubId?: number; installationId: number; defaultBranch: string },
): Promise<Write> {
  const resolvedAt = new Date(app.now());
  const head = await resolveBranchHead(octokit, repo.repository, repo.defaultBranch);
  const known = await getRepository(app.store, repo.repository);
  const loaded =
    head !== undefined && head !== known?.liveSha
      ? await loadFlowsAt(octokit, repo.repository, head)
      : undefined;
  return async (tx) => {
    await upsertRepository(tx, repo);
    if (!loaded) return;
    const outcome = await applyLiveLoad(tx, loaded, { resolvedAt, now: new Date(app.now()) });
    if (!outcome) return;
    const worthShowing =
      loaded.files.length > 0 ||
      loaded.problems.length > 0 ||
      loaded.settings !== undefined ||
      outcome.retired.length > 0;
    if (!worthShowing) return;
    await enqueueTasks(tx, [
      flowsCheckRunTask({
        installationId: repo.installationId,
        repository: repo.repository,
        check: renderLiveCheck(loaded, outcome),
      }),
    ]);
  };
}

/** The commit a branch points at now; undefined for an empty repository or a missing branch. */
export async function resolveBranchHead(
  octokit: Octokit,
  repository: string,
  branch: string,
): Promise<string | undefined> {
  const [owner = "", repo = ""] = repository.split("/");
  try {
    const { data } = await octokit.rest.git.getRef({ owner, repo, ref: `heads/${branch}` });
    return data.object.sha;
  } catch (error: unknown) {
    const status = (error as { status?: number }).status;
    if (status === 404 || status === 409) return undefined; // 409: the repository is empty
    throw error;
  }
}

/**
 * A pull request's drafts: when a flow file (or the settings) differs from live, store
 * the drafts and show the check on the head commit. Otherwise nothing: no check run for
 * pull requests that do not touch flows.
 */
const onPullRequest: EventHandler = async (event, app) => {
  const installationId = event.installationId;
  const payload = event.payload as {
    pull_request?: { number?: number; state?: string; head?: { sha?: string } };
    repository?: RepositoryRef;
  };
  const pull = payload.pull_request;
  const repository = payload.repository?.full_name;
  const headSha = pull?.head?.sha;
  if (installationId === undefined || !repository || !headSha || pull?.number === undefined)
    return undefined;
  if (pull.state !== undefined && pull.state !== "open") return undefined;
  const number = pull.number;
  const octokit = app.github.installation(installationId);
  // Only what the pull request itself changes (against its merge base) is a draft: a
  // branch behind the default branch must not look like it reverts newer live flows.
  const touched = await touchedFlowFiles(octokit, repository, number);
  if (touched.complete && touched.paths.size === 0) return undefined;
  const inPullRequest = (path: string) => !touched.complete || touched.paths.has(path);
  const loaded = await loadFlowsAt(octokit, repository, headSha);
  const live = await listLiveFlows(app.store, repository);
  const liveByName = new Map(live.map((flow) => [flow.flow, flow]));

  const changed = loaded.files.filter((file) => {
    const current = liveByName.get(file.name);
    return (
      inPullRequest(file.path) && (current?.source === undefined || current.source !== file.source)
    );
  });
  const present = new Set(loaded.files.map((file) => file.name));
  const removed = live.filter((flow) => !present.has(flow.flow) && inPullRequest(flow.path));
  const problems = loaded.problems.filter((problem) => inPullRequest(problem.file));
  const settingsFile = inPullRequest(SETTINGS_PATH) ? loaded.settings : undefined;
  const settingsProblems = settingsFile?.parsed.diagnostics.length ?? 0;
  const liveSettings = (await getRepository(app.store, repository))?.settings ?? DEFAULT_SETTINGS;
  const draftSettings = !inPullRequest(SETTINGS_PATH)
    ? liveSettings
    : settingsFile
      ? settingsFile.parsed.settings
      : DEFAULT_SETTINGS;
  const settingsChange =
    draftSettings && stableJson(draftSettings) !== stableJson(liveSettings)
      ? { before: liveSettings, after: draftSettings }
      : undefined;
  if (
    changed.length === 0 &&
    removed.length === 0 &&
    problems.length === 0 &&
    settingsProblems === 0 &&
    !settingsChange
  )
    return undefined;

  const liveDefinitions: Record<string, FlowDefinition> = {};
  for (const flow of live) if (flow.definition) liveDefinitions[flow.flow] = flow.definition;
  // The drafts are live plus this pull request's changes. An invalid draft shows as
  // problems, not as a removal: the diff keeps its live version.
  const draftDefinitions: Record<string, FlowDefinition> = { ...liveDefinitions };
  for (const file of changed) if (file.flow) draftDefinitions[file.name] = file.flow;
  for (const flow of removed) delete draftDefinitions[flow.flow];
  const diff = diffFlows(liveDefinitions, draftDefinitions);
  const runnable = changed
    .filter((file) => file.flow)
    .map((file) => file.name)
    .sort(byName);
  const invalid = changed.filter((file) => !file.flow).map((file) => file.name);
  // What the check shows: this pull request's files only.
  const shown: LoadedFlows = {
    repository: loaded.repository,
    sha: loaded.sha,
    files: changed,
    problems,
    ...(settingsFile ? { settings: settingsFile } : {}),
  };
  const check = renderDraftCheck({
    loaded: shown,
    pullRequest: number,
    diff,
    draft: Object.fromEntries(changed.flatMap((f) => (f.flow ? [[f.name, f.flow]] : []))),
    invalid,
    runnable,
    ...(settingsChange ? { settingsChange } : {}),
  });
  return async (tx) => {
    const stored: FlowDraft[] = [];
    for (const file of changed) {
      let versionId: string | undefined;
      if (file.flow && file.source !== undefined) {
        const version = await saveFlowVersion(tx, {
          sourceKind: "repository",
          repository,
          path: file.path,
          sha: headSha,
          name: file.name,
          definition: file.flow,
          source: file.source,
        });
        versionId = version.id;
      }
      stored.push({
        flow: file.name,
        pullRequest: number,
        headSha,
        ...(versionId ? { versionId } : {}),
      });
    }
    await saveDrafts(tx, repository, stored);
    await enqueueTasks(tx, [flowsCheckRunTask({ installationId, repository, check })]);
  };
};

/** GitHub lists at most this many files of a pull request. */
const PULL_REQUEST_FILES_LISTED = 3000;

/**
 * The flow and settings files a pull request changes (old and new names of renamed
 * ones). `complete` is false when GitHub's list may be cut off: then every file counts.
 */
async function touchedFlowFiles(
  octokit: Octokit,
  repository: string,
  pullRequest: number,
): Promise<{ paths: Set<string>; complete: boolean }> {
  const [owner = "", repo = ""] = repository.split("/");
  const files = await octokit.paginate(octokit.rest.pulls.listFiles, {
    owner,
    repo,
    pull_number: pullRequest,
    per_page: 100,
  });
  const paths = new Set<string>();
  for (const file of files)
    for (const path of [file.filename, file.previous_filename])
      if (path !== undefined && (isFlowFile(path) || path === SETTINGS_PATH)) paths.add(path);
  return { paths, complete: files.length < PULL_REQUEST_FILES_LISTED };
}
