/**
 * The checks the schema cannot express: the step graph, the kind of each step and the keys
 * that fit it, expressions and the contexts they read, cron and time zones, and the ranges
 * of durations and numbers. Works on parsed data only; `parse-flow.ts` turns each finding's
 * path (and offset inside a string) into a line and column.
 *
 * Decisions (also in the format reference):
 * - `steps.X` is readable from a step only if the step needs X, directly or through other
 *   steps; from `compensate`, a step may also read its own outputs; flow-level `outputs`
 *   may read any step.
 * - The flow's `env` and `concurrency` may read `inputs`, `trigger` and `run` only: they
 *   are evaluated when the run starts, before any step.
 * - `on`, `name`, `description` and `timeout` are fixed text: triggers are read before any
 *   run exists.
 */
import { CronExpressionParser } from "cron-parser";
import type { Expr } from "@actions/expressions";
import type { DocumentPath, Severity } from "./diagnostic.js";
import { formatPath } from "./diagnostic.js";
import type { DurationRange } from "./durations.js";
import { DURATION_RANGES, formatDuration, NUMBER_RANGES, parseDuration } from "./durations.js";
import {
  calledFunctions,
  conditionSource,
  contextReferences,
  ExpressionSyntaxError,
  parseExpression,
  splitTemplate,
  STATUS_FUNCTIONS,
  TemplateError,
  usesStatusFunction,
} from "./expressions.js";
import type { FlowDefinition, StepDefinition, StepKind } from "./schema.js";
import { holeContexts, SCRIPT_VARIABLE_PATTERN, scriptReference } from "./shell-quoting.js";
import { MAX_STEPS } from "./limits.js";
import { PERMISSION_SCOPES, SCOPES_WITHOUT_APP_PERMISSION, STEP_KINDS } from "./schema.js";
import { parseGithubRoute } from "./github-request.js";
import { didYouMean } from "./suggest.js";

export interface SemanticFinding {
  severity: Severity;
  message: string;
  path: DocumentPath;
  /** Point at the entry's key rather than its value. (Default: value) */
  at?: "key" | "value";
  /** For problems inside a string: the character offset in its value, and how many characters. */
  offset?: number;
  length?: number;
}

export interface SemanticOptions {
  /** The flow's own name (its file name), to catch a flow step that calls itself. */
  flowName?: string;
}

/** `run` context properties (DESIGN.md): what the engine puts there. */
export const RUN_PROPERTIES = ["id", "number", "attempt", "sha", "repository", "url"] as const;
/** `trigger` context properties: the event's name and its payload. */
export const TRIGGER_PROPERTIES = ["event", "payload"] as const;
/** `steps.<id>` properties. */
export const STEP_PROPERTIES = ["outputs", "result"] as const;

/** Outputs that steps of fixed-output kinds always produce. */
export const FIXED_OUTPUTS = {
  approval: ["decision", "approvers", "comment"],
  waitSignal: ["payload", "signal"],
  github: ["status", "data"],
} as const;

/** Keys that only some kinds accept. */
const KIND_KEYS: Record<string, { kinds: readonly StepKind[]; hint: string }> = {
  ref: { kinds: ["workflow"], hint: "it is the branch or tag a workflow is dispatched on" },
  "runs-on": { kinds: ["run", "agent"], hint: "it picks the runner of a `run` or `agent` step" },
  checkout: {
    kinds: ["run", "agent"],
    hint: "it clones the repository for a `run` or `agent` step",
  },
  "working-directory": {
    kinds: ["run", "agent"],
    hint: "it is where a `run` or `agent` step starts",
  },
  shell: { kinds: ["run"], hint: "it is the shell of a `run` command" },
  env: {
    kinds: ["run", "agent"],
    hint: "it sets environment variables of a `run` or `agent` step; pass values to other kinds with `with`",
  },
  with: {
    kinds: ["workflow", "flow", "run", "agent"],
    hint: "it passes inputs to a workflow, a sub-flow, or the environment of `run` and `agent` steps",
  },
};

/** What a step kind has instead of a common key. */
const NOT_FOR_KIND: Partial<Record<StepKind, Record<string, string>>> = {
  approval: {
    timeout: "an approval has its own `approval.timeout`",
    retry: "an approval is not retried: a rejection is a decision",
    outputs: `an approval's outputs are fixed: ${FIXED_OUTPUTS.approval.join(", ")}`,
  },
  wait: {
    timeout: "a wait has its own `wait.timeout` (with `signal`)",
    retry: "a wait is not retried",
    outputs: `a wait's outputs are fixed: ${FIXED_OUTPUTS.waitSignal.join(", ")} (with \`signal\`)`,
  },
  github: { outputs: `a github step's outputs are fixed: ${FIXED_OUTPUTS.github.join(", ")}` },
};

/** Contexts GitHub Actions has and Baton does not: what to say instead of "unknown". */
const FOREIGN_CONTEXTS: Record<string, string> = {
  secrets:
    "Baton holds no secrets, so there is no `secrets` context: use secrets inside the Actions workflow a `workflow` step dispatches, or the runner machine's environment for `run` and `agent` steps",
  vars: "Baton has no `vars` context: use the flow's `env`, or `inputs`",
  github:
    "`github` is a GitHub Actions context; in Baton use `run` (run.sha, run.repository, run.url, …) or `trigger` (trigger.event, trigger.payload)",
  needs:
    "`needs` is a GitHub Actions context; in Baton use `steps.<id>.outputs.<name>` or `steps.<id>.result`",
  jobs: "`jobs` is a GitHub Actions context; in Baton use `steps.<id>.outputs.<name>` or `steps.<id>.result`",
  job: "`job` is a GitHub Actions context; in Baton use `steps.<id>.result`",
  matrix: "Baton has no `matrix` context: write one step per case",
  strategy: "Baton has no `strategy` context: write one step per case",
  runner:
    "`runner` is a GitHub Actions context; in Baton read the runner machine's values in the command itself",
};

/** GitHub webhook events a repository installation receives (names as in GitHub's docs). */
export const GITHUB_EVENTS = [
  "branch_protection_rule",
  "check_run",
  "check_suite",
  "code_scanning_alert",
  "commit_comment",
  "create",
  "delete",
  "dependabot_alert",
  "deploy_key",
  "deployment",
  "deployment_protection_rule",
  "deployment_review",
  "deployment_status",
  "discussion",
  "discussion_comment",
  "fork",
  "gollum",
  "issue_comment",
  "issues",
  "label",
  "member",
  "merge_group",
  "meta",
  "milestone",
  "package",
  "page_build",
  "ping",
  "project",
  "project_card",
  "project_column",
  "projects_v2_item",
  "public",
  "pull_request",
  "pull_request_review",
  "pull_request_review_comment",
  "pull_request_review_thread",
  "push",
  "registry_package",
  "release",
  "repository",
  "repository_dispatch",
  "repository_ruleset",
  "secret_scanning_alert",
  "security_advisory",
  "star",
  "status",
  "sub_issues",
  "team_add",
  "watch",
  "workflow_dispatch",
  "workflow_job",
  "workflow_run",
];

const WORKFLOW_PATTERN = /^(?:[\w.-]+\/[\w.-]+\/\.github\/workflows\/)?[\w.-]+\.ya?ml$/;
const TIMESTAMP_PATTERN =
  /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})$/;

/** Where an expression is: which contexts it may read, and from which step. */
interface Scope {
  contexts: readonly string[];
  /** The step the expression belongs to; `steps.X` must be among its transitive needs. */
  step?: string;
  /** Inside `compensate`: the step may read its own outputs. */
  self?: boolean;
  /** `if`: a condition, with or without `${{ }}`, where status functions are allowed. */
  condition?: boolean;
}

export function checkSemantics(
  flow: FlowDefinition,
  options: SemanticOptions = {},
): SemanticFinding[] {
  return new SemanticChecker(flow, options).run();
}

class SemanticChecker {
  private readonly findings: SemanticFinding[] = [];
  private readonly stepIds: string[];
  private readonly needs = new Map<string, { id: string; path: DocumentPath }[]>();
  private readonly ancestors = new Map<string, Set<string>>();
  private readonly inputNames: string[];

  constructor(
    private readonly flow: FlowDefinition,
    private readonly options: SemanticOptions,
  ) {
    this.stepIds = Object.keys(flow.steps);
    this.inputNames = Object.keys(flow.on?.manual?.inputs ?? {});
    for (const [id, step] of Object.entries(flow.steps)) {
      const list =
        step.needs === undefined ? [] : typeof step.needs === "string" ? [step.needs] : step.needs;
      this.needs.set(
        id,
        list.map((need, index) => ({
          id: need,
          path:
            typeof step.needs === "string" ? ["steps", id, "needs"] : ["steps", id, "needs", index],
        })),
      );
    }
  }

  run(): SemanticFinding[] {
    this.checkTriggers();
    this.checkTokenPermissions();
    this.checkDuration(["timeout"], this.flow.timeout, DURATION_RANGES.runTimeout);
    if (this.stepIds.length > MAX_STEPS) {
      this.error(
        ["steps"],
        `the flow has ${this.stepIds.length} steps; a flow may have at most ${MAX_STEPS}: split it into sub-flows (\`flow\` steps)`,
        "key",
      );
      return this.findings;
    }
    if (this.stepIds.length === 0) {
      this.error(["steps"], "the flow has no steps; add at least one under `steps`", "key");
    }
    for (const [id, step] of Object.entries(this.flow.steps)) this.checkStep(id, step);
    this.checkNeeds();
    this.checkCycles();
    this.checkExpressions();
    this.checkScriptQuoting();
    this.checkReachability();
    return this.findings;
  }

  private add(severity: Severity, path: DocumentPath, message: string, at?: "key" | "value"): void {
    this.findings.push({ severity, path, message, ...(at ? { at } : {}) });
  }
  private error(path: DocumentPath, message: string, at?: "key" | "value"): void {
    this.add("error", path, message, at);
  }
  private warning(path: DocumentPath, message: string, at?: "key" | "value"): void {
    this.add("warning", path, message, at);
  }

  // Triggers ------------------------------------------------------------------------------

  private checkTriggers(): void {
    const on = this.flow.on;
    const hasTrigger =
      on !== undefined &&
      ("manual" in on ||
        on.schedule !== undefined ||
        "webhook" in on ||
        (on.github !== undefined && Object.keys(on.github).length > 0));
    if (!hasTrigger) {
      this.warning(
        on === undefined ? [] : ["on"],
        "the flow has no triggers: it starts only with `baton run` or from a parent flow's `flow` step; add `on: { manual: {} }` to say so, or a trigger",
        "key",
      );
    }
    for (const event of Object.keys(on?.github ?? {})) {
      if (!GITHUB_EVENTS.includes(event)) {
        // A warning, not an error: GitHub adds events, and this list may lag behind.
        this.warning(
          ["on", "github", event],
          `\`${event}\` is not a GitHub webhook event Baton knows, so it may never start a run${didYouMean(event, GITHUB_EVENTS)}`,
          "key",
        );
      }
    }
    on?.schedule?.forEach((entry, index) => {
      const path = ["on", "schedule", index];
      const fields = entry.cron.trim().split(/\s+/);
      if (fields.length !== 5) {
        this.error(
          [...path, "cron"],
          `\`cron\` has ${fields.length} field${fields.length === 1 ? "" : "s"}; Baton schedules use five: minute hour day-of-month month day-of-week, e.g. "0 9 * * 1"`,
        );
      } else {
        const reason = cronProblem(entry.cron);
        if (reason !== undefined) {
          this.error(
            [...path, "cron"],
            `\`cron\` is not a valid cron expression (${reason}); the fields are minute hour day-of-month month day-of-week`,
          );
        }
      }
      if (!isTimeZone(entry.timezone)) {
        this.error(
          [...path, "timezone"],
          `unknown time zone ${JSON.stringify(entry.timezone)}; use an IANA name such as "Europe/Oslo", "America/New_York" or "UTC"`,
        );
      }
    });
    for (const [name, input] of Object.entries(on?.manual?.inputs ?? {})) {
      const path = ["on", "manual", "inputs", name];
      if (input.type === "choice" && input.options === undefined) {
        this.error(
          path,
          `choice input \`${name}\` needs \`options\`: the values a run may choose from`,
          "key",
        );
      }
      if (input.type !== "choice" && input.options !== undefined) {
        this.error(
          [...path, "options"],
          `\`options\` applies only to \`type: choice\`; input \`${name}\` is a ${input.type}`,
          "key",
        );
      }
      if (input.default !== undefined) {
        const fault = defaultFault(input.type, input.default, input.options);
        if (fault) this.error([...path, "default"], `the default of input \`${name}\` ${fault}`);
        if (input.required) {
          this.warning(
            [...path, "required"],
            `input \`${name}\` has a default, so \`required: true\` has no effect; remove one of them`,
            "key",
          );
        }
      }
    }
  }

  // Steps ---------------------------------------------------------------------------------

  private checkStep(id: string, step: StepDefinition): void {
    const path = ["steps", id];
    const kinds = STEP_KINDS.filter((kind) => step[kind] !== undefined);
    const kind = kinds[0];
    if (kind === undefined) {
      this.error(
        path,
        `step \`${id}\` has no kind: give it exactly one of ${STEP_KINDS.join(", ")}`,
        "key",
      );
      return;
    }
    if (kinds.length > 1) {
      const names = kinds.map((name) => `\`${name}\``).join(" and ");
      this.error(
        path,
        `step \`${id}\` has ${names}: a step does exactly one thing; split it into steps joined by \`needs\``,
        "key",
      );
      return;
    }
    for (const [key, rule] of Object.entries(KIND_KEYS)) {
      if (step[key as keyof StepDefinition] !== undefined && !rule.kinds.includes(kind)) {
        this.error(
          [...path, key],
          `\`${key}\` does not apply to ${article(kind)} step (${rule.hint})`,
          "key",
        );
      }
    }
    for (const [key, reason] of Object.entries(NOT_FOR_KIND[kind] ?? {})) {
      if (step[key as keyof StepDefinition] !== undefined) {
        this.error(
          [...path, key],
          `\`${key}\` does not apply to ${article(kind)} step: ${reason}`,
          "key",
        );
      }
    }
    if (step.compensate !== undefined && (kind === "approval" || kind === "wait")) {
      this.warning(
        [...path, "compensate"],
        `${article(kind)} step has no side effect to undo; move \`compensate\` to the step whose effect it undoes`,
        "key",
      );
    }
    this.checkDuration([...path, "timeout"], step.timeout, DURATION_RANGES.stepTimeout);
    this.checkRetry(path, step);
    this.checkCompensation([...path, "compensate"], step);

    if (kind === "workflow") {
      const workflow = step.workflow ?? "";
      if (!workflow.includes("${{") && !WORKFLOW_PATTERN.test(workflow)) {
        this.error(
          [...path, "workflow"],
          `\`workflow\` must name a workflow file, e.g. "build.yml" (in .github/workflows/) or "owner/repo/.github/workflows/build.yml"`,
        );
      }
      const inputs = Object.keys(step.with ?? {}).length;
      if (inputs > NUMBER_RANGES.workflowInputs.max) {
        this.error(
          [...path, "with"],
          `a workflow step passes at most ${NUMBER_RANGES.workflowInputs.max} inputs (GitHub's workflow_dispatch limit), this one passes ${inputs}; pass a JSON string in one input instead`,
          "key",
        );
      }
    } else if (kind === "approval" && step.approval)
      this.checkApproval([...path, "approval"], step.approval);
    else if (kind === "wait" && step.wait) this.checkWait([...path, "wait"], step.wait);
    else if (kind === "github" && step.github)
      this.checkGithubRequest([...path, "github"], step.github);
    else if (kind === "flow" && step.flow === this.options.flowName) {
      this.error(
        [...path, "flow"],
        `step \`${id}\` calls its own flow \`${step.flow}\`: a flow cannot be its own sub-flow`,
      );
    }
  }

  private checkDuration(path: DocumentPath, value: string | undefined, range: DurationRange): void {
    if (value === undefined) return;
    const ms = parseDuration(value);
    if (ms === undefined) return; // the schema reported it
    if (ms < range.min || ms > range.max) {
      this.error(
        path,
        `${range.what} must be between ${formatDuration(range.min)} and ${formatDuration(range.max)}, not ${value}`,
      );
    }
  }

  private checkRetry(path: DocumentPath, step: StepDefinition): void {
    // Attempts and backoff are bounded in the schema, so editors see those ranges too.
    const retry = step.retry;
    if (retry === undefined || typeof retry === "number") return;
    this.checkDuration([...path, "retry", "delay"], retry.delay, DURATION_RANGES.retryDelay);
    this.checkDuration(
      [...path, "retry", "max-delay"],
      retry["max-delay"],
      DURATION_RANGES.retryMaxDelay,
    );
  }

  private checkCompensation(path: DocumentPath, step: StepDefinition): void {
    const compensate = step.compensate;
    if (compensate === undefined || typeof compensate === "string") return;
    const actions = (["run", "workflow", "github"] as const).filter(
      (key) => compensate[key] !== undefined,
    );
    if (actions.length !== 1) {
      this.error(
        path,
        `\`compensate\` needs exactly one of run, workflow or github${actions.length > 1 ? `, not ${actions.join(" and ")}` : ""}`,
        "key",
      );
      return;
    }
    const action = actions[0];
    if (compensate["runs-on"] !== undefined && action !== "run") {
      this.error(
        [...path, "runs-on"],
        "`runs-on` in `compensate` applies only to a `run` command",
        "key",
      );
    }
    if (compensate.with !== undefined && action !== "workflow") {
      this.error([...path, "with"], "`with` in `compensate` applies only to a `workflow`", "key");
    }
    if (compensate.env !== undefined && action !== "run") {
      this.error([...path, "env"], "`env` in `compensate` applies only to a `run` command", "key");
    }
    if (compensate.github) this.checkGithubRequest([...path, "github"], compensate.github);
  }

  private checkApproval(
    path: DocumentPath,
    approval: NonNullable<StepDefinition["approval"]>,
  ): void {
    const { users, teams, codeowners, paths } = approval.approvers;
    if (
      users !== undefined &&
      teams === undefined &&
      codeowners !== true &&
      approval.required > new Set(users).size
    ) {
      this.error(
        [...path, "required"],
        `${approval.required} approvals are required but only ${new Set(users).size} user${new Set(users).size === 1 ? " is" : "s are"} allowed to approve; lower \`required\` or add approvers`,
      );
    }
    if (paths !== undefined && codeowners !== true) {
      this.error(
        [...path, "approvers", "paths"],
        "`paths` chooses whose code ownership counts, so it needs `codeowners: true`",
        "key",
      );
    }
    this.checkDuration([...path, "timeout"], approval.timeout, DURATION_RANGES.approvalTimeout);
    this.checkDuration([...path, "reminder"], approval.reminder, DURATION_RANGES.approvalReminder);
    if (approval.reminder !== undefined) {
      const reminder = parseDuration(approval.reminder);
      const timeout = approval.timeout === undefined ? undefined : parseDuration(approval.timeout);
      if (approval.timeout === undefined) {
        this.error(
          [...path, "reminder"],
          "`reminder` is sent that long before the timeout, so it needs a `timeout`",
          "key",
        );
      } else if (reminder !== undefined && timeout !== undefined && reminder >= timeout) {
        this.error(
          [...path, "reminder"],
          `the reminder (${approval.reminder} before the timeout) must be shorter than the timeout (${approval.timeout})`,
        );
      }
    }
  }

  private checkWait(path: DocumentPath, wait: NonNullable<StepDefinition["wait"]>): void {
    const modes = (["signal", "for", "until"] as const).filter((key) => wait[key] !== undefined);
    if (modes.length !== 1) {
      const found = modes.length === 0 ? "none" : modes.map((mode) => `\`${mode}\``).join(" and ");
      this.error(
        path,
        `\`wait\` needs exactly one of \`signal\`, \`for\` or \`until\`, not ${found}`,
        "key",
      );
      return;
    }
    if (wait.timeout !== undefined && wait.signal === undefined) {
      this.error(
        [...path, "timeout"],
        "a wait `timeout` applies only to `signal`: a wait for a time or until a moment ends by itself",
        "key",
      );
    }
    this.checkDuration([...path, "for"], wait.for, DURATION_RANGES.waitFor);
    this.checkDuration([...path, "timeout"], wait.timeout, DURATION_RANGES.waitTimeout);
    if (wait.until !== undefined && !wait.until.includes("${{")) {
      if (!TIMESTAMP_PATTERN.test(wait.until) || Number.isNaN(Date.parse(wait.until))) {
        this.error(
          [...path, "until"],
          `\`until\` must be an ISO 8601 timestamp with a time zone, e.g. "2026-12-24T09:00:00Z", or an expression`,
        );
      }
    }
    if (
      wait.signal !== undefined &&
      !wait.signal.includes("${{") &&
      !/^[A-Za-z0-9_.-]+$/.test(wait.signal)
    ) {
      this.error(
        [...path, "signal"],
        "a signal name may contain only letters, digits, `_`, `-` and `.`",
      );
    }
  }

  private checkGithubRequest(
    base: DocumentPath,
    github: { request: string; with?: Record<string, unknown> | undefined },
  ): void {
    const path = [...base, "request"];
    const parsed = parseGithubRoute(github.request);
    if ("error" in parsed) {
      this.error(path, parsed.error);
      return;
    }
    for (const name of ["owner", "repo"]) {
      if (github.with?.[name] !== undefined)
        this.error(
          [...base, "with", name],
          `\`${name}\` is the run's repository and cannot be given in \`with\`: a github step calls its own repository only`,
          "key",
        );
    }
    // `{owner}` and `{repo}` are the run's; every other path parameter comes from `with`.
    for (const name of parsed.route.params) {
      const value = github.with?.[name];
      if (value === undefined) {
        this.findings.push({
          severity: "error",
          path,
          offset: github.request.indexOf(`{${name}}`),
          length: name.length + 2,
          message: `the path parameter \`{${name}}\` needs a value: add \`${name}\` under \`github.with\``,
        });
      } else if (value === "" || value === "." || value === ".." || typeof value === "object") {
        this.error(
          [...base, "with", name],
          `the path parameter \`{${name}}\` must be one segment's value (a string other than "", "." and "..", or a number), not ${JSON.stringify(value)}`,
        );
      }
    }
  }

  /** `permissions`: Actions' scope names, each with a GitHub App permission. */
  private checkTokenPermissions(): void {
    const permissions = this.flow.permissions;
    if (permissions === undefined || typeof permissions === "string") return;
    const scopes = Object.keys(PERMISSION_SCOPES);
    for (const scope of Object.keys(permissions)) {
      if (scope in PERMISSION_SCOPES) continue;
      const why = SCOPES_WITHOUT_APP_PERMISSION[scope];
      this.error(
        ["permissions", scope],
        why !== undefined
          ? `${why}; remove it from \`permissions\``
          : `\`${scope}\` is not a permission of GitHub Actions' \`permissions\` that a GitHub App token can have${didYouMean(scope, scopes) || `; the scopes are ${scopes.join(", ")}`}`,
        "key",
      );
    }
  }

  // Graph ---------------------------------------------------------------------------------

  private checkNeeds(): void {
    for (const [id, needs] of this.needs) {
      for (const need of needs) {
        if (need.id === id)
          this.error(need.path, `step \`${id}\` needs itself; remove \`${id}\` from its \`needs\``);
        else if (!(need.id in this.flow.steps)) {
          this.error(
            need.path,
            `step \`${id}\` needs \`${need.id}\`, which is not a step of this flow${didYouMean(
              need.id,
              this.stepIds.filter((other) => other !== id),
            )}`,
          );
        }
      }
    }
  }

  private checkCycles(): void {
    const state = new Map<string, "active" | "done">();
    const stack: string[] = [];
    const reported = new Set<string>();
    const visit = (id: string): void => {
      state.set(id, "active");
      stack.push(id);
      for (const need of this.needs.get(id) ?? []) {
        if (need.id === id || !(need.id in this.flow.steps)) continue;
        const seen = state.get(need.id);
        if (seen === "active") {
          const cycle = stack.slice(stack.indexOf(need.id));
          // Name the cycle from its smallest id, so one cycle is reported once, the same way.
          const start = cycle.indexOf([...cycle].sort()[0] ?? id);
          const ordered = [...cycle.slice(start), ...cycle.slice(0, start)];
          const key = ordered.join(" ");
          if (!reported.has(key)) {
            reported.add(key);
            const first = ordered[0] ?? id;
            const next = ordered[1] ?? first;
            const at = this.needs.get(first)?.find((entry) => entry.id === next)?.path ?? need.path;
            this.error(
              at,
              `the steps' \`needs\` form a cycle: ${[...ordered, first].join(" → ")}; remove one of these needs`,
            );
          }
        } else if (seen === undefined) visit(need.id);
      }
      stack.pop();
      state.set(id, "done");
    };
    for (const id of this.stepIds) if (!state.has(id)) visit(id);
  }

  /** Every step a step waits for, directly or not (cycles tolerated). */
  private ancestorsOf(id: string): Set<string> {
    const cached = this.ancestors.get(id);
    if (cached) return cached;
    const found = new Set<string>();
    const pending = [id];
    while (pending.length > 0) {
      const current = pending.pop() ?? "";
      for (const need of this.needs.get(current) ?? []) {
        if (!found.has(need.id)) {
          found.add(need.id);
          pending.push(need.id);
        }
      }
    }
    this.ancestors.set(id, found);
    return found;
  }

  private checkReachability(): void {
    const never = new Map<string, string | null>(); // id → why it never runs, or null
    const reason = (id: string, trail: Set<string>): string | null => {
      if (never.has(id)) return never.get(id) ?? null;
      if (trail.has(id)) return null;
      trail.add(id);
      const step = this.flow.steps[id];
      let why: string | null = null;
      if (step && isAlwaysFalse(step.if)) why = "its `if` is always false";
      else if (step && !conditionHasStatusFunction(step.if)) {
        for (const need of this.needs.get(id) ?? []) {
          if (need.id !== id && need.id in this.flow.steps && reason(need.id, trail) !== null) {
            why = `it needs \`${need.id}\`, which never runs`;
            break;
          }
        }
      }
      never.set(id, why);
      return why;
    };
    for (const id of this.stepIds) {
      const why = reason(id, new Set());
      if (why === null) continue;
      const step = this.flow.steps[id];
      if (step && isAlwaysFalse(step.if))
        this.warning(["steps", id, "if"], `step \`${id}\` never runs: ${why}`);
      else {
        this.warning(
          ["steps", id],
          `step \`${id}\` never runs: ${why}; add \`if: \${{ always() }}\` to run it anyway, or remove the need`,
          "key",
        );
      }
    }
  }

  // Script quoting ------------------------------------------------------------------------

  /**
   * The n-th `${{ }}` of a `run` or `compensate` script reaches the script as
   * `${BATON_EXPR_<n>}` (a value never becomes syntax): warn where that reference cannot
   * expand (single quotes, `$'…'`, a here-document with a quoted delimiter), and where a
   * flow's own variable takes one of those names.
   */
  private checkScriptQuoting(): void {
    for (const [id, step] of Object.entries(this.flow.steps)) {
      if (typeof step.run === "string") this.checkScript(step.run, ["steps", id, "run"]);
      const compensate = step.compensate;
      if (typeof compensate === "string") this.checkScript(compensate, ["steps", id, "compensate"]);
      else if (typeof compensate?.run === "string")
        this.checkScript(compensate.run, ["steps", id, "compensate", "run"]);
      const named: [Record<string, unknown> | undefined, DocumentPath][] = [
        [step.env, ["steps", id, "env"]],
        [step.with, ["steps", id, "with"]],
        [
          typeof compensate === "object" ? compensate.env : undefined,
          ["steps", id, "compensate", "env"],
        ],
      ];
      for (const [map, path] of named) this.checkReservedNames(map, path);
    }
    this.checkReservedNames(this.flow.env, ["env"]);
  }

  private checkScript(script: string, path: DocumentPath): void {
    let parts;
    try {
      parts = splitTemplate(script);
    } catch {
      return; // an unterminated `${{` is an error of checkExpressions
    }
    const expressions = parts.filter((part) => part.kind === "expression");
    if (expressions.length === 0) return;
    const contexts = holeContexts(parts.map((part) => (part.kind === "text" ? part.value : null)));
    expressions.forEach((part, index) => {
      const context = contexts[index];
      if (!context) return;
      const written = `\${{${part.source}}}`;
      const passed = `its value reaches the script as \`${scriptReference(index + 1)}\``;
      let message: string | undefined;
      if (context.kind === "single") {
        message = `\`${written}\` is inside single quotes, where ${passed} and is not expanded; use double quotes: "${written}"`;
      } else if (context.kind === "ansi-c") {
        message = `\`${written}\` is inside $'…', where ${passed} and is not expanded; close the $'…' and put it in double quotes: "${written}"`;
      } else if (context.kind === "quoted-heredoc") {
        message = `\`${written}\` is in a here-document whose delimiter ${context.delimiter} is quoted, where ${passed} and is not expanded; unquote the delimiter (<<${context.delimiter}): the value still arrives as data`;
      }
      if (message !== undefined) this.at(path, part.offset - 3, written.length, message, "warning");
    });
  }

  private checkReservedNames(map: Record<string, unknown> | undefined, path: DocumentPath): void {
    for (const name of Object.keys(map ?? {})) {
      if (!SCRIPT_VARIABLE_PATTERN.test(name)) continue;
      const n = Number(name.replace(/^BATON_EXPR_/, ""));
      this.warning(
        [...path, name],
        `\`${name}\` is the variable that carries the value of a script's ${ordinal(n)} \`\${{ }}\`, which wins over this one in a script that has one; rename it`,
        "key",
      );
    }
  }

  // Expressions ---------------------------------------------------------------------------

  private checkExpressions(): void {
    const flow = this.flow;
    const fixed = ["$schema", "name", "description", "on", "timeout"] as const;
    for (const key of fixed) {
      this.walkStrings(flow[key], [key], (value, path) => {
        const at = value.indexOf("${{");
        if (at !== -1) {
          this.findings.push({
            severity: "error",
            path,
            offset: at,
            length: 3,
            message: `expressions are not expanded in \`${key}\`: ${key === "on" ? "triggers are read before any run exists" : "it is fixed text"}`,
          });
        }
      });
    }
    const atStart: Scope = { contexts: ["inputs", "trigger", "run"] };
    this.walkStrings(flow.env, ["env"], (value, path) => this.checkTemplate(value, path, atStart));
    this.walkStrings(flow.concurrency, ["concurrency"], (value, path) =>
      this.checkTemplate(value, path, atStart),
    );
    const everything: Scope = { contexts: ["inputs", "steps", "trigger", "run", "env"] };
    this.walkStrings(flow.outputs, ["outputs"], (value, path) =>
      this.checkTemplate(value, path, everything),
    );
    for (const [id, step] of Object.entries(flow.steps)) {
      for (const [key, value] of Object.entries(step)) {
        const path = ["steps", id, key];
        if (key === "if" && typeof value === "string") {
          this.checkCondition(value, path, { ...everything, step: id, condition: true });
        } else if (key === "needs" || key === "outputs") {
          this.walkStrings(value, path, (text, at) => {
            if (text.includes("${{"))
              this.error(
                at,
                `expressions are not expanded in \`${key}\`: the graph is fixed when the flow is saved`,
              );
          });
        } else if (key === "runs-on" || key === "working-directory") {
          this.fixedPlace(value, path, key);
        } else {
          // A compensation's runner is fixed text too: a value never chooses where code runs.
          if (key === "compensate" && value !== null && typeof value === "object") {
            const runsOn = (value as Record<string, unknown>)["runs-on"];
            if (runsOn !== undefined) this.fixedPlace(runsOn, [...path, "runs-on"], "runs-on");
          }
          const scope: Scope = {
            ...everything,
            step: id,
            ...(key === "compensate" ? { self: true } : {}),
          };
          this.walkStrings(value, path, (text, at) => this.checkTemplate(text, at, scope));
        }
      }
    }
  }

  /** `runs-on` and `working-directory` are read as written: a value never picks a runner or a directory. */
  private fixedPlace(value: unknown, path: DocumentPath, key: string): void {
    this.walkStrings(value, path, (text, at) => {
      if (text.includes("${{"))
        this.error(
          at,
          `expressions are not expanded in \`${key}\`: where a step runs is fixed text, so that no value chooses it; name the runner or directory itself`,
        );
    });
  }

  private walkStrings(
    value: unknown,
    path: DocumentPath,
    visit: (value: string, path: DocumentPath) => void,
  ): void {
    if (typeof value === "string") visit(value, path);
    else if (Array.isArray(value))
      value.forEach((item, index) => this.walkStrings(item, [...path, index], visit));
    else if (value !== null && typeof value === "object") {
      for (const [key, item] of Object.entries(value))
        this.walkStrings(item, [...path, key], visit);
    }
  }

  private checkCondition(value: string, path: DocumentPath, scope: Scope): void {
    const { source, offset } = conditionSource(value);
    if (source.includes("${{")) {
      // `if: ${{ a }} && ${{ b }}` mixes the forms: check each part as a template.
      this.checkTemplate(value, path, scope);
      return;
    }
    this.checkExpression(source, offset, path, scope);
  }

  private checkTemplate(value: string, path: DocumentPath, scope: Scope): void {
    let parts;
    try {
      parts = splitTemplate(value);
    } catch (error: unknown) {
      if (error instanceof TemplateError) {
        this.findings.push({
          severity: "error",
          path,
          offset: error.offset,
          length: 3,
          message: `${error.message}; close it with \`}}\``,
        });
        return;
      }
      throw error;
    }
    for (const part of parts) {
      if (part.kind === "expression") this.checkExpression(part.source, part.offset, path, scope);
    }
  }

  private at(
    path: DocumentPath,
    offset: number,
    length: number,
    message: string,
    severity: Severity = "error",
  ): void {
    this.findings.push({ severity, path, offset, length, message });
  }

  private checkExpression(source: string, offset: number, path: DocumentPath, scope: Scope): void {
    let expr: Expr;
    try {
      expr = parseExpression(source);
    } catch (error: unknown) {
      if (!(error instanceof ExpressionSyntaxError)) throw error;
      const lead = source.length - source.trimStart().length;
      const named = /^Unrecognized named-value: '([^']*)'/.exec(error.message);
      const fn = /^Unrecognized function: '([^']*)'/.exec(error.message);
      if (named) {
        const name = named[1] ?? "";
        const column = source.indexOf(name, error.column);
        const message =
          FOREIGN_CONTEXTS[name.toLowerCase()] ??
          `unknown context \`${name}\`; Baton's contexts are inputs, steps, trigger, run and env`;
        this.at(path, offset + Math.max(column, 0), name.length, message);
      } else if (fn) {
        const name = fn[1] ?? "";
        const column = source.indexOf(name, error.column);
        this.at(path, offset + Math.max(column, 0), name.length, `unknown function \`${name}()\``);
      } else {
        const message = error.message.replace(/\.$/, "");
        this.at(
          path,
          offset + Math.max(error.column, lead),
          1,
          `invalid expression: ${message.charAt(0).toLowerCase()}${message.slice(1)}`,
        );
      }
      return;
    }
    if (!scope.condition) {
      const status = calledFunctions(expr).find((name) =>
        (STATUS_FUNCTIONS as readonly string[]).includes(name),
      );
      if (status) {
        const column = source.toLowerCase().indexOf(status);
        this.at(
          path,
          offset + Math.max(column, 0),
          status.length,
          `\`${status}()\` is a status function and works only in a step's \`if\``,
        );
      }
    }
    for (const reference of contextReferences(expr)) {
      this.checkReference(reference.path, offset + reference.column, path, scope);
    }
  }

  private checkReference(
    segments: string[],
    offset: number,
    path: DocumentPath,
    scope: Scope,
  ): void {
    const [context = "", first, second, third] = segments;
    const length = segments.join(".").length;
    const report = (message: string): void => this.at(path, offset, length, message);
    if (!scope.contexts.includes(context.toLowerCase())) {
      const where = formatPath(path.slice(0, 1));
      report(
        `\`${context}\` is not available in \`${where}\`, which is evaluated when the run starts; use ${scope.contexts.join(", ")}`,
      );
      return;
    }
    switch (context.toLowerCase()) {
      case "inputs":
        if (first !== undefined && !this.inputNames.includes(first)) {
          report(
            `unknown input \`${first}\`; declare it under \`on.manual.inputs\`${didYouMean(first, this.inputNames)}`,
          );
        }
        return;
      case "run":
        if (first !== undefined && !(RUN_PROPERTIES as readonly string[]).includes(first)) {
          report(
            `\`run.${first}\` does not exist; the run context has ${RUN_PROPERTIES.join(", ")}`,
          );
        }
        return;
      case "trigger":
        if (first !== undefined && !(TRIGGER_PROPERTIES as readonly string[]).includes(first)) {
          report(
            `\`trigger.${first}\` does not exist; use trigger.event (the event's name) or trigger.payload (its body)`,
          );
        }
        return;
      case "steps":
        if (first === undefined) return;
        this.checkStepReference(first, second, third, path, scope, report);
        return;
      case "env":
        if (first !== undefined && !this.envNames(scope).includes(first)) {
          report(
            `\`env.${first}\` is not set here: \`\${{ env.X }}\` reads the flow's and the step's \`env\`; declare it there (the runner machine's variables are \`$${first}\` in the command itself)`,
          );
        }
        return;
      default:
        return;
    }
  }

  /** What `${{ env.X }}` can read: the flow's env, and the step's env (and `with`, for run and agent steps). */
  private envNames(scope: Scope): string[] {
    const names = Object.keys(this.flow.env ?? {});
    const step = scope.step === undefined ? undefined : this.flow.steps[scope.step];
    if (step) {
      names.push(...Object.keys(step.env ?? {}));
      if (step.run !== undefined || step.agent !== undefined)
        names.push(...Object.keys(step.with ?? {}));
      if (typeof step.compensate === "object")
        names.push(...Object.keys(step.compensate.env ?? {}));
    }
    return names;
  }

  private checkStepReference(
    id: string,
    property: string | undefined,
    output: string | undefined,
    path: DocumentPath,
    scope: Scope,
    report: (message: string) => void,
  ): void {
    const step = this.flow.steps[id];
    if (!step) {
      report(`unknown step \`${id}\`${didYouMean(id, this.stepIds)}`);
      return;
    }
    if (scope.step !== undefined) {
      if (id === scope.step && !scope.self) {
        report(
          `step \`${id}\` cannot read its own \`steps.${id}\`: it is not finished yet (only its \`compensate\` may)`,
        );
        return;
      }
      if (id !== scope.step && !this.ancestorsOf(scope.step).has(id)) {
        report(
          `step \`${scope.step}\` reads \`steps.${id}\` but does not need \`${id}\`; add \`${id}\` to its \`needs\` so it runs after \`${id}\``,
        );
        return;
      }
    }
    if (property === undefined) return;
    if (!(STEP_PROPERTIES as readonly string[]).includes(property)) {
      report(
        `\`steps.${id}.${property}\` does not exist; use \`steps.${id}.outputs.<name>\` or \`steps.${id}.result\``,
      );
      return;
    }
    if (property !== "outputs" || output === undefined) return;
    const known = knownOutputs(step);
    if (known && !known.includes(output)) {
      if (known.length === 0) {
        const why = step.wait
          ? " (a wait for a time or until a moment has none; a `signal` wait has payload and signal)"
          : "";
        report(`step \`${id}\` produces no outputs${why}, so \`${output}\` does not exist`);
        return;
      }
      const suggestion = didYouMean(output, known);
      const fix =
        suggestion === "" && step.outputs !== undefined
          ? `; add \`${output}\` to its \`outputs\` if it sets one`
          : "";
      report(
        `step \`${id}\` has the outputs ${known.join(", ")}, not \`${output}\`${suggestion}${fix}`,
      );
    }
  }
}

/** The outputs a step is known to produce, or undefined when they cannot be known here. */
export function knownOutputs(step: StepDefinition): readonly string[] | undefined {
  if (step.approval) return FIXED_OUTPUTS.approval;
  if (step.wait) return step.wait.signal !== undefined ? FIXED_OUTPUTS.waitSignal : [];
  if (step.github) return FIXED_OUTPUTS.github;
  return step.outputs;
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? "th" : (["th", "st", "nd", "rd"][n % 10] ?? "th");
  return `${n}${suffix}`;
}

function article(kind: string): string {
  return /^[aeiou]/.test(kind) ? `an ${kind}` : `a ${kind}`;
}

// Building an Intl formatter or a cron parser costs far more than the rest of a check, and
// flows repeat the same few zones and schedules: remember the answers (bounded, to keep a
// long-running app from growing without end).
const MEMO_LIMIT = 1000;
const timeZones = new Map<string, boolean>();
const cronProblems = new Map<string, string | undefined>();

function remember<V>(memo: Map<string, V>, key: string, compute: () => V): V {
  if (memo.has(key)) return memo.get(key) as V;
  const value = compute();
  if (memo.size >= MEMO_LIMIT) memo.clear();
  memo.set(key, value);
  return value;
}

function isTimeZone(zone: string): boolean {
  return remember(timeZones, zone, () => {
    try {
      new Intl.DateTimeFormat("en", { timeZone: zone });
      return true;
    } catch {
      return false;
    }
  });
}

/** Why a five-field cron expression is invalid, or undefined if it is valid. */
function cronProblem(cron: string): string | undefined {
  return remember(cronProblems, cron, () => {
    try {
      CronExpressionParser.parse(cron, { tz: "UTC" });
      return undefined;
    } catch (error: unknown) {
      return error instanceof Error ? error.message : String(error);
    }
  });
}

/** Why a default does not fit its input, or undefined if it does. */
function defaultFault(
  type: string,
  value: string | number | boolean,
  options: string[] | undefined,
): string | undefined {
  switch (type) {
    case "string":
      return typeof value === "string"
        ? undefined
        : `is ${typeof value === "number" ? "the number" : ""} ${String(value)}, but the input is a string; quote it: "${String(value)}"`.replace(
            "is  ",
            "is ",
          );
    case "number":
      return typeof value === "number"
        ? undefined
        : `must be a number, not ${JSON.stringify(value)}`;
    case "boolean":
      return typeof value === "boolean"
        ? undefined
        : `must be true or false, not ${JSON.stringify(value)}`;
    case "choice":
      if (options === undefined) return undefined;
      return options.includes(String(value))
        ? undefined
        : `must be one of the options (${options.join(", ")}), not ${JSON.stringify(value)}`;
    default:
      return undefined;
  }
}

function isAlwaysFalse(condition: string | boolean | undefined): boolean {
  if (condition === false) return true;
  if (typeof condition !== "string") return false;
  return conditionSource(condition).source.trim() === "false";
}

function conditionHasStatusFunction(condition: string | boolean | undefined): boolean {
  if (typeof condition !== "string") return false;
  try {
    const { source } = conditionSource(condition);
    if (source.includes("${{")) return /\b(always|failure|cancelled|success)\s*\(/i.test(source);
    return usesStatusFunction(parseExpression(source));
  } catch {
    return false; // reported by the expression checks
  }
}
