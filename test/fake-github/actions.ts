/**
 * GitHub Actions in the fake GitHub: workflow dispatch (validated as GitHub validates it,
 * against the workflow file at the ref), workflow runs to read, list and cancel, and the
 * drivers that move a run through its life and deliver `workflow_run` / `workflow_job`
 * webhooks. A dispatched run stays queued until a test drives it, so that the test decides
 * the order of events.
 *
 * The fake's server owns HTTP, credentials and delivery; it reaches this file through
 * `ActionsHost` (what a run needs of repositories, payload patching and delivery) and
 * mounts `FakeActions.handlers` among its own.
 */
import { parse as parseYaml } from "yaml";
import { webhookExample, type SentWebhook } from "./webhooks.js";

/** Every conclusion GitHub gives a workflow run. */
export const WORKFLOW_RUN_CONCLUSIONS = [
  "success",
  "failure",
  "cancelled",
  "timed_out",
  "skipped",
  "neutral",
  "action_required",
  "startup_failure",
  "stale",
] as const;
export type WorkflowRunConclusion = (typeof WORKFLOW_RUN_CONCLUSIONS)[number];

export type WorkflowRunStatus = "requested" | "queued" | "in_progress" | "waiting" | "completed";

/** Conclusions a job can have (GitHub's `workflow_job` schema): the run's others end no job. */
const JOB_CONCLUSIONS = new Set<WorkflowRunConclusion>([
  "success",
  "failure",
  "cancelled",
  "timed_out",
  "skipped",
  "neutral",
  "action_required",
]);

/** Statuses the list filter `status` matches against `status` (anything else: `conclusion`). */
const STATUS_FILTERS = new Set([
  "requested",
  "queued",
  "in_progress",
  "waiting",
  "pending",
  "completed",
]);

/** How long after answering a cancel the run completes (`onCancel: "complete"`). */
const CANCEL_DELAY_MS = 20;

/** The app is who dispatches: its bot is the runs' actor. */
const ACTOR = "baton[bot]";

export interface FakeActionsOptions {
  /**
   * Whether `return_run_details: true` is honoured (200 with the run's id and URLs).
   * false: always 204 (no run details); "rejected": a body with the key is refused 422 as
   * GitHub Enterprise Server up to 3.20 does (its schema does not know it), and without it
   * the answer is 204. (Default: true, github.com)
   */
  returnRunDetails?: boolean | "rejected";
  /**
   * What a cancel does: "complete" cancels the run shortly after answering 202 (with
   * `workflow_job.completed` and `workflow_run.completed`), "ignore" leaves it running, as
   * a stuck run that only force-cancel stops. (Default: "complete")
   */
  onCancel?: "complete" | "ignore";
}

/** A dispatched workflow run, as tests read it (`fake.workflowRuns`). */
export interface FakeWorkflowRun {
  readonly id: number;
  /** `owner/repo` */
  readonly repository: string;
  /** `.github/workflows/<file>` */
  readonly path: string;
  readonly workflowId: number;
  /** The workflow's `name:`, or its path. */
  readonly name: string;
  /** The branch or tag dispatched on (`head_branch`). */
  readonly ref: string;
  readonly headSha: string;
  /** The inputs as the request gave them. */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** The `run-name:` with its expressions substituted, or the name. */
  readonly displayTitle: string;
  readonly status: WorkflowRunStatus;
  readonly conclusion: WorkflowRunConclusion | null;
  readonly cancelRequests: number;
  readonly forceCancelRequests: number;
  readonly htmlUrl: string;
  readonly jobId: number;
  readonly createdAt: string;
  readonly updatedAt: string;
}

type MutableRun = { -readonly [K in keyof FakeWorkflowRun]: FakeWorkflowRun[K] } & {
  runNumber: number;
  runStartedAt: string;
  jobStartedAt: string | null;
  jobCompletedAt: string | null;
};

/** What the fake's server lends this file. */
export interface ActionsHost {
  url(): string;
  now(): number;
  nextId(): number;
  /** A repository by `owner/repo` (any case), or undefined. */
  repository(fullName: string):
    | {
        fullName: string;
        defaultBranch: string;
        branches: ReadonlyMap<string, string>;
        tags: ReadonlyMap<string, string>;
      }
    | undefined;
  /** A commit's tree SHA and message, or undefined when `sha` is not a commit. */
  commit(sha: string): { tree: string; message: string } | undefined;
  /** A file's content at a commit, or undefined. */
  file(commitSha: string, path: string): string | undefined;
  /** The paths of the files of a commit. */
  paths(commitSha: string): string[];
  /** An example payload re-pointed at a repository (URLs, repository, installation). */
  repositoryPayload(template: Record<string, unknown>, fullName: string): Record<string, unknown>;
  userJson(login: string, template?: unknown): Record<string, unknown>;
  hasWebhook(): boolean;
  deliver(event: string, payload: Record<string, unknown>): Promise<SentWebhook>;
  paginate<T>(
    items: readonly T[],
    query: URLSearchParams,
    url: URL,
  ): { items: T[]; headers: Record<string, string> };
  /** An answer other than 2xx; `unexpected` ones are recorded for `assertNoUnexpectedRequests`. */
  httpError(status: number, message: string, unexpected: boolean): Error;
  /** Record a failure that happened after answering (a background completion). */
  recordUnexpected(method: string, path: string, reason: string): void;
}

interface ActionsRequest {
  params: Record<string, string>;
  query: URLSearchParams;
  body: Record<string, unknown>;
  url: URL;
}
type ActionsHandler = (request: ActionsRequest) => {
  status: number;
  body: unknown;
  headers?: Record<string, string>;
};

interface WorkflowFile {
  name: string | undefined;
  runName: string | undefined;
  /** undefined: no `workflow_dispatch` trigger. */
  dispatchInputs: Record<string, { required?: unknown; default?: unknown }> | undefined;
}

export class FakeActions {
  readonly #host: ActionsHost;
  readonly #returnRunDetails: boolean | "rejected";
  readonly #onCancel: "complete" | "ignore";
  readonly #runs: MutableRun[] = [];
  /** Workflow ids by `owner/repo:path` (lower-case repository), given on first sight. */
  readonly #workflowIds = new Map<string, number>();
  /** Cancels completing in the background, awaited by `settled()`. */
  readonly #pending = new Set<Promise<void>>();
  #runNumber = 0;

  constructor(host: ActionsHost, options: FakeActionsOptions = {}) {
    this.#host = host;
    this.#returnRunDetails = options.returnRunDetails ?? true;
    this.#onCancel = options.onCancel ?? "complete";
  }

  /** Every dispatched run, oldest first (live objects: read, do not change). */
  get runs(): readonly FakeWorkflowRun[] {
    return this.#runs;
  }

  /** The numeric id GitHub would give the workflow at `path` (`.github/workflows/x.yml` or `x.yml`). */
  workflowId(fullName: string, path: string): number {
    const repository = this.#host.repository(fullName);
    if (!repository) throw new Error(`The fake GitHub has no repository ${fullName}`);
    const full = path.includes("/") ? path : `.github/workflows/${path}`;
    const key = `${repository.fullName.toLowerCase()}:${full}`;
    let id = this.#workflowIds.get(key);
    if (id === undefined) {
      id = 90_000_000 + this.#host.nextId();
      this.#workflowIds.set(key, id);
    }
    return id;
  }

  /** Resolves with the first run matching `predicate` (Default: any), polling until `timeoutMs`. */
  async waitForRun(
    predicate: (run: FakeWorkflowRun) => boolean = () => true,
    timeoutMs = 10_000,
  ): Promise<FakeWorkflowRun> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const run = this.#runs.find(predicate);
      if (run) return run;
      if (Date.now() > deadline)
        throw new Error(
          `No workflow run matched within ${timeoutMs} ms; runs: ${JSON.stringify(
            this.#runs.map((r) => ({ id: r.id, path: r.path, status: r.status })),
          )}`,
        );
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }

  /** Background cancels finished (the fake awaits this when it stops). */
  async settled(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
  }

  // --- Drivers -------------------------------------------------------------------------

  /** `workflow_run.requested`, as GitHub sends when the run is created. */
  async requested(id: number): Promise<SentWebhook> {
    const run = this.#run(id);
    return this.#deliverRun(run, "requested");
  }

  /** The run and its job start: `workflow_job.queued`, `workflow_job.in_progress`, `workflow_run.in_progress`. */
  async start(id: number): Promise<SentWebhook[]> {
    const run = this.#run(id);
    this.#requireActive(run);
    const sent = [await this.#deliverJob(run, "queued")];
    run.status = "in_progress";
    run.jobStartedAt = this.#timestamp();
    run.updatedAt = this.#timestamp();
    sent.push(await this.#deliverJob(run, "in_progress"));
    sent.push(await this.#deliverRun(run, "in_progress"));
    return sent;
  }

  /** The run's job waits for `environment`'s protection rules: `workflow_job.waiting`. */
  async waitOnEnvironment(id: number, environment: string): Promise<SentWebhook> {
    const run = this.#run(id);
    this.#requireActive(run);
    run.status = "waiting";
    run.updatedAt = this.#timestamp();
    return this.#deliverJob(run, "waiting", environment);
  }

  /** The run ends with `conclusion`: `workflow_job.completed`, then `workflow_run.completed`. */
  async complete(id: number, conclusion: WorkflowRunConclusion): Promise<SentWebhook[]> {
    if (!WORKFLOW_RUN_CONCLUSIONS.includes(conclusion))
      throw new Error(`${String(conclusion)} is not one of GitHub's workflow run conclusions`);
    const run = this.#run(id);
    this.#requireActive(run);
    run.status = "completed";
    run.conclusion = conclusion;
    run.jobStartedAt ??= this.#timestamp();
    run.jobCompletedAt = this.#timestamp();
    run.updatedAt = this.#timestamp();
    // A run that never started (startup_failure) or went stale had no job to finish.
    const sent = JOB_CONCLUSIONS.has(conclusion) ? [await this.#deliverJob(run, "completed")] : [];
    sent.push(await this.#deliverRun(run, "completed"));
    return sent;
  }

  // --- Routes --------------------------------------------------------------------------

  readonly handlers: Record<string, ActionsHandler> = {
    "actions/create-workflow-dispatch": ({ params, body }) => {
      if (this.#returnRunDetails === "rejected" && "return_run_details" in body)
        throw this.#host.httpError(
          422,
          'Invalid request.\n\n"return_run_details" is not a permitted key.',
          false,
        );
      const fullName = `${params.owner}/${params.repo}`;
      const repository = this.#host.repository(fullName)!;
      const ref = String(body.ref).replace(/^refs\/(heads|tags)\//, "");
      const headSha = repository.branches.get(ref) ?? repository.tags.get(ref);
      // GitHub takes a branch or a tag only: a commit SHA is "no ref" too.
      if (headSha === undefined) throw this.#host.httpError(422, `No ref found for: ${ref}`, false);
      const path = this.#workflowPath(fullName, params.workflow_id ?? "", headSha);
      const content = path === undefined ? undefined : this.#host.file(headSha, path);
      if (path === undefined || content === undefined)
        throw this.#host.httpError(404, "Not Found", false);
      const workflow = readWorkflow(content);
      if (!workflow.dispatchInputs)
        throw this.#host.httpError(
          422,
          "Workflow does not have 'workflow_dispatch' trigger",
          false,
        );
      const inputs = (body.inputs ?? {}) as Record<string, unknown>;
      const declared = workflow.dispatchInputs;
      const unexpected = Object.keys(inputs).filter((name) => !(name in declared));
      if (unexpected.length > 0)
        throw this.#host.httpError(
          422,
          // GitHub lists them as Ruby prints an array: ["a", "b"]
          `Unexpected inputs provided: [${unexpected.map((n) => JSON.stringify(n)).join(", ")}]`,
          false,
        );
      for (const [name, input] of Object.entries(declared))
        if (input.required === true && input.default === undefined && !(name in inputs))
          throw this.#host.httpError(422, `Required input '${name}' not provided`, false);

      const name = workflow.name ?? path;
      const withDefaults: Record<string, unknown> = {};
      for (const [key, input] of Object.entries(declared))
        if (input.default !== undefined) withDefaults[key] = input.default;
      Object.assign(withDefaults, inputs);
      const now = this.#timestamp();
      const id = 20_000_000_000 + this.#host.nextId();
      const run: MutableRun = {
        id,
        repository: repository.fullName,
        path,
        workflowId: this.workflowId(repository.fullName, path),
        name,
        ref,
        headSha,
        inputs: structuredClone(inputs),
        displayTitle:
          workflow.runName === undefined
            ? name
            : substitute(workflow.runName, { inputs: withDefaults, workflow: name }),
        status: "queued",
        conclusion: null,
        cancelRequests: 0,
        forceCancelRequests: 0,
        htmlUrl: `${this.#host.url()}/${repository.fullName}/actions/runs/${id}`,
        jobId: 40_000_000_000 + this.#host.nextId(),
        createdAt: now,
        updatedAt: now,
        runNumber: ++this.#runNumber,
        runStartedAt: now,
        jobStartedAt: null,
        jobCompletedAt: null,
      };
      this.#runs.push(run);
      if (body.return_run_details === true && this.#returnRunDetails === true)
        return {
          status: 200,
          body: { workflow_run_id: id, run_url: this.#apiUrl(run), html_url: run.htmlUrl },
        };
      return { status: 204, body: undefined };
    },

    "actions/get-workflow-run": ({ params }) => ({
      status: 200,
      body: this.#runJson(this.#runFor(params)),
    }),

    "actions/list-workflow-runs-for-repo": ({ params, query, url }) =>
      this.#list(params, query, url, undefined),

    "actions/list-workflow-runs": ({ params, query, url }) => {
      const fullName = `${params.owner}/${params.repo}`;
      const repository = this.#host.repository(fullName)!;
      const head = repository.branches.get(repository.defaultBranch) ?? "";
      const path = this.#workflowPath(fullName, params.workflow_id ?? "", head);
      if (path === undefined || this.#host.file(head, path) === undefined)
        throw this.#host.httpError(404, "Not Found", false);
      return this.#list(params, query, url, path);
    },

    "actions/cancel-workflow-run": ({ params }) => {
      const run = this.#runFor(params);
      run.cancelRequests++;
      this.#refuseCompleted(run);
      if (this.#onCancel === "complete") {
        // GitHub answers first and cancels the run's jobs afterwards.
        const cancelling = new Promise<void>((resolve) => setTimeout(resolve, CANCEL_DELAY_MS))
          .then(() => this.#cancelNow(run))
          .catch((error: unknown) =>
            this.#host.recordUnexpected("POST", `cancel of run ${run.id}`, String(error)),
          )
          .finally(() => this.#pending.delete(cancelling));
        this.#pending.add(cancelling);
      }
      return { status: 202, body: {} };
    },

    "actions/force-cancel-workflow-run": ({ params }) => {
      const run = this.#runFor(params);
      run.forceCancelRequests++;
      this.#refuseCompleted(run);
      // Marked at once so that a read after the answer sees it; the webhooks follow.
      this.#markCancelled(run);
      const delivering = this.#deliverCancelled(run)
        .catch((error: unknown) =>
          this.#host.recordUnexpected("POST", `force-cancel of run ${run.id}`, String(error)),
        )
        .finally(() => this.#pending.delete(delivering));
      this.#pending.add(delivering);
      return { status: 202, body: {} };
    },
  };

  // --- Internals -----------------------------------------------------------------------

  #timestamp(): string {
    return new Date(this.#host.now()).toISOString().replace(/\.\d{3}Z$/, "Z");
  }

  #apiUrl(run: FakeWorkflowRun): string {
    return `${this.#host.url()}/repos/${run.repository}/actions/runs/${run.id}`;
  }

  #run(id: number): MutableRun {
    const run = this.#runs.find((r) => r.id === id);
    if (!run) throw new Error(`The fake GitHub has no workflow run ${id}`);
    return run;
  }

  #requireActive(run: MutableRun): void {
    if (run.status === "completed")
      throw new Error(`Workflow run ${run.id} is already completed (${run.conclusion})`);
  }

  #runFor(params: Record<string, string>): MutableRun {
    const fullName = `${params.owner}/${params.repo}`.toLowerCase();
    const run = this.#runs.find(
      (r) => r.id === Number(params.run_id) && r.repository.toLowerCase() === fullName,
    );
    if (!run) throw this.#host.httpError(404, "Not Found", false);
    return run;
  }

  /** A race Baton must expect (the run finished as it cancelled): GitHub's 409, not unexpected. */
  #refuseCompleted(run: MutableRun): void {
    if (run.status === "completed")
      throw this.#host.httpError(409, "Cannot cancel a workflow run that is completed.", false);
  }

  #markCancelled(run: MutableRun): void {
    run.status = "completed";
    run.conclusion = "cancelled";
    run.jobCompletedAt = this.#timestamp();
    run.updatedAt = this.#timestamp();
  }

  async #cancelNow(run: MutableRun): Promise<void> {
    if (run.status === "completed") return; // force-cancelled meanwhile
    this.#markCancelled(run);
    await this.#deliverCancelled(run);
  }

  async #deliverCancelled(run: MutableRun): Promise<void> {
    // Without a webhook URL the state change is all there is to see.
    if (!this.#host.hasWebhook()) return;
    await this.#deliverJob(run, "completed");
    await this.#deliverRun(run, "completed");
  }

  /** `.github/workflows/<file>` for a file name or a numeric workflow id, or undefined. */
  #workflowPath(fullName: string, workflowId: string, commitSha: string): string | undefined {
    if (!/^\d+$/.test(workflowId)) return `.github/workflows/${workflowId}`;
    const id = Number(workflowId);
    // Ids are given on first sight: see every workflow of the commit before looking.
    for (const path of this.#host.paths(commitSha))
      if (/^\.github\/workflows\/[^/]+\.ya?ml$/.test(path)) this.workflowId(fullName, path);
    const prefix = `${fullName.toLowerCase()}:`;
    for (const [key, value] of this.#workflowIds)
      if (value === id && key.startsWith(prefix)) return key.slice(prefix.length);
    return undefined;
  }

  #list(
    params: Record<string, string>,
    query: URLSearchParams,
    url: URL,
    path: string | undefined,
  ): { status: number; body: unknown; headers: Record<string, string> } {
    if (query.has("check_suite_id"))
      throw this.#host.httpError(501, "check_suite_id is not implemented by the fake", true);
    const fullName = `${params.owner}/${params.repo}`.toLowerCase();
    const event = query.get("event");
    const status = query.get("status");
    const branch = query.get("branch");
    const actor = query.get("actor");
    const headSha = query.get("head_sha");
    const created = query.get("created");
    const inCreated = created === null ? () => true : createdFilter(created);
    if (!inCreated)
      throw this.#host.httpError(422, `The fake cannot read created=${created}`, true);
    const runs = this.#runs
      .filter(
        (r) =>
          r.repository.toLowerCase() === fullName &&
          (path === undefined || r.path === path) &&
          (event === null || event === "workflow_dispatch") &&
          (status === null ||
            (STATUS_FILTERS.has(status) ? r.status === status : r.conclusion === status)) &&
          (branch === null || r.ref === branch) &&
          (actor === null || actor === ACTOR) &&
          (headSha === null || r.headSha === headSha) &&
          inCreated(Date.parse(r.createdAt)),
      )
      .reverse(); // newest first
    const { items, headers } = this.#host.paginate(runs, query, url);
    return {
      status: 200,
      body: { total_count: runs.length, workflow_runs: items.map((r) => this.#runJson(r)) },
      headers,
    };
  }

  /** The `workflow_run` example re-pointed at the run's repository, as a payload to deliver. */
  #runPayload(run: MutableRun, action: string): Record<string, unknown> {
    const template = webhookExample(
      "workflow_run",
      "completed",
      (e) => (e.repository as { full_name?: string }).full_name === "octo-org/octo-repo",
    );
    const payload = this.#host.repositoryPayload(template, run.repository);
    const example = payload.workflow_run as Record<string, unknown>;
    const url = this.#host.url();
    const api = this.#apiUrl(run);
    const repository = payload.repository as Record<string, unknown>;
    // The run's repository objects are the lite kind: the example's fields, the fake's values.
    const lite = (exampleRepository: unknown) =>
      Object.fromEntries(
        Object.keys(exampleRepository as object).map((key) => [
          key,
          key in repository ? repository[key] : (exampleRepository as Record<string, unknown>)[key],
        ]),
      );
    const commit = this.#host.commit(run.headSha);
    const workflowUrl = `${url}/repos/${run.repository}/actions/workflows/${run.workflowId}`;
    const actor = this.#host.userJson(ACTOR, example.actor);
    payload.action = action;
    payload.workflow_run = {
      ...example,
      id: run.id,
      node_id: `WFR_${run.id}`,
      name: run.name,
      display_title: run.displayTitle,
      head_branch: run.ref,
      head_sha: run.headSha,
      path: run.path,
      event: "workflow_dispatch",
      status: run.status,
      conclusion: run.conclusion,
      run_number: run.runNumber,
      run_attempt: 1,
      run_started_at: run.runStartedAt,
      created_at: run.createdAt,
      updated_at: run.updatedAt,
      previous_attempt_url: null,
      pull_requests: [],
      referenced_workflows: [],
      workflow_id: run.workflowId,
      check_suite_id: run.id + 1,
      check_suite_node_id: `CS_${run.id + 1}`,
      check_suite_url: `${url}/repos/${run.repository}/check-suites/${run.id + 1}`,
      html_url: run.htmlUrl,
      url: api,
      jobs_url: `${api}/jobs`,
      logs_url: `${api}/logs`,
      artifacts_url: `${api}/artifacts`,
      cancel_url: `${api}/cancel`,
      rerun_url: `${api}/rerun`,
      workflow_url: workflowUrl,
      head_commit: {
        ...(example.head_commit as Record<string, unknown>),
        id: run.headSha,
        tree_id: commit?.tree ?? run.headSha,
        message: commit?.message ?? "",
      },
      repository: lite(example.repository),
      head_repository: lite(example.head_repository),
      actor,
      triggering_actor: actor,
    };
    payload.workflow = {
      ...(payload.workflow as Record<string, unknown>),
      id: run.workflowId,
      node_id: `W_${run.workflowId}`,
      name: run.name,
      path: run.path,
      url: workflowUrl,
      html_url: `${url}/${run.repository}/blob/${run.ref}/${run.path}`,
      badge_url: `${url}/${run.repository}/workflows/${encodeURIComponent(run.name)}/badge.svg`,
    };
    payload.sender = actor;
    return payload;
  }

  /** The run as `GET …/actions/runs/{id}` answers it (GitHub's `workflow-run` schema). */
  #runJson(run: MutableRun): Record<string, unknown> {
    return this.#runPayload(run, "completed").workflow_run as Record<string, unknown>;
  }

  async #deliverRun(run: MutableRun, action: string): Promise<SentWebhook> {
    return this.#host.deliver("workflow_run", this.#runPayload(run, action));
  }

  async #deliverJob(run: MutableRun, action: string, environment?: string): Promise<SentWebhook> {
    const template = webhookExample(
      "workflow_job",
      action === "completed" ? "completed" : "in_progress",
      (e) => (e.repository as { full_name?: string }).full_name === "Codertocat/Hello-World",
    );
    const payload = this.#host.repositoryPayload(template, run.repository);
    const example = payload.workflow_job as Record<string, unknown>;
    const url = this.#host.url();
    const status = action === "waiting" ? "waiting" : action;
    const completed = action === "completed";
    const started = action === "in_progress" || completed;
    payload.action = action;
    payload.workflow_job = {
      ...example,
      id: run.jobId,
      node_id: `CR_${run.jobId}`,
      run_id: run.id,
      run_url: this.#apiUrl(run),
      run_attempt: 1,
      workflow_name: run.name,
      name: "build",
      head_branch: run.ref,
      head_sha: run.headSha,
      url: `${url}/repos/${run.repository}/actions/jobs/${run.jobId}`,
      html_url: `${run.htmlUrl}/job/${run.jobId}`,
      check_run_url: `${url}/repos/${run.repository}/check-runs/${run.jobId}`,
      status,
      conclusion: completed ? run.conclusion : null,
      created_at: run.createdAt,
      started_at: run.jobStartedAt ?? run.createdAt,
      completed_at: completed ? run.jobCompletedAt : null,
      steps: [],
      labels: ["ubuntu-latest"],
      runner_id: started ? 1 : null,
      runner_name: started ? "GitHub Actions 1" : null,
      runner_group_id: started ? 1 : null,
      runner_group_name: started ? "GitHub Actions" : null,
    };
    if (environment !== undefined) payload.deployment = this.#deployment(run, environment);
    payload.sender = this.#host.userJson(ACTOR, payload.sender);
    return this.#host.deliver("workflow_job", payload);
  }

  /** The deployment a job waiting on an environment carries (the `waiting` example has none). */
  #deployment(run: MutableRun, environment: string): Record<string, unknown> {
    const template = webhookExample("workflow_job", "queued", (e) => e.deployment !== undefined);
    const example = template.deployment as Record<string, unknown>;
    const url = this.#host.url();
    const id = run.jobId + 1;
    return {
      ...example,
      id,
      node_id: `DE_${id}`,
      sha: run.headSha,
      ref: run.ref,
      environment,
      original_environment: environment,
      url: `${url}/repos/${run.repository}/deployments/${id}`,
      statuses_url: `${url}/repos/${run.repository}/deployments/${id}/statuses`,
      repository_url: `${url}/repos/${run.repository}`,
      creator: this.#host.userJson(ACTOR, example.creator),
      created_at: run.createdAt,
      updated_at: this.#timestamp(),
    };
  }
}

/** A workflow file's name, run-name and dispatch inputs (undefined inputs: no dispatch trigger). */
export function readWorkflow(content: string): WorkflowFile {
  const document = (parseYaml(content) ?? {}) as Record<string, unknown>;
  const on = document.on;
  const string = (value: unknown) => (typeof value === "string" ? value : undefined);
  let dispatch: unknown;
  let declared = false;
  if (on === "workflow_dispatch") declared = true;
  else if (Array.isArray(on)) declared = on.includes("workflow_dispatch");
  else if (typeof on === "object" && on !== null && "workflow_dispatch" in on) {
    declared = true;
    dispatch = (on as Record<string, unknown>).workflow_dispatch;
  }
  const inputs =
    typeof dispatch === "object" && dispatch !== null
      ? (dispatch as { inputs?: unknown }).inputs
      : undefined;
  return {
    name: string(document.name),
    runName: string(document["run-name"]),
    dispatchInputs: declared
      ? typeof inputs === "object" && inputs !== null
        ? Object.fromEntries(
            Object.entries(inputs).map(([key, value]) => [
              key,
              typeof value === "object" && value !== null ? value : {},
            ]),
          )
        : {}
      : undefined,
  };
}

/**
 * `run-name` with the expressions a dispatch can fill: `inputs.X`, `github.event.inputs.X`
 * and `github.workflow`; any other expression becomes empty, as an unknown context does.
 */
function substitute(
  template: string,
  context: { inputs: Record<string, unknown>; workflow: string },
): string {
  return template.replace(/\$\{\{\s*([^}]*?)\s*\}\}/g, (_match, expression: string) => {
    const input = /^(?:inputs|github\.event\.inputs)\.([A-Za-z_][\w-]*)$/.exec(expression)?.[1];
    if (input !== undefined) {
      const value = context.inputs[input];
      if (value === undefined || value === null) return "";
      // Dispatch inputs are strings, numbers or booleans; anything else prints as JSON.
      return typeof value === "string" ? value : JSON.stringify(value);
    }
    return expression === "github.workflow" ? context.workflow : "";
  });
}

/**
 * GitHub's `created` filter (its search date syntax): `>=T`, `>T`, `<=T`, `<T`, `A..B`, or
 * a date or time alone. A date alone covers its whole day. undefined when unreadable.
 */
export function createdFilter(value: string): ((at: number) => boolean) | undefined {
  const dayOnly = (text: string) => /^\d{4}-\d{2}-\d{2}$/.test(text);
  const start = (text: string) => Date.parse(dayOnly(text) ? `${text}T00:00:00Z` : text);
  const end = (text: string) =>
    dayOnly(text) ? Date.parse(`${text}T00:00:00Z`) + 86_400_000 - 1 : Date.parse(text);
  const range = /^(.+)\.\.(.+)$/.exec(value);
  const comparison = /^(>=|<=|>|<)(.+)$/.exec(value);
  let test: ((at: number) => boolean) | undefined;
  let bounds: number[] = [];
  if (range) {
    bounds = [start(range[1]!), end(range[2]!)];
    test = (at) => at >= bounds[0]! && at <= bounds[1]!;
  } else if (comparison) {
    const [, operator, text] = comparison as unknown as [string, string, string];
    const bound = operator.startsWith(">") ? start(text) : end(text);
    bounds = [bound];
    test =
      operator === ">="
        ? (at) => at >= bound
        : operator === ">"
          ? (at) => at > (dayOnly(text) ? end(text) : bound)
          : operator === "<="
            ? (at) => at <= bound
            : (at) => at < (dayOnly(text) ? start(text) : bound);
  } else {
    bounds = [start(value), end(value)];
    test = (at) => at >= bounds[0]! && at <= bounds[1]!;
  }
  return bounds.every((b) => Number.isFinite(b)) ? test : undefined;
}
