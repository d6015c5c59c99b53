/**
 * A semantic diff between the live flows and a pull request's drafts: what a reviewer
 * needs to see beyond the text diff. Flows added and removed; per flow, steps added,
 * removed and changed (which keys), triggers added, removed and changed, approval
 * policies (approvers, required, self-approval…), and what widens what the flow can do
 * (GitHub requests, where commands run, which workflows are dispatched). Pure.
 */
import type {
  ApprovalSpec,
  FlowDefinition,
  StepDefinition,
  TokenPermissions,
} from "../../../flows-schema/schema.js";

export interface FlowsDiff {
  added: string[];
  removed: string[];
  /** Flows present on both sides whose definitions differ. */
  changed: FlowChange[];
}

export interface FlowChange {
  flow: string;
  steps: {
    added: string[];
    removed: string[];
    /** Steps on both sides that differ, with the keys that differ. */
    changed: { step: string; keys: string[] }[];
  };
  /** Trigger names: `manual`, `webhook`, `schedule "0 9 * * 1" (UTC)`, `github pull_request`. */
  triggers: { added: string[]; removed: string[]; changed: string[] };
  approvals: ApprovalChange[];
  permissions: PermissionChange[];
  /** The flow's `permissions:` (what its `github` steps' tokens may do), when it changed. */
  tokenPermissions?: { before: string; after: string };
  /**
   * Top-level keys that differ, other than `on`, `steps` and `permissions` (e.g.
   * `concurrency`, `env`).
   */
  settings: string[];
}

export type ApprovalChange =
  | { step: string; kind: "added" | "removed"; policy: string }
  | { step: string; kind: "changed"; field: string; before: string; after: string };

/** A change to what the flow can reach: `before` absent when added, `after` absent when removed. */
export interface PermissionChange {
  step: string;
  /** `github`, `runs-on`, `workflow`, `compensate.github`, … */
  what: string;
  before?: string;
  after?: string;
}

export function diffFlows(
  live: Readonly<Record<string, FlowDefinition>>,
  draft: Readonly<Record<string, FlowDefinition>>,
): FlowsDiff {
  const names = (record: Readonly<Record<string, unknown>>) => Object.keys(record).sort();
  const diff: FlowsDiff = {
    added: names(draft).filter((name) => !(name in live)),
    removed: names(live).filter((name) => !(name in draft)),
    changed: [],
  };
  for (const name of names(draft)) {
    const before = live[name];
    const after = draft[name];
    if (!before || !after || stableJson(before) === stableJson(after)) continue;
    diff.changed.push(diffFlow(name, before, after));
  }
  return diff;
}

/** The diff of one flow present on both sides. */
export function diffFlow(flow: string, before: FlowDefinition, after: FlowDefinition): FlowChange {
  const beforeSteps = before.steps;
  const afterSteps = after.steps;
  const stepIds = union(Object.keys(beforeSteps), Object.keys(afterSteps));
  const change: FlowChange = {
    flow,
    steps: { added: [], removed: [], changed: [] },
    triggers: diffTriggers(before, after),
    approvals: [],
    permissions: [],
    settings: union(Object.keys(before), Object.keys(after)).filter(
      (key) =>
        key !== "on" &&
        key !== "steps" &&
        key !== "permissions" &&
        stableJson((before as Record<string, unknown>)[key]) !==
          stableJson((after as Record<string, unknown>)[key]),
    ),
  };
  const tokenBefore = describePermissions(before.permissions);
  const tokenAfter = describePermissions(after.permissions);
  if (tokenBefore !== tokenAfter)
    change.tokenPermissions = { before: tokenBefore, after: tokenAfter };
  for (const id of stepIds) {
    const was = beforeSteps[id];
    const is = afterSteps[id];
    if (!was && is) change.steps.added.push(id);
    else if (was && !is) change.steps.removed.push(id);
    else if (was && is) {
      const keys = union(Object.keys(was), Object.keys(is)).filter(
        (key) =>
          stableJson((was as Record<string, unknown>)[key]) !==
          stableJson((is as Record<string, unknown>)[key]),
      );
      if (keys.length > 0) change.steps.changed.push({ step: id, keys });
    }
    change.approvals.push(...diffApproval(id, was?.approval, is?.approval));
    change.permissions.push(...diffPermissions(id, was, is));
  }
  return change;
}

function diffTriggers(before: FlowDefinition, after: FlowDefinition): FlowChange["triggers"] {
  const was = triggerEntries(before);
  const is = triggerEntries(after);
  const result: FlowChange["triggers"] = { added: [], removed: [], changed: [] };
  for (const name of union([...was.keys()], [...is.keys()])) {
    const a = was.get(name);
    const b = is.get(name);
    if (a === undefined && b !== undefined) result.added.push(name);
    else if (a !== undefined && b === undefined) result.removed.push(name);
    else if (a !== b) result.changed.push(name);
  }
  return result;
}

/** Each trigger by a readable name, with its settings as stable JSON. */
function triggerEntries(flow: FlowDefinition): Map<string, string> {
  const entries = new Map<string, string>();
  const on = flow.on ?? {};
  if (on.manual !== undefined) entries.set("manual", stableJson(on.manual ?? {}));
  if (on.webhook !== undefined) entries.set("webhook", "{}");
  for (const entry of on.schedule ?? [])
    entries.set(`schedule "${entry.cron}" (${entry.timezone})`, "{}");
  for (const [event, filter] of Object.entries(on.github ?? {}))
    entries.set(`github ${event}`, stableJson(filter ?? {}));
  return entries;
}

const APPROVAL_FIELDS: readonly [string, (spec: ApprovalSpec) => unknown][] = [
  ["approvers.users", (s) => s.approvers.users ?? []],
  ["approvers.teams", (s) => s.approvers.teams ?? []],
  ["approvers.codeowners", (s) => s.approvers.codeowners ?? false],
  ["approvers.paths", (s) => s.approvers.paths ?? []],
  ["approvers.permission", (s) => s.approvers.permission],
  ["required", (s) => s.required],
  ["self-approval", (s) => s["self-approval"]],
  ["via", (s) => s.via],
  ["timeout", (s) => s.timeout ?? "none"],
  ["on-timeout", (s) => s["on-timeout"]],
];

function diffApproval(
  step: string,
  before: ApprovalSpec | undefined,
  after: ApprovalSpec | undefined,
): ApprovalChange[] {
  if (!before && after) return [{ step, kind: "added", policy: describeApproval(after) }];
  if (before && !after) return [{ step, kind: "removed", policy: describeApproval(before) }];
  if (!before || !after) return [];
  return APPROVAL_FIELDS.flatMap(([field, read]) => {
    const was = showValue(read(before));
    const is = showValue(read(after));
    return was === is ? [] : [{ step, kind: "changed" as const, field, before: was, after: is }];
  });
}

/** One line: `1 of users a, b; teams acme/release; write permission; no self-approval`. */
export function describeApproval(spec: ApprovalSpec): string {
  const who: string[] = [];
  if (spec.approvers.users?.length) who.push(`users ${spec.approvers.users.join(", ")}`);
  if (spec.approvers.teams?.length) who.push(`teams ${spec.approvers.teams.join(", ")}`);
  if (spec.approvers.codeowners) who.push("code owners");
  return [
    `${spec.required} of ${who.length > 0 ? who.join(" or ") : "anyone"}`,
    `${spec.approvers.permission} permission`,
    spec["self-approval"] ? "self-approval allowed" : "no self-approval",
  ].join("; ");
}

/**
 * A flow's `permissions:` in one line, in Actions' names, `none` left out:
 * `contents: read (default)`, `issues: write, pull-requests: read`, `write-all`, `none`.
 */
export function describePermissions(permissions: TokenPermissions | undefined): string {
  if (permissions === undefined) return "contents: read (default)";
  if (typeof permissions === "string") return permissions;
  const granted = Object.entries(permissions)
    .filter(([, level]) => level !== "none")
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([scope, level]) => `${scope}: ${level}`);
  return granted.length > 0 ? granted.join(", ") : "none (metadata only)";
}

/** What a step can reach: GitHub requests, where it runs, which workflow it dispatches. */
function reach(step: StepDefinition | undefined): Map<string, string> {
  const facts = new Map<string, string>();
  if (!step) return facts;
  if (step.github) facts.set("github", step.github.request);
  if (step["runs-on"] !== undefined) facts.set("runs-on", showValue(step["runs-on"]));
  if (step.workflow !== undefined)
    facts.set("workflow", step.ref ? `${step.workflow}@${step.ref}` : step.workflow);
  if (step.flow !== undefined) facts.set("flow", step.flow);
  const compensate = step.compensate;
  if (compensate !== undefined && typeof compensate !== "string") {
    if (compensate.github) facts.set("compensate.github", compensate.github.request);
    if (compensate["runs-on"] !== undefined)
      facts.set("compensate.runs-on", showValue(compensate["runs-on"]));
    if (compensate.workflow !== undefined) facts.set("compensate.workflow", compensate.workflow);
  }
  return facts;
}

function reachesGitHub(step: StepDefinition | undefined): boolean {
  const compensate = step?.compensate;
  return (
    step?.github !== undefined ||
    (compensate !== undefined && typeof compensate !== "string" && compensate.github !== undefined)
  );
}

function diffPermissions(
  step: string,
  before: StepDefinition | undefined,
  after: StepDefinition | undefined,
): PermissionChange[] {
  const was = reach(before);
  const is = reach(after);
  return union([...was.keys()], [...is.keys()]).flatMap((what) => {
    const a = was.get(what);
    const b = is.get(what);
    if (a === b) return [];
    return [
      {
        step,
        what,
        ...(a !== undefined ? { before: a } : {}),
        ...(b !== undefined ? { after: b } : {}),
      },
    ];
  });
}

/** Whether a flow change says anything (a diff of two equal definitions says nothing). */
export function isEmptyDiff(diff: FlowsDiff): boolean {
  return diff.added.length === 0 && diff.removed.length === 0 && diff.changed.length === 0;
}

/** The diff as Markdown, for a check run's summary. */
export function renderFlowsDiff(
  diff: FlowsDiff,
  draft: Readonly<Record<string, FlowDefinition>>,
): string {
  const lines: string[] = [];
  for (const name of diff.added) {
    const flow = draft[name];
    const steps = flow ? Object.keys(flow.steps) : [];
    lines.push(`### \`${name}\`: new flow`, "");
    if (flow) {
      const triggers = [...triggerEntries(flow).keys()];
      lines.push(`- Triggers: ${triggers.length > 0 ? triggers.map(code).join(", ") : "none"}`);
      lines.push(`- Steps: ${steps.map(code).join(", ")}`);
      if (steps.some((id) => reachesGitHub(flow.steps[id])))
        lines.push(`- Token permissions: ${code(describePermissions(flow.permissions))}`);
      for (const [id, step] of Object.entries(flow.steps)) {
        if (step.approval) lines.push(`- Approval \`${id}\`: ${describeApproval(step.approval)}`);
        for (const [what, value] of reach(step)) lines.push(`- \`${id}\` ${what}: ${code(value)}`);
      }
    }
    lines.push("");
  }
  for (const name of diff.removed)
    lines.push(`### \`${name}\`: removed`, "", "Its triggers stop when this merges.", "");
  for (const change of diff.changed) {
    lines.push(`### \`${change.flow}\`: changed`, "");
    const { steps, triggers } = change;
    if (steps.added.length) lines.push(`- Steps added: ${steps.added.map(code).join(", ")}`);
    if (steps.removed.length) lines.push(`- Steps removed: ${steps.removed.map(code).join(", ")}`);
    for (const { step, keys } of steps.changed)
      lines.push(`- Step \`${step}\` changed: ${keys.map(code).join(", ")}`);
    if (triggers.added.length)
      lines.push(`- Triggers added: ${triggers.added.map(code).join(", ")}`);
    if (triggers.removed.length)
      lines.push(`- Triggers removed: ${triggers.removed.map(code).join(", ")}`);
    if (triggers.changed.length)
      lines.push(`- Triggers changed: ${triggers.changed.map(code).join(", ")}`);
    for (const approval of change.approvals) {
      if (approval.kind === "changed")
        lines.push(
          `- Approval \`${approval.step}\`: ${approval.field} ${code(approval.before)} → ${code(approval.after)}`,
        );
      else lines.push(`- Approval \`${approval.step}\` ${approval.kind}: ${approval.policy}`);
    }
    if (change.tokenPermissions)
      lines.push(
        `- ⚠️ Token permissions (\`permissions\`): ${code(change.tokenPermissions.before)} → ${code(change.tokenPermissions.after)}`,
      );
    for (const permission of change.permissions) {
      const what = `\`${permission.step}\` ${permission.what}`;
      if (permission.before === undefined)
        lines.push(`- ⚠️ ${what} added: ${code(permission.after ?? "")}`);
      else if (permission.after === undefined)
        lines.push(`- ${what} removed: ${code(permission.before)}`);
      else lines.push(`- ⚠️ ${what}: ${code(permission.before)} → ${code(permission.after)}`);
    }
    if (change.settings.length)
      lines.push(`- Also changed: ${change.settings.map(code).join(", ")}`);
    lines.push("");
  }
  return lines.join("\n");
}

function code(text: string): string {
  return `\`${text.replaceAll("`", "'")}\``;
}

function showValue(value: unknown): string {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string"))
    return value.length > 0 ? value.join(", ") : "none";
  return stableJson(value);
}

function union(a: readonly string[], b: readonly string[]): string[] {
  return [...new Set([...a, ...b])].sort();
}

/** JSON with object keys sorted, so that equal data gives equal text. */
export function stableJson(value: unknown): string {
  return (
    JSON.stringify(value, (_key, v: unknown) =>
      v && typeof v === "object" && !Array.isArray(v)
        ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b)))
        : v,
    ) ?? "undefined"
  );
}
