/**
 * The `baton / flows` check run, rendered from what was loaded: on the default branch it
 * says which flows are live and which failed (their last valid version staying live); on
 * a pull request's head it annotates every problem and summarises the semantic diff
 * against live, with "Run draft" buttons. Pure: the task in flows-check-run.ts sends it.
 *
 * GitHub's limits (DESIGN.md rule 5): a summary of at most 65,535 characters (truncated
 * here, with a note), 50 annotations per request (the sender batches), at most 3 buttons
 * whose identifier and label fit 20 characters and description 40.
 */
import type { Diagnostic } from "../../../flows-schema/diagnostic.js";
import type { FlowDefinition } from "../../../flows-schema/schema.js";
import type { FlowsDiff } from "./flow-diff.js";
import { isEmptyDiff, renderFlowsDiff } from "./flow-diff.js";
import type { LoadedFlows } from "./load-flows.js";
import type { RepositorySettings } from "./repository-settings.js";
import { SETTINGS_PATH } from "./repository-settings.js";

export const FLOWS_CHECK_NAME = "baton / flows";
/** The external id of every `baton / flows` check run (see `FlowsCheck.externalId`). */
export const FLOWS_EXTERNAL_ID = "baton-flows";
export const SUMMARY_LIMIT = 65_535;
/** Annotations sent per check run, in all: past that, the summary says how many more. */
export const MAX_ANNOTATIONS = 1000;
/** The prefix of the "Run draft" buttons' identifiers; the rest is the draft's index. */
export const RUN_DRAFT_ACTION = "run-draft-";

export interface CheckAnnotation {
  path: string;
  start_line: number;
  end_line: number;
  start_column?: number;
  end_column?: number;
  annotation_level: "failure" | "warning" | "notice";
  message: string;
  title?: string;
}

export interface CheckAction {
  label: string;
  description: string;
  identifier: string;
}

/** Everything the check run shows: the task sends it as is. */
export interface FlowsCheck {
  headSha: string;
  conclusion: "success" | "failure" | "neutral";
  title: string;
  summary: string;
  annotations: CheckAnnotation[];
  actions: CheckAction[];
  /**
   * `baton-flows` on a default-branch commit, `baton-flows:pr:<number>` on a pull request's
   * head: tells this check run from a run's check run (whose external id is the run id),
   * even for a flow named `flows` (whose check run is also called `baton / flows`).
   */
  externalId: string;
}

/** What applying a default-branch load did, per flow (see live-flows-sql.ts). */
export interface LiveOutcome {
  /** Flows whose version at this commit is now live. */
  live: string[];
  /** Invalid at this commit; `keptSha` is the commit of the version that stays live, if any. */
  invalid: { flow: string; keptSha?: string }[];
  /** Flows whose file is gone: retired. */
  retired: string[];
}

/** The check on a default-branch commit. */
export function renderLiveCheck(loaded: LoadedFlows, outcome: LiveOutcome): FlowsCheck {
  const diagnostics = allDiagnostics(loaded);
  const errors = diagnostics.filter((d) => d.severity === "error");
  const lines: string[] = [];
  const byName = new Map(loaded.files.map((file) => [file.name, file]));
  if (outcome.invalid.length > 0) {
    lines.push("## Invalid flows", "");
    for (const { flow, keptSha } of outcome.invalid) {
      const file = byName.get(flow);
      const count = file?.diagnostics.filter((d) => d.severity === "error").length ?? 0;
      lines.push(
        `- \`${file?.path ?? flow}\`: ${plural(count, "error")}. ` +
          (keptSha
            ? `The last valid version (from ${shortSha(keptSha)}) stays live.`
            : "No version of it was ever valid, so it is not live."),
      );
    }
    lines.push("", "The annotations point at each problem.", "");
  }
  if (outcome.live.length > 0) {
    lines.push("## Live flows", "", "| Flow | Triggers | Steps |", "| --- | --- | --- |");
    for (const name of outcome.live) {
      const flow = byName.get(name)?.flow;
      if (!flow) continue;
      lines.push(`| \`${name}\` | ${triggerSummary(flow)} | ${Object.keys(flow.steps).length} |`);
    }
    lines.push("");
  }
  if (outcome.retired.length > 0)
    lines.push(
      `## Retired`,
      "",
      `${outcome.retired.map((name) => `\`${name}\``).join(", ")}: the file is gone, so ` +
        "its triggers stop. Runs already started finish on their version.",
      "",
    );
  lines.push(...settingsLines(loaded));
  const failed = errors.length > 0;
  const title =
    outcome.invalid.length > 0
      ? `${plural(outcome.invalid.length, "flow")} invalid: ${outcome.invalid.map((i) => i.flow).join(", ")}`
      : failed
        ? `${plural(errors.length, "error")} in .github: see the annotations`
        : `${plural(outcome.live.length, "flow")} live`;
  return {
    headSha: loaded.sha,
    conclusion: failed ? "failure" : "success",
    title,
    summary: truncateSummary(lines.join("\n") || "No flows in `.github/flows/`."),
    annotations: toAnnotations(diagnostics),
    actions: [],
    externalId: FLOWS_EXTERNAL_ID,
  };
}

/** A draft flow a button or a comment can run. */
export interface RunnableDraft {
  flow: string;
}

/** The check on a pull request's head. */
export function renderDraftCheck(options: {
  loaded: LoadedFlows;
  pullRequest: number;
  diff: FlowsDiff;
  /** The drafts' valid definitions, by name (for describing new flows). */
  draft: Readonly<Record<string, FlowDefinition>>;
  /** Changed flows that failed validation. */
  invalid: string[];
  /** Changed flows that can run, in button order. */
  runnable: string[];
  /** `.github/baton.yml` differs from the live settings. */
  settingsChange?: { before: RepositorySettings; after: RepositorySettings };
}): FlowsCheck {
  const { loaded, diff, invalid, runnable } = options;
  const diagnostics = allDiagnostics(loaded);
  const errors = diagnostics.filter((d) => d.severity === "error");
  const warnings = diagnostics.filter((d) => d.severity === "warning");
  const lines: string[] = [];
  if (errors.length > 0 || invalid.length > 0) {
    lines.push(
      "## Problems",
      "",
      `${plural(errors.length, "error")} and ${plural(warnings.length, "warning")}; the annotations point at each one.` +
        (invalid.length > 0
          ? ` Invalid: ${invalid.map((n) => `\`${n}\``).join(", ")}. If this merged, their last valid versions would stay live.`
          : ""),
      "",
    );
  } else if (warnings.length > 0) {
    lines.push(`${plural(warnings.length, "warning")}; the annotations point at each one.`, "");
  }
  lines.push("## Changes against live", "");
  lines.push(
    isEmptyDiff(diff) ? "No semantic change to valid flows." : renderFlowsDiff(diff, options.draft),
  );
  lines.push(...settingsLines(loaded));
  if (options.settingsChange) {
    const { before, after } = options.settingsChange;
    lines.push("## Settings", "");
    if (before.drafts.forks !== after.drafts.forks)
      lines.push(
        `- ${after.drafts.forks ? "⚠️ " : ""}\`drafts.forks\`: \`${before.drafts.forks}\` → \`${after.drafts.forks}\` ` +
          (after.drafts.forks
            ? "(drafts of pull requests from forks could run, on request of someone with write permission)"
            : "(drafts of pull requests from forks could no longer run)"),
      );
    lines.push("", `The settings in \`${SETTINGS_PATH}\` apply once this merges.`, "");
  }
  const actions = runnable.slice(0, 3).map((flow, index) => runDraftAction(flow, index));
  if (runnable.length > 0) {
    lines.push(
      "## Run a draft",
      "",
      "Someone with write permission can run a draft version: " +
        (actions.length > 0 ? "the buttons above, or " : "") +
        `a comment \`/baton run <flow> --draft [key=value …]\` (${runnable.map((n) => `\`${n}\``).join(", ")}).`,
      "",
    );
  }
  const changedCount = diff.added.length + diff.removed.length + diff.changed.length;
  return {
    headSha: loaded.sha,
    conclusion: errors.length > 0 ? "failure" : "success",
    title:
      errors.length > 0
        ? `${plural(errors.length, "error")} in ${invalid.map((n) => n).join(", ") || "the flows"}`
        : `${plural(changedCount, "flow")} changed`,
    summary: truncateSummary(lines.join("\n")),
    annotations: toAnnotations(diagnostics),
    actions,
    externalId: `${FLOWS_EXTERNAL_ID}:pr:${options.pullRequest}`,
  };
}

/** A button: `Run <flow>` when it fits in 20 characters, else `Run draft <n>`. */
export function runDraftAction(flow: string, index: number): CheckAction {
  const label = `Run ${flow}`.length <= 20 ? `Run ${flow}` : `Run draft ${index + 1}`;
  const description = `Run the draft of ${flow}`;
  return {
    label,
    description: description.length <= 40 ? description : `${description.slice(0, 39)}…`,
    identifier: `${RUN_DRAFT_ACTION}${index}`,
  };
}

function settingsLines(loaded: LoadedFlows): string[] {
  const problems = loaded.settings?.parsed.diagnostics ?? [];
  if (problems.length === 0) return [];
  return [
    "## Settings",
    "",
    `\`${SETTINGS_PATH}\` is invalid (${plural(problems.length, "problem")}); the last valid settings stay in force.`,
    "",
  ];
}

function allDiagnostics(loaded: LoadedFlows): Diagnostic[] {
  return [
    ...loaded.problems,
    ...loaded.files.flatMap((file) => file.diagnostics),
    ...(loaded.settings?.parsed.diagnostics ?? []),
  ];
}

/** Diagnostics as annotations on their exact line and columns, errors first. */
export function toAnnotations(diagnostics: readonly Diagnostic[]): CheckAnnotation[] {
  const ordered = [
    ...diagnostics.filter((d) => d.severity === "error"),
    ...diagnostics.filter((d) => d.severity !== "error"),
  ];
  return ordered.slice(0, MAX_ANNOTATIONS).map((d) => {
    const sameLine = d.endLine <= d.line;
    return {
      path: d.file,
      start_line: d.line,
      end_line: Math.max(d.line, d.endLine),
      // GitHub takes columns only within one line; its end column is inclusive.
      ...(sameLine
        ? { start_column: d.column, end_column: Math.max(d.column, d.endColumn - 1) }
        : {}),
      annotation_level: d.severity === "error" ? "failure" : "warning",
      message: d.message,
      title: `${d.severity === "error" ? "Error" : "Warning"} at ${d.line}:${d.column}`,
    };
  });
}

/** At most `limit` characters, ending with a note when cut. */
export function truncateSummary(text: string, limit = SUMMARY_LIMIT): string {
  if ([...text].length <= limit) return text;
  const note =
    "\n\n… (truncated: GitHub shows at most 65,535 characters; `baton validate .github/flows` prints everything)";
  return [...text].slice(0, limit - [...note].length).join("") + note;
}

function triggerSummary(flow: FlowDefinition): string {
  const on = flow.on ?? {};
  const parts: string[] = [];
  if (on.manual !== undefined) parts.push("manual");
  if (on.webhook !== undefined) parts.push("webhook");
  for (const entry of on.schedule ?? []) parts.push(`schedule \`${entry.cron}\``);
  for (const event of Object.keys(on.github ?? {})) parts.push(`\`${event}\``);
  return parts.length > 0 ? parts.join(", ") : "none";
}

export function shortSha(sha: string): string {
  return sha.slice(0, 7);
}

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}
