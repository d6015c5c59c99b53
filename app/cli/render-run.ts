/**
 * How a run reads in a terminal: a header, the steps as a table, and the history one event
 * per line. The same words are used live (`baton run --wait`) and after the fact
 * (`baton show`), so a person learns one vocabulary.
 */
import type { RunEvent, RunState, StepState } from "../engine/types.js";
import type { RunView } from "../http/api.js";

export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
}

const plain: Style = {
  bold: (t) => t,
  dim: (t) => t,
  red: (t) => t,
  green: (t) => t,
  yellow: (t) => t,
};
const ansi = (code: number) => (text: string) => `\u001b[${code}m${text}\u001b[0m`;
const colored: Style = {
  bold: ansi(1),
  dim: ansi(2),
  red: ansi(31),
  green: ansi(32),
  yellow: ansi(33),
};

/** Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function styleFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): Style {
  return stream.isTTY === true && !env.NO_COLOR ? colored : plain;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m${Math.round((ms % 60_000) / 1000)}s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h${minutes % 60}m`;
  return `${Math.floor(hours / 24)}d${hours % 24}h`;
}

function statusWord(state: StepState, style: Style): string {
  if (state.status === "done") {
    const result = state.result ?? "done";
    if (result === "success") return style.green(result);
    if (result === "failure") return style.red(result);
    return style.dim(result);
  }
  if (state.status === "waiting" || state.status === "retrying") return style.yellow(state.status);
  return state.status;
}

export function runStatusWord(status: RunState["status"], style: Style): string {
  if (status === "success") return style.green(status);
  if (status === "failure" || status === "cancelled") return style.red(status);
  return style.yellow(status);
}

/** One line for an event, or undefined for events that only matter to the machine. */
export function describeEvent(event: RunEvent): string | undefined {
  switch (event.type) {
    case "run.created":
      return `run created by ${event.meta.actor} (${event.trigger.event})`;
    case "run.admitted":
      return "run started";
    case "run.cancel-requested":
      return `cancel requested by ${event.by}: ${event.reason}`;
    case "run.retry-requested":
      return `rerun requested by ${event.by}${event.fromStep ? ` from ${event.fromStep}` : ""}`;
    case "run.retried":
      return `rerun (attempt ${event.runAttempt}): ${event.steps.join(", ") || "no steps"}`;
    case "attempt.started":
      return `${event.step}: attempt ${event.attempt} started`;
    case "attempt.progress":
      return `${event.step}: ${event.detail}${event.url ? ` ${event.url}` : ""}`;
    case "attempt.finished":
      return `${event.step}: attempt ${event.attempt} ${event.outcome}${event.error ? `: ${event.error}` : ""}`;
    case "attempt.timed-out":
      return `${event.step}: attempt ${event.attempt} timed out`;
    case "retry.scheduled":
      return `${event.step}: attempt ${event.attempt} scheduled`;
    case "step.waiting":
      return `${event.step}: waiting (${event.reason})`;
    case "signal.received":
      return `signal ${event.name} received from ${event.by}`;
    case "approval.submitted":
      return `${event.step}: ${event.user} ${event.decision === "approve" ? "approves" : "rejects"} via ${event.via}${event.comment ? ` ("${event.comment}")` : ""}`;
    case "approval.withdrawn":
      return `${event.step}: ${event.user !== undefined ? `${event.user}'s ` : ""}${event.via !== undefined ? `${event.via} ` : ""}approvals withdrawn (${event.reason})`;
    case "approval.evaluated":
      return `${event.step}: ${event.user}'s ${event.decision} ${event.counted ? "counted" : `refused: ${event.reason ?? ""}`}`;
    case "step.finished":
      return `${event.step}: ${event.result}${event.reason ? ` (${event.reason})` : ""}`;
    case "compensation.started":
      return `${event.step}: compensating`;
    case "compensation.finished":
      return `${event.step}: compensation ${event.outcome}${event.error ? `: ${event.error}` : ""}`;
    case "run.timed-out":
      return `run timed out after ${event.after}`;
    case "run.finished":
      return `run ${event.status}${event.reason ? ` (${event.reason})` : ""}`;
  }
}

export function renderHistoryLine(event: RunEvent, startedAt: number): string | undefined {
  const text = describeEvent(event);
  if (text === undefined) return undefined;
  const offset = `+${formatDuration(Math.max(0, event.at - startedAt))}`.padStart(9);
  // Errors carry the last lines of a step's stderr: indent them under their event.
  return `${offset}  ${text.trimEnd().replace(/\n/g, `\n${" ".repeat(13)}`)}`;
}

/** Steps in the order they started (as the history tells it), then those that never did. */
function stepsInOrder(state: RunState): StepState[] {
  return Object.values(state.steps).sort(
    (a, b) =>
      (a.startedAt ?? Number.MAX_SAFE_INTEGER) - (b.startedAt ?? Number.MAX_SAFE_INTEGER) ||
      a.id.localeCompare(b.id),
  );
}

function pad(rows: string[][]): string {
  // eslint-disable-next-line no-control-regex -- ANSI colour codes start with ESC
  const visible = (text: string) => text.replace(/\u001b\[[0-9;]*m/g, "").length;
  const widths: number[] = [];
  for (const row of rows)
    row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(cell))));
  return rows
    .map((row) =>
      row
        .map((cell, i) =>
          i === row.length - 1 ? cell : cell + " ".repeat((widths[i] ?? 0) - visible(cell)),
        )
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

export function renderSteps(state: RunState, style: Style = plain): string {
  const rows = [
    ["STEP", "STATUS", "ATTEMPTS", "DURATION", "DETAIL"].map((title) => style.bold(title)),
  ];
  for (const step of stepsInOrder(state)) {
    const duration =
      step.startedAt !== undefined && step.finishedAt !== undefined
        ? formatDuration(step.finishedAt - step.startedAt)
        : "";
    const outputs = Object.entries(step.outputs)
      .map(([name, value]) => `${name}=${value.length > 40 ? `${value.slice(0, 37)}...` : value}`)
      .join(" ");
    rows.push([
      step.id,
      statusWord(step, style),
      String(step.attempt),
      duration,
      [step.reason, outputs].filter(Boolean).join("; "),
    ]);
  }
  return pad(rows);
}

export function renderRun(run: RunView, style: Style = plain): string {
  const { state } = run;
  const ended =
    state.finishedAt !== undefined
      ? ` in ${formatDuration(state.finishedAt - state.createdAt)}`
      : "";
  const lines = [
    `${style.bold(`${run.flow} #${run.number}`)}  ${runStatusWord(state.status, style)}${ended}${state.reason ? ` (${state.reason})` : ""}`,
    style.dim(
      `run ${run.id} · attempt ${state.runAttempt} · ${new Date(state.createdAt).toISOString()}`,
    ),
    "",
    renderSteps(state, style),
  ];
  const outputs = Object.entries(state.outputs);
  if (outputs.length > 0) {
    lines.push("", style.bold("OUTPUTS"), ...outputs.map(([name, value]) => `  ${name}=${value}`));
  }
  lines.push("", style.bold("HISTORY"));
  for (const event of run.events) {
    const line = renderHistoryLine(event, state.createdAt);
    if (line !== undefined) lines.push(line);
  }
  return lines.join("\n") + "\n";
}
