/**
 * Does a GitHub event start a flow? The `on.github.<event>` filters applied to a webhook
 * payload, with GitHub Actions' meanings (a filter copied from a workflow behaves the
 * same). Pure: the changed files of a pull request, which the payload does not carry, are
 * passed in by the caller.
 *
 * - `types`: the payload's `action` is one of them (an event without an action, such as
 *   `push`, never matches a `types` filter).
 * - `branches` / `branches-ignore`: the event's branch (below) matches / does not match.
 *   An event without a branch (a tag push, an `issues` event) never passes a branch filter.
 * - `paths` / `paths-ignore`: at least one changed file matches `paths`; not every changed
 *   file matches `paths-ignore`. Without a known list of changed files, a paths filter
 *   does not match.
 * - `labels`: for `labeled` and `unlabeled`, the label added or removed; otherwise the
 *   labels the issue or pull request carries. One of them must be listed.
 */
import type { GithubEventFilter } from "../../../flows-schema/schema.js";
import { compilePatterns } from "./filter-patterns.js";

/** What the filters look at, read from one delivery. */
export interface EventFacts {
  /** X-GitHub-Event. */
  name: string;
  action: string | undefined;
  /** The branch the event is about (see `eventBranch`), if any. */
  branch: string | undefined;
  /** Files the event changed, when known (see `pushChangedFiles`, or a pull request's files). */
  changedFiles: readonly string[] | undefined;
  labels: readonly string[];
}

export type FilterVerdict = { matches: true } | { matches: false; reason: string };

export function matchGitHubEvent(
  filter: GithubEventFilter | null | undefined,
  facts: EventFacts,
): FilterVerdict {
  if (!filter) return { matches: true };
  if (filter.types && (facts.action === undefined || !filter.types.includes(facts.action))) {
    return { matches: false, reason: `action ${facts.action ?? "(none)"} is not in types` };
  }
  if (filter.branches || filter["branches-ignore"]) {
    if (facts.branch === undefined) return { matches: false, reason: "the event has no branch" };
    if (filter.branches && !compilePatterns(filter.branches)(facts.branch)) {
      return { matches: false, reason: `branch ${facts.branch} is not in branches` };
    }
    if (filter["branches-ignore"] && compilePatterns(filter["branches-ignore"])(facts.branch)) {
      return { matches: false, reason: `branch ${facts.branch} is in branches-ignore` };
    }
  }
  if (filter.paths || filter["paths-ignore"]) {
    const files = facts.changedFiles;
    if (files === undefined) return { matches: false, reason: "the changed files are unknown" };
    if (filter.paths) {
      const included = compilePatterns(filter.paths);
      if (!files.some(included)) return { matches: false, reason: "no changed file is in paths" };
    }
    if (filter["paths-ignore"]) {
      const ignored = compilePatterns(filter["paths-ignore"]);
      if (files.length > 0 && files.every(ignored)) {
        return { matches: false, reason: "every changed file is in paths-ignore" };
      }
    }
  }
  if (filter.labels && !facts.labels.some((label) => filter.labels?.includes(label))) {
    return { matches: false, reason: "no listed label" };
  }
  return { matches: true };
}

/** Whether matching `filter` needs the changed files (a pull request's cost a request). */
export function needsChangedFiles(filter: GithubEventFilter | null | undefined): boolean {
  return Boolean(filter?.paths || filter?.["paths-ignore"]);
}

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

function string(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/**
 * The branch an event is about: a push's branch (`refs/heads/<branch>`), a pull request's
 * base branch (as in Actions), a workflow run's or check suite's head branch.
 */
export function eventBranch(name: string, payload: Payload): string | undefined {
  if (name === "push") {
    const ref = string(payload.ref);
    return ref?.startsWith("refs/heads/") ? ref.slice("refs/heads/".length) : undefined;
  }
  if (name.startsWith("pull_request")) {
    return string(object(object(payload.pull_request)?.base)?.ref);
  }
  const head =
    object(payload.workflow_run)?.head_branch ??
    object(payload.workflow_job)?.head_branch ??
    object(payload.check_suite)?.head_branch ??
    object(object(payload.check_run)?.check_suite)?.head_branch;
  return string(head);
}

/**
 * The files a push changed: the union of its commits' added, modified and removed files.
 * GitHub's push payload lists at most 20 commits; files changed only by later commits of
 * a larger push are not seen (the compare API would list them, capped at 300 files).
 */
export function pushChangedFiles(payload: Payload): string[] {
  const files = new Set<string>();
  const commits = Array.isArray(payload.commits) ? payload.commits : [];
  for (const commit of commits) {
    for (const key of ["added", "modified", "removed"]) {
      const list = object(commit)?.[key];
      if (Array.isArray(list))
        for (const file of list) if (typeof file === "string") files.add(file);
    }
  }
  return [...files];
}

/** The labels a `labels` filter looks at (see the module comment). */
export function eventLabels(action: string | undefined, payload: Payload): string[] {
  if (action === "labeled" || action === "unlabeled") {
    const name = string(object(payload.label)?.name);
    return name === undefined ? [] : [name];
  }
  const item = object(payload.pull_request) ?? object(payload.issue);
  const labels = Array.isArray(item?.labels) ? item.labels : [];
  return labels.map((label) => string(object(label)?.name)).filter((l) => l !== undefined);
}

/** The facts of a delivery, given the changed files when the caller knows them. */
export function eventFacts(
  name: string,
  action: string | undefined,
  payload: Payload,
  changedFiles: readonly string[] | undefined,
): EventFacts {
  return {
    name,
    action,
    branch: eventBranch(name, payload),
    changedFiles: name === "push" ? pushChangedFiles(payload) : changedFiles,
    labels: eventLabels(action, payload),
  };
}
