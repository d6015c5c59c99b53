/**
 * The flow format, as code: the single source of truth for `.github/flows/*.yml`.
 *
 * Everything else derives from this file: the TypeScript types (`FlowDefinition`), the
 * JSON Schema for editors (`flow.schema.json`, generated), and the format reference
 * (`README.md`, generated from the `.describe()` texts). Checks that need more than one
 * field at a time (graph, expressions, cron, ranges) live in `check-semantics.ts`, so the
 * schema stays declarative and the JSON Schema stays faithful.
 *
 * Step kinds are not a zod union: a union reports "no variant matched" at the step, where
 * a user wants "unknown key `runs_on` at line 12". Instead a step is one object with every
 * kind's key optional, and the semantic checks insist on exactly one kind and on keys that
 * fit it.
 */
import { z } from "zod";

/** `30s`, `10m`, `2h`, `2d`, or a sum such as `1h30m`. Ranges are checked per field. */
export const DURATION_PATTERN = /^(?:\d+(?:ms|s|m|h|d))+$/;

export const duration = z
  .string()
  .regex(DURATION_PATTERN, {
    message: 'must be a duration such as "30s", "10m", "2h", "2d" or "1h30m"',
  })
  .describe('A duration: a number and a unit (ms, s, m, h, d), or a sum such as "1h30m".');

/** Step ids, input names and output names: like job ids in GitHub Actions. */
export const IDENTIFIER_PATTERN = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const identifier = (what: string) =>
  z.string().regex(IDENTIFIER_PATTERN, {
    message: `${what} must start with a letter or _ and contain only letters, digits, _ and -`,
  });

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const scalarMap = (description: string) => z.record(z.string(), scalar).describe(description);

export const inputDefinition = z
  .strictObject({
    type: z
      .enum(["string", "number", "boolean", "choice"])
      .default("string")
      .describe("The input's type; values are checked against it when a run starts."),
    required: z
      .boolean()
      .default(false)
      .describe("Whether a run must be given this input (unless it has a default)."),
    default: scalar.optional().describe("The value used when a run is not given this input."),
    description: z.string().optional().describe("Shown in help, in the CLI and on GitHub."),
    options: z
      .array(z.string())
      .min(1)
      .optional()
      .describe("The allowed values of a `choice` input."),
  })
  .describe("One input of the flow.");

export const manualTrigger = z
  .strictObject({
    inputs: z
      .record(identifier("An input name"), inputDefinition)
      .default({})
      .describe(
        "The flow's inputs, available as `${{ inputs.<name> }}`. They apply to every start: " +
          "manual, a parent flow's `flow` step, and the defaults for other triggers.",
      ),
  })
  .describe(
    "Start the flow by hand: `baton run`, the API, a `/baton run <flow> k=v` comment, or the Baton action.",
  );

export const scheduleEntry = z
  .strictObject({
    cron: z
      .string()
      .describe('A five-field cron expression (minute hour day month weekday), e.g. "0 9 * * 1".'),
    timezone: z
      .string()
      .default("UTC")
      .describe('An IANA time zone such as "Europe/Oslo". (Default: UTC)'),
    "catch-up": z
      .enum(["latest", "none", "all"])
      .optional()
      .describe(
        "Ticks missed while no app process ran: `latest` starts one run for the latest missed " +
          "tick, `none` skips them (a tick more than 5 minutes late is missed), `all` starts one " +
          "run per missed tick, oldest first, at most the latest 100. (Default: latest)",
      ),
  })
  .describe("One schedule. Each tick starts exactly one run, however many app processes run.");

export const webhookTrigger = z
  .strictObject({})
  .describe(
    "Start the flow with `POST /api/flows/{owner}/{repo}/{flow}/webhook`, signed with HMAC-SHA256 " +
      "using the flow's webhook secret. The request body is `${{ trigger.payload }}`.",
  );

export const githubEventFilter = z
  .strictObject({
    types: z
      .array(z.string())
      .min(1)
      .optional()
      .describe('Activity types (the payload\'s `action`), e.g. ["opened", "synchronize"].'),
    branches: z
      .array(z.string())
      .min(1)
      .optional()
      .describe("Branch name globs the event's branch must match."),
    "branches-ignore": z
      .array(z.string())
      .min(1)
      .optional()
      .describe("Branch name globs that exclude the event."),
    paths: z
      .array(z.string())
      .min(1)
      .optional()
      .describe("File path globs at least one changed file must match."),
    "paths-ignore": z
      .array(z.string())
      .min(1)
      .optional()
      .describe("File path globs that, when they match every changed file, exclude the event."),
    labels: z
      .array(z.string())
      .min(1)
      .optional()
      .describe("Label names; the event's issue or pull request must carry one of them."),
  })
  .describe("Filters for one GitHub event. With no filters every event of that name starts a run.");

export const triggers = z
  .strictObject({
    manual: manualTrigger
      .nullable()
      .optional()
      .describe(
        "Start the flow by hand: `baton run`, the API, a `/baton run <flow> k=v` comment, or the Baton action. `manual: {}` or `manual:` with no inputs.",
      ),
    schedule: z
      .array(scheduleEntry)
      .min(1)
      .optional()
      .describe("Cron schedules, each with an optional time zone."),
    webhook: webhookTrigger
      .nullable()
      .optional()
      .describe(
        "Start the flow with `POST /api/flows/{owner}/{repo}/{flow}/webhook`, HMAC-signed; the body is `${{ trigger.payload }}`.",
      ),
    github: z
      .record(z.string(), githubEventFilter.nullable())
      .optional()
      .describe(
        "GitHub webhook events (as named in GitHub's docs, e.g. `pull_request`, `issues`, " +
          "`push`) that start the flow, each with optional filters.",
      ),
  })
  .describe("What starts the flow. Only the live version (default branch) listens to triggers.");

export const concurrencyMode = z
  .enum(["queue", "cancel-in-progress", "reject"])
  .describe(
    "What happens when a run starts while another run of the same group is active: `queue` " +
      "waits its turn, `cancel-in-progress` cancels the active run, `reject` refuses the new run.",
  );

export const concurrency = z
  .union([
    z.string(),
    z.strictObject({
      group: z
        .string()
        .describe(
          "The group key; may use `${{ inputs.* }}`, `${{ trigger.* }}` and `${{ run.* }}`.",
        ),
      mode: concurrencyMode.default("queue"),
    }),
  ])
  .describe("At most one active run per group. A string is a group with mode `queue`.");

export const retry = z
  .union([
    z
      .number()
      .int()
      .min(1)
      .max(100)
      .describe("The number of attempts (1 to 100), with the default delay and backoff."),
    z.strictObject({
      attempts: z
        .number()
        .int()
        .min(1)
        .max(100)
        .describe("How many attempts in all, the first included (1 to 100)."),
      delay: duration.default("10s").describe("The wait before the second attempt. (Default: 10s)"),
      backoff: z
        .number()
        .min(1)
        .max(10)
        .default(2)
        .describe(
          "Each further wait is the previous one times this factor (1 to 10). (Default: 2)",
        ),
      "max-delay": duration
        .optional()
        .describe("No wait between attempts is longer than this. (Default: 1h)"),
    }),
  ])
  .describe("Retry a failed or timed-out step.");

export const runsOn = z
  .union([
    z.string(),
    z.array(z.string()).min(1),
    z.strictObject({
      ssh: z
        .string()
        .describe(
          "The name of an SSH host defined in the runner's configuration. Flows name hosts, never credentials.",
        ),
      labels: z.array(z.string()).optional().describe("Labels the runner must have as well."),
    }),
  ])
  .describe(
    "Where a `run` or `agent` step runs: labels a self-hosted Baton runner must all have, or an SSH host. " +
      "(Default: [self-hosted]; in local mode, the machine running `baton`.)",
  );

export const agentSpec = z
  .strictObject({
    prompt: z.string().describe("What the coding agent is asked to do. Expressions are expanded."),
    use: z
      .string()
      .optional()
      .describe(
        "Which agent command of the runner's configuration to use, e.g. `claude`, `codex`. (Default: the runner's default agent)",
      ),
    budget: z
      .strictObject({
        usd: z.number().positive().optional().describe("Maximum spend in US dollars."),
        turns: z.number().int().positive().optional().describe("Maximum agent turns."),
      })
      .optional()
      .describe("Limits passed to the agent command."),
  })
  .describe("A coding-agent session on a self-hosted runner.");

export const permissionLevel = z
  .enum(["read", "triage", "write", "maintain", "admin"])
  .describe("A repository permission level, as GitHub reports it.");

export const approvalVia = z
  .enum(["review", "check-run", "comment", "cli"])
  .describe(
    "`review`: a pull-request review; `check-run`: Approve/Reject buttons; `comment`: " +
      "`/baton approve`; `cli`: `baton approve` and the API.",
  );

export const approvalSpec = z
  .strictObject({
    via: z
      .array(approvalVia)
      .min(1)
      .default(["check-run", "comment", "cli"])
      .describe("Where approvals may be given. (Default: [check-run, comment, cli])"),
    approvers: z
      .strictObject({
        users: z.array(z.string()).optional().describe("GitHub logins who may approve."),
        teams: z
          .array(z.string())
          .optional()
          .describe('Teams as "org/team-slug", resolved through GitHub when someone approves.'),
        codeowners: z
          .boolean()
          .optional()
          .describe("Code owners of the flow file (or of `paths`) may approve. (Default: false)"),
        paths: z
          .array(z.string())
          .optional()
          .describe(
            "With `codeowners`: the paths whose owners may approve, instead of the flow file.",
          ),
        permission: permissionLevel
          .default("write")
          .describe("The minimum repository permission an approver needs. (Default: write)"),
      })
      .default({ permission: "write" })
      .describe(
        "Who may approve. With no users, teams or codeowners, anyone with the permission may.",
      ),
    required: z
      .number()
      .int()
      .min(1)
      .default(1)
      .describe("How many distinct people must approve. (Default: 1)"),
    "self-approval": z
      .boolean()
      .default(false)
      .describe("Whether whoever started the run may approve it. (Default: false)"),
    timeout: duration.optional().describe("How long to wait for a decision. (Default: no limit)"),
    "on-timeout": z
      .enum(["reject", "approve", "fail"])
      .default("fail")
      .describe(
        "What a timeout means: `reject` (the step fails as rejected), `approve`, or `fail` (the step fails as timed out). (Default: fail)",
      ),
    reminder: duration
      .optional()
      .describe("Remind the approvers once, this long before the timeout."),
    "pull-request": z
      .union([z.string(), z.number().int()])
      .optional()
      .describe(
        "With `via: review`: the pull request to review, e.g. `${{ steps.open.outputs.pr }}`. (Default: the run's pull request)",
      ),
  })
  .describe(
    "A human decision. The policy is part of the flow, so changing it goes through review.",
  );

export const waitSpec = z
  .strictObject({
    signal: z
      .string()
      .optional()
      .describe(
        "Wait for a named signal (`baton signal`, the API, or the Baton action); its payload becomes the step's `payload` output.",
      ),
    for: duration.optional().describe("Wait for a fixed time."),
    until: z
      .string()
      .optional()
      .describe("Wait until a moment: an ISO 8601 timestamp, or an expression that yields one."),
    timeout: duration
      .optional()
      .describe("With `signal`: fail the step if no signal arrives in time. (Default: no limit)"),
  })
  .describe(
    "Pause the run: for a signal, for a time, or until a moment. Exactly one of the three.",
  );

/**
 * GitHub Actions' `permissions` scopes (docs: "Controlling permissions for GITHUB_TOKEN")
 * that have a GitHub App permission, and its name: what a flow's `github` steps' tokens
 * are minted with.
 */
export const PERMISSION_SCOPES = {
  actions: "actions",
  attestations: "attestations",
  checks: "checks",
  contents: "contents",
  deployments: "deployments",
  discussions: "discussions",
  issues: "issues",
  packages: "packages",
  pages: "pages",
  "pull-requests": "pull_requests",
  "repository-projects": "repository_projects",
  "security-events": "security_events",
  statuses: "statuses",
} as const;
export type PermissionScope = keyof typeof PERMISSION_SCOPES;

/** Actions scopes that no GitHub App installation token can carry, and why. */
export const SCOPES_WITHOUT_APP_PERMISSION: Readonly<Record<string, string>> = {
  "id-token":
    "`id-token` is an Actions job's OIDC token; a Baton step gets none (a `workflow` step's job asks Actions for it)",
  models:
    "`models` (GitHub Models inference) is not a permission a GitHub App installation token can have",
};

export const tokenPermissions = z
  .union([
    z.record(z.string(), z.enum(["read", "write", "none"])),
    z.enum(["read-all", "write-all"]),
  ])
  .describe(
    "What the installation token of each `github` step may do, in GitHub Actions' syntax: " +
      "`read-all`, `write-all`, `{}` (metadata only), or scopes (`contents`, `issues`, " +
      "`pull-requests`, `checks`, `actions`, `deployments`, `statuses`, …) mapped to `read`, " +
      "`write` or `none`; unnamed scopes are `none`. The token covers this repository only, and " +
      "it always reads metadata. (Default: `{ contents: read }`)",
  );

export const githubRequest = z
  .strictObject({
    request: z
      .string()
      .describe(
        'One REST call, "METHOD /path", a route of GitHub\'s REST API under /repos/{owner}/{repo}, e.g. "POST /repos/{owner}/{repo}/issues/{issue_number}/comments". ' +
          "`{owner}` and `{repo}` are the run's repository; the call is restricted to it. No expressions: values go in `with`.",
      ),
    with: z
      .record(z.string(), z.unknown())
      .optional()
      .describe(
        "Path parameters (each URL-encoded into its one segment), then query parameters (GET) or body fields. Expressions are expanded.",
      ),
  })
  .describe(
    "One GitHub REST call, with a token for this repository and the flow's `permissions` only.",
  );

/** The kinds a step can be: exactly one of these keys per step. */
export const STEP_KINDS = [
  "workflow",
  "run",
  "agent",
  "approval",
  "wait",
  "flow",
  "github",
] as const;
export type StepKind = (typeof STEP_KINDS)[number];

/** What `compensate` can name: a command, or one action of a side-effecting kind. */
export const compensation = z
  .union([
    z.string().describe("A shell command, run where the step ran."),
    z
      .strictObject({
        run: z.string().optional().describe("A shell command."),
        "runs-on": runsOn.optional(),
        workflow: z.string().optional().describe("An Actions workflow to dispatch."),
        github: githubRequest.optional(),
        with: z
          .record(z.string(), scalar)
          .optional()
          .describe("Inputs of the compensating workflow."),
        env: scalarMap("Environment variables for the command.").optional(),
      })
      .describe("One compensating action: exactly one of `run`, `workflow` or `github`."),
  ])
  .describe(
    "Undo this step if the run fails or is cancelled after the step succeeded. Compensations run in reverse order of completion.",
  );

export const step = z
  .strictObject({
    name: z.string().optional().describe("A display name. (Default: the step id)"),
    needs: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .describe(
        "Steps that must finish before this one starts. Steps without `needs` start at once, in parallel.",
      ),
    if: z
      .union([z.string(), z.boolean()])
      .optional()
      .describe(
        "Run the step only when this expression is true. Without a status function (`success()`, " +
          "`failure()`, `always()`, `cancelled()`), `success() &&` is implied. (Default: success())",
      ),
    with: z
      .record(z.string(), scalar)
      .optional()
      .describe(
        "Inputs of the step: workflow inputs (at most 25), sub-flow inputs, or environment for `run` and `agent` steps.",
      ),
    env: scalarMap(
      "Environment variables for `run` and `agent` steps, added to the flow's `env`.",
    ).optional(),
    timeout: duration
      .optional()
      .describe("Fail an attempt that runs longer than this (1s to 30d). (Default: 6h)"),
    retry: retry.optional(),
    "continue-on-error": z
      .boolean()
      .optional()
      .describe("A failure of this step does not fail the run. (Default: false)"),
    compensate: compensation.optional(),
    outputs: z
      .array(identifier("An output name"))
      .optional()
      .describe(
        "The outputs the step promises. When given, `steps.<id>.outputs.<name>` must name one of them.",
      ),

    workflow: z
      .string()
      .optional()
      .describe(
        "Dispatch a GitHub Actions workflow: a file in `.github/workflows/` of this repository, or `owner/repo/.github/workflows/x.yml`.",
      ),
    ref: z
      .string()
      .optional()
      .describe("With `workflow`: the branch or tag to dispatch on. (Default: the default branch)"),
    run: z.string().optional().describe("A shell command, run by a self-hosted Baton runner."),
    "runs-on": runsOn.optional(),
    shell: z
      .enum(["bash", "sh"])
      .optional()
      .describe("With `run`: the shell. (Default: bash, or sh where bash is missing)"),
    "working-directory": z
      .string()
      .optional()
      .describe("With `run`: the directory, relative to the step's workspace."),
    checkout: z
      .boolean()
      .optional()
      .describe(
        "With `run` or `agent`: clone the run's repository at the run's commit first. (Default: false)",
      ),
    agent: agentSpec.optional(),
    approval: approvalSpec.optional(),
    wait: waitSpec.optional(),
    flow: z
      .string()
      .optional()
      .describe(
        "Run another flow of this repository (by name) as a sub-flow; its outputs become this step's.",
      ),
    github: githubRequest.optional(),
  })
  .describe("One step. Exactly one of: workflow, run, agent, approval, wait, flow, github.");

export const flowDefinition = z
  .strictObject({
    $schema: z.string().optional().describe("The JSON Schema of this file, for editors."),
    name: z.string().optional().describe("The display name. (Default: the file name)"),
    description: z.string().optional().describe("What the flow is for."),
    on: triggers.optional(),
    concurrency: concurrency.optional(),
    permissions: tokenPermissions.optional(),
    timeout: duration
      .optional()
      .describe("Cancel the run if it takes longer than this (1s to 365d). (Default: 30d)"),
    env: scalarMap(
      "Environment variables for every `run` and `agent` step; `${{ env.X }}` in expressions.",
    ).optional(),
    outputs: z
      .record(identifier("An output name"), z.string())
      .optional()
      .describe(
        "The run's outputs, as expressions over `steps`: what a parent flow's `flow` step receives.",
      ),
    steps: z
      .record(identifier("A step id"), step)
      .describe("The steps, by id. The graph comes from each step's `needs`."),
  })
  .describe("A Baton flow: `.github/flows/<name>.yml`.");

/** A flow as written, before defaults (what an editor sees). */
export type FlowInput = z.input<typeof flowDefinition>;
/** A flow after parsing: defaults applied. Immutable once a version is stored. */
export type FlowDefinition = z.output<typeof flowDefinition>;
export type StepDefinition = z.output<typeof step>;
export type InputDefinition = z.output<typeof inputDefinition>;
export type ApprovalSpec = z.output<typeof approvalSpec>;
export type WaitSpec = z.output<typeof waitSpec>;
export type RetrySpec = z.output<typeof retry>;
export type Compensation = z.output<typeof compensation>;
export type GithubEventFilter = z.output<typeof githubEventFilter>;
export type PermissionLevel = z.output<typeof permissionLevel>;
export type TokenPermissions = z.output<typeof tokenPermissions>;
