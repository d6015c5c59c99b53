/**
 * A run as GitHub shows it: the fields of its check run (`baton / <flow>`), computed from
 * the run's details and nothing else (no clock, no I/O), so the same run always renders
 * the same way and "nothing visible changed" is a comparison of two renderings.
 *
 * - status and conclusion follow the run; a run that waits on people (an approval or a
 *   signal) with nothing running is `completed` / `action_required`, because that is the
 *   state in which GitHub shows the buttons and asks people to act;
 * - the summary is a table of steps (state, duration, attempts, links, outputs), then the
 *   approvals and the audit trail (who decided, how, when, counted or refused and why);
 * - the buttons are at most 3 of Cancel, Retry, Approve, Reject.
 *
 * GitHub's limits (DESIGN.md rule 5): summary and text ≤ 65,535 characters (cut at a line
 * with a note that points to `baton show <run>`), 3 actions, identifier and label ≤ 20
 * characters, description ≤ 40. Everything that comes from users (step outputs, reasons,
 * comments, logins, input values) is escaped for Markdown tables and bounded in length.
 */
import type { ApprovalSubmitted, RunEvent, RunState, StepState } from "../../engine/types.js";
import { type RunDetails, waitsForPeople } from "../../runtime/index.js";

/** GitHub's limits on one check run request. */
export const CHECK_RUN_LIMITS = {
  summaryChars: 65_535,
  textChars: 65_535,
  actions: 3,
  identifierChars: 20,
  labelChars: 20,
  descriptionChars: 40,
} as const;

/** One output value is cut to this many characters in the table. */
export const OUTPUT_VALUE_CHARS = 200;
/** At most this many outputs of one step are listed. */
export const OUTPUTS_PER_STEP = 20;

export type CheckRunStatus = "queued" | "in_progress" | "completed";
export type CheckRunConclusion = "success" | "failure" | "cancelled" | "action_required";

export interface CheckRunAction {
  label: string;
  description: string;
  identifier: string;
}

/** What the Checks API is sent (create or update), in GitHub's field names. */
export interface RenderedCheckRun {
  name: string;
  external_id: string;
  status: CheckRunStatus;
  /** Set exactly when `status` is `completed`. */
  conclusion?: CheckRunConclusion;
  output: { title: string; summary: string; text?: string };
  actions: CheckRunAction[];
}

export interface RenderOptions {
  /**
   * The latest note for the people who look at the check run (a refused button click and
   * why), shown at the top of `output.text`. (Default: none)
   */
  note?: string;
}

/**
 * Button identifiers. Approve and Reject carry the approval step's position in the flow
 * (`approve:2`), because step ids can be longer than the 20 characters GitHub allows.
 */
export const ACTION_IDS = {
  cancel: "baton-cancel",
  retry: "baton-retry",
  approve: "baton-approve",
  reject: "baton-reject",
} as const;

export type ParsedAction =
  { kind: "cancel" } | { kind: "retry" } | { kind: "approve" | "reject"; stepIndex: number };

/** The button an identifier names, or undefined for someone else's (e.g. `run-draft`). */
export function parseActionIdentifier(identifier: string): ParsedAction | undefined {
  if (identifier === ACTION_IDS.cancel) return { kind: "cancel" };
  if (identifier === ACTION_IDS.retry) return { kind: "retry" };
  const match = /^baton-(approve|reject):(\d{1,4})$/.exec(identifier);
  if (!match) return undefined;
  return { kind: match[1] as "approve" | "reject", stepIndex: Number(match[2]) };
}

/** `baton / <flow display name or file name>`. */
export function checkRunName(details: Pick<RunDetails, "version">): string {
  return `baton / ${details.version.definition.name ?? details.version.name}`;
}

export function renderCheckRun(details: RunDetails, options: RenderOptions = {}): RenderedCheckRun {
  const { run } = details;
  const status = details.state?.status ?? run.status;
  const waiting = !isTerminal(status) && status !== "queued" && waitsForPeople(details);
  let checkStatus: CheckRunStatus;
  let conclusion: CheckRunConclusion | undefined;
  if (status === "success" || status === "failure" || status === "cancelled") {
    checkStatus = "completed";
    conclusion = status;
  } else if (waiting) {
    checkStatus = "completed";
    conclusion = "action_required";
  } else {
    checkStatus = status === "queued" ? "queued" : "in_progress";
  }
  const rendered: RenderedCheckRun = {
    name: checkRunName(details),
    external_id: run.id,
    status: checkStatus,
    ...(conclusion ? { conclusion } : {}),
    output: {
      title: limitChars(title(details, waiting), 1000),
      summary: fitWithin(summaryLines(details), CHECK_RUN_LIMITS.summaryChars, run.id),
    },
    actions: actionsFor(details, waiting),
  };
  if (options.note !== undefined) {
    rendered.output.text = fitWithin(
      [`> **Note:** ${oneLine(options.note)}`],
      CHECK_RUN_LIMITS.textChars,
      run.id,
    );
  }
  return rendered;
}

// --- Title --------------------------------------------------------------------------------

function title(details: RunDetails, waiting: boolean): string {
  const state = details.state;
  const status = state?.status ?? details.run.status;
  const label = `${details.run.flow} #${details.run.number}`;
  const duration =
    state?.finishedAt !== undefined
      ? ` in ${formatDuration(state.finishedAt - state.createdAt)}`
      : "";
  switch (status) {
    case "queued":
      return `${label} is queued (concurrency group ${state?.concurrencyGroup ?? "busy"})`;
    case "success":
      return `${label} succeeded${duration}`;
    case "failure":
      return `${label} failed${duration}${state?.reason ? `: ${oneLine(state.reason)}` : ""}`;
    case "cancelled":
      return `${label} was cancelled${duration}`;
    case "compensating":
      return `${label} is undoing completed steps`;
    case "running": {
      const steps = orderedSteps(details);
      if (waiting) {
        const reasons = steps
          .filter((step) => step.state?.status === "waiting")
          .map((step) => `${step.id}: ${step.state?.reason ?? "waiting"}`);
        return `${label} is waiting for ${reasons.join(", ")}`;
      }
      const running = steps.filter((step) => step.state?.status === "running").map((s) => s.id);
      return running.length > 0
        ? `${label} is running ${running.join(", ")}`
        : `${label} is running`;
    }
  }
}

// --- Summary ------------------------------------------------------------------------------

interface OrderedStep {
  id: string;
  state: StepState | undefined;
}

/** Steps in the flow's order (the order people wrote them in). */
function orderedSteps(details: RunDetails): OrderedStep[] {
  const states = details.state?.steps ?? {};
  const ids = Object.keys(details.version.definition.steps);
  for (const id of Object.keys(states)) if (!ids.includes(id)) ids.push(id);
  return ids.map((id) => ({ id, state: states[id] }));
}

function summaryLines(details: RunDetails): string[] {
  const { run, state } = details;
  const lines: string[] = [];
  const trigger = state?.trigger.event ?? run.triggerEvent;
  const attempt = state && state.runAttempt > 1 ? ` · attempt ${state.runAttempt}` : "";
  lines.push(
    `**${cell(run.flow)}** #${run.number} · started by @${cell(run.actor)} (${cell(trigger)})` +
      ` · version \`${details.version.sha.slice(0, 12)}\`${attempt}`,
    "",
  );
  if (state?.reason && isTerminal(state.status)) lines.push(`**Why:** ${cell(state.reason)}`, "");
  lines.push(...stepTable(details), "");
  const approvals = approvalLines(details);
  if (approvals.length > 0) lines.push("### Approvals", "", ...approvals, "");
  const audit = auditLines(details.events);
  if (audit.length > 0) lines.push("### Audit trail", "", ...audit, "");
  lines.push(`Run id \`${run.id}\`: \`baton show ${run.id}\` shows everything.`);
  return lines;
}

function stepTable(details: RunDetails): string[] {
  const links = latestLinks(details.events);
  const rows = orderedSteps(details).map(({ id, state }) => {
    const name = details.version.definition.steps[id]?.name;
    const label = name && name !== id ? `${cell(name)} (${code(id)})` : `${code(id)}`;
    const duration =
      state?.startedAt !== undefined && state.finishedAt !== undefined
        ? formatDuration(state.finishedAt - state.startedAt)
        : state?.startedAt !== undefined
          ? `since ${new Date(state.startedAt).toISOString().slice(11, 19)}Z`
          : "";
    const link = links.get(id);
    return [
      label,
      stepStateCell(state),
      duration,
      state && state.attempt > 0 ? String(state.attempt) : "",
      link ? `[${cell(link.detail, 60)}](${urlCell(link.url)})` : "",
      outputsCell(state?.outputs ?? {}),
    ];
  });
  return [
    "| Step | State | Duration | Attempts | Links | Outputs |",
    "| --- | --- | --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
}

const RESULT_ICONS: Record<string, string> = {
  success: "✅",
  failure: "❌",
  cancelled: "⛔",
  skipped: "⏭️",
};

function stepStateCell(state: StepState | undefined): string {
  if (!state) return "pending";
  let text: string;
  switch (state.status) {
    case "done":
      text = `${RESULT_ICONS[state.result ?? ""] ?? ""} ${state.result ?? "done"}`.trim();
      break;
    case "running":
      text = "🔄 running";
      break;
    case "waiting":
      text = "⏳ waiting";
      break;
    case "retrying":
      text = `🔁 retrying${state.retryAt !== undefined ? ` at ${new Date(state.retryAt).toISOString().slice(11, 19)}Z` : ""}`;
      break;
    case "pending":
      text = "pending";
      break;
  }
  if (state.reason) text += `: ${cell(state.reason, 200)}`;
  if (state.compensation) text += ` (undo: ${state.compensation})`;
  return text;
}

function outputsCell(outputs: Record<string, string>): string {
  const entries = Object.entries(outputs);
  const shown = entries
    .slice(0, OUTPUTS_PER_STEP)
    .map(([name, value]) => `${cell(name, 60)}: ${cell(value, OUTPUT_VALUE_CHARS)}`);
  if (entries.length > OUTPUTS_PER_STEP) shown.push(`… ${entries.length - OUTPUTS_PER_STEP} more`);
  return shown.join("<br>");
}

/** The latest link each step's executor reported (an Actions run, a runner's page). */
function latestLinks(events: readonly RunEvent[]): Map<string, { url: string; detail: string }> {
  const links = new Map<string, { url: string; detail: string }>();
  for (const event of events) {
    if (event.type === "attempt.progress" && event.url && isHttpUrl(event.url))
      links.set(event.step, { url: event.url, detail: event.detail || "details" });
  }
  return links;
}

function approvalLines(details: RunDetails): string[] {
  const lines: string[] = [];
  for (const { id, state } of orderedSteps(details)) {
    const spec = details.version.definition.steps[id]?.approval;
    if (!spec) continue;
    const approvers: string[] = [];
    if (spec.approvers.users?.length)
      approvers.push(`users ${spec.approvers.users.map((u) => `@${cell(u)}`).join(", ")}`);
    if (spec.approvers.teams?.length)
      approvers.push(`teams ${spec.approvers.teams.map((t) => cell(t)).join(", ")}`);
    if (spec.approvers.codeowners) approvers.push("code owners");
    const who = approvers.length > 0 ? approvers.join("; ") : "anyone";
    const counted = (state?.approvals ?? []).filter((a) => a.counted && a.decision === "approve");
    const where =
      state?.status === "waiting"
        ? `waiting: ${cell(state.reason ?? "approval")}`
        : state?.status === "done"
          ? (state.result ?? "done")
          : (state?.status ?? "pending");
    lines.push(
      `- ${code(id)}: ${where}. Needs ${spec.required} of ${who} with ${spec.approvers.permission} permission` +
        `${spec["self-approval"] ? "" : ", not whoever started the run"}; via ${spec.via.join(", ")}.` +
        (counted.length > 0
          ? ` Approved by ${counted.map((a) => `@${cell(a.user)}`).join(", ")}.`
          : ""),
    );
  }
  return lines;
}

/**
 * Who did what to the run, in order: approvals and rejections (with how they were given,
 * the permission GitHub reported, and whether they counted or why not), cancellations,
 * reruns and signals.
 */
function auditLines(events: readonly RunEvent[]): string[] {
  const rows: string[][] = [];
  const submissions: ApprovalSubmitted[] = [];
  for (const event of events) {
    const when = new Date(event.at).toISOString().replace(/\.\d{3}Z$/, "Z");
    switch (event.type) {
      case "approval.submitted":
        submissions.push(event);
        break;
      case "approval.evaluated": {
        const index = submissions.findIndex(
          (s) => s.step === event.step && s.user === event.user && s.decision === event.decision,
        );
        const submitted = index >= 0 ? submissions.splice(index, 1)[0] : undefined;
        const outcome = event.counted
          ? "counted"
          : `refused: ${cell(event.reason ?? "not counted", 300)}`;
        const comment = event.comment ? ` “${cell(event.comment, 200)}”` : "";
        const at = event.commit !== undefined ? ` at ${event.commit.slice(0, 7)}` : "";
        rows.push([
          when,
          `@${cell(event.user)}`,
          `${event.decision === "approve" ? "approved" : "rejected"} ${code(event.step)}${comment}`,
          submitted ? `${submitted.via}${at} (${submitted.facts.permission} permission)` : "",
          outcome,
        ]);
        break;
      }
      case "approval.withdrawn":
        rows.push([
          when,
          `@${cell(event.by)}`,
          `withdrew ${event.user !== undefined ? `@${cell(event.user)}'s ` : ""}${event.via !== undefined ? `${event.via} ` : ""}approvals of ${code(event.step)}`,
          "",
          cell(event.reason, 200),
        ]);
        break;
      case "run.cancel-requested":
        rows.push([when, `@${cell(event.by)}`, `cancel: ${cell(event.reason, 200)}`, "", ""]);
        break;
      case "run.retry-requested":
        rows.push([
          when,
          `@${cell(event.by)}`,
          `rerun${event.fromStep ? ` from ${code(event.fromStep)}` : ""}`,
          "",
          "",
        ]);
        break;
      case "signal.received":
        rows.push([when, `@${cell(event.by)}`, `signal ${code(event.name)}`, "", ""]);
        break;
      case "run.created":
      case "run.admitted":
      case "run.finished":
      case "run.retried":
      case "run.timed-out":
      case "attempt.started":
      case "attempt.finished":
      case "attempt.progress":
      case "attempt.timed-out":
      case "retry.scheduled":
      case "step.waiting":
      case "step.finished":
      case "compensation.started":
      case "compensation.finished":
        break; // the steps table shows these
    }
  }
  // Submissions the engine did not evaluate (the step had stopped waiting).
  for (const s of submissions) {
    rows.push([
      new Date(s.at).toISOString().replace(/\.\d{3}Z$/, "Z"),
      `@${cell(s.user)}`,
      `${s.decision === "approve" ? "approved" : "rejected"} ${code(s.step)}`,
      `${s.via} (${s.facts.permission} permission)`,
      "not evaluated",
    ]);
  }
  if (rows.length === 0) return [];
  return [
    "| When (UTC) | Who | What | How | Outcome |",
    "| --- | --- | --- | --- | --- |",
    ...rows.map((row) => `| ${row.join(" | ")} |`),
  ];
}

// --- Buttons ------------------------------------------------------------------------------

function actionsFor(details: RunDetails, waiting: boolean): CheckRunAction[] {
  const state = details.state;
  const status = state?.status ?? details.run.status;
  const actions: CheckRunAction[] = [];
  if (waiting) {
    const stepIds = Object.keys(details.version.definition.steps);
    const index = stepIds.findIndex((id) => {
      const spec = details.version.definition.steps[id]?.approval;
      return (
        spec !== undefined &&
        spec.via.includes("check-run") &&
        state?.steps[id]?.status === "waiting"
      );
    });
    const stepId = stepIds[index];
    if (stepId !== undefined) {
      actions.push(
        action("Approve", `Approve ${stepId}`, `${ACTION_IDS.approve}:${index}`),
        action("Reject", `Reject ${stepId}`, `${ACTION_IDS.reject}:${index}`),
      );
    }
  }
  if (status === "failure" || status === "cancelled") {
    actions.push(action("Retry", "Rerun the steps that did not succeed", ACTION_IDS.retry));
  } else if (!isTerminal(status)) {
    actions.push(action("Cancel", "Cancel this run", ACTION_IDS.cancel));
  }
  return actions.slice(0, CHECK_RUN_LIMITS.actions);
}

function action(label: string, description: string, identifier: string): CheckRunAction {
  return {
    label: limitChars(label, CHECK_RUN_LIMITS.labelChars),
    description: limitChars(description, CHECK_RUN_LIMITS.descriptionChars),
    identifier: limitChars(identifier, CHECK_RUN_LIMITS.identifierChars),
  };
}

// --- Text helpers -------------------------------------------------------------------------

function isTerminal(status: RunState["status"]): boolean {
  return status === "success" || status === "failure" || status === "cancelled";
}

/**
 * Join lines, cutting at a line boundary when over `limit` characters (UTF-16 code units,
 * which are never fewer than GitHub's characters), with a note pointing to the CLI.
 */
export function fitWithin(lines: readonly string[], limit: number, runId: string): string {
  const whole = lines.join("\n");
  if (whole.length <= limit) return whole;
  const note = `\n\n> **Truncated:** this run's history is longer than GitHub shows (${limit.toLocaleString("en-US")} characters). Run \`baton show ${runId}\` for all of it.`;
  const budget = limit - note.length;
  let kept = "";
  for (const line of lines) {
    const next = kept === "" ? line : `${kept}\n${line}`;
    if (next.length > budget) {
      if (kept === "") kept = limitChars(line, budget);
      break;
    }
    kept = next;
  }
  return kept + note;
}

/**
 * Text that came from users, made safe for one Markdown table cell: one line, pipes and
 * Markdown/HTML syntax escaped (so it can neither break the table nor add links, images
 * or mentions), at most `max` characters.
 */
export function cell(text: string, max = 100): string {
  return oneLine(limitChars(text, max))
    .replace(/[\\`*_{}[\]()#+!|~]/g, (ch) => `\\${ch}`)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/@/g, "@\u200b");
}

/** Text in a code span inside a table cell: one line, no backticks, pipes escaped (GFM). */
export function code(text: string, max = 100): string {
  return `\`${oneLine(limitChars(text, max)).replace(/`/g, "'").replace(/\|/g, "\\|")}\``;
}

function oneLine(text: string): string {
  return text.replace(/\r\n|\r|\n/g, " ").replace(/\t/g, " ");
}

/** At most `max` characters (UTF-16 code units, never splitting a pair), with an ellipsis when cut. */
export function limitChars(text: string, max: number): string {
  if (text.length <= max) return text;
  let cut = text.slice(0, Math.max(0, max - 1));
  if (/[\uD800-\uDBFF]$/.test(cut)) cut = cut.slice(0, -1);
  return `${cut}…`;
}

function isHttpUrl(url: string): boolean {
  return /^https?:\/\/[^\s()<>]+$/i.test(url);
}

/** A URL inside a Markdown link target: parentheses and spaces cannot end it early. */
function urlCell(url: string): string {
  return url.replace(/[()|\s]/g, (ch) => encodeURIComponent(ch));
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m ${Math.round((ms % 60_000) / 1000)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h ${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
