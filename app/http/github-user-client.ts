/**
 * `BatonApi` for one GitHub user, against a running GitHub app: every action asks GitHub
 * for the user's permission on the repository at that moment, with the app's
 * installation token, and then acts through `ServiceClient` as that user.
 *
 * What each action needs:
 * - read: list runs, show a run, read its logs, approve or reject (the flow's approval
 *   policy then judges the permission GitHub reported, with via "cli");
 * - write: start a live flow, send a signal, cancel, retry;
 * - admin: a flow's webhook-trigger secret.
 * Someone without read permission is told that nothing is there (404), as GitHub does
 * for private repositories; someone who can read but not more gets 403 with the
 * permission GitHub reported.
 *
 * Changes (start, signal, cancel, retry, approve, reject, webhook secrets) ask GitHub at
 * that moment. Reads (list, show, logs) may use an answer GitHub gave in the last 10 s:
 * following a run polls it, and asking on each poll would spend the installation's
 * rate limit (5,000 requests an hour) on one person watching.
 *
 * Listing runs needs a repository (`?repository=owner/repo`): showing runs across
 * repositories would ask GitHub about every installed repository on each request.
 * Local flow files are refused: the app runs only flows committed to a repository.
 */
import type { ApproverFacts } from "../engine/types.js";
import type { Permission } from "../github/permissions.js";
import { hasPermission } from "../github/permissions.js";
import { type BatonService, RunNotFoundError } from "../runtime/index.js";
import type { Database } from "../store/database.js";
import type { Run } from "../store/model.js";
import type { WorkflowIdentity } from "./actions-oidc.js";
import { ApiError } from "./api.js";
import type {
  ApprovalVerdict,
  RunListFilter,
  RunSummary,
  StartedRun,
  StartLiveRunRequest,
  WebhookSecret,
} from "./api.js";
import {
  LocalFlowRefusedError,
  PermissionDeniedError,
  RepositoryNotServedError,
  RepositoryRequiredError,
} from "./errors.js";
import type { GitHubUsers } from "./github-users.js";
import { servedRepository } from "./live-flow-actions.js";
import { getRepository } from "../store/repositories.js";
import type { RunPurpose } from "./service-client.js";
import { ServiceClient } from "./service-client.js";

/** Who may do what on a repository: GitHub's answer for a user (GitHubUsers), or a rule. */
export type PermissionSource = Pick<GitHubUsers, "permission">;

export interface GitHubUserClientOptions {
  store: Database;
  service: BatonService;
  users: PermissionSource;
  /** The login GitHub gave for the request's token. */
  login: string;
  /**
   * The facts of an approval decision beyond the permission (teams, code ownership, the
   * pull request's head), asked of GitHub now: the GitHub app's shared builder
   * (app/github/approvals). (Default: the permission only; no teams, not a code owner)
   */
  approverFacts?: ApproverFactsLookup;
}

/** The facts about `user` deciding `step` of `run`, with the permission GitHub just gave. */
export type ApproverFactsLookup = (
  run: Run,
  user: string,
  step: string,
  permission: Permission,
) => Promise<ApproverFacts>;

export class GitHubUserClient extends ServiceClient {
  readonly #users: PermissionSource;
  readonly #approverFacts: ApproverFactsLookup | undefined;
  /** Permissions asked during this request, by repository: one question per repository. */
  readonly #asked = new Map<string, Promise<Permission>>();

  constructor(options: GitHubUserClientOptions) {
    super({
      store: options.store,
      service: options.service,
      actor: options.login,
      // Replaced by what GitHub reports, for each decision (see `allowed`).
      approverFacts: { permission: "none", teams: [], codeowner: false },
    });
    this.#users = options.users;
    this.#approverFacts = options.approverFacts;
  }

  override startRun(): Promise<StartedRun> {
    return Promise.reject(new LocalFlowRefusedError());
  }

  override async startLiveRun(request: StartLiveRunRequest): Promise<StartedRun> {
    const repository = await this.#require(request.repository, "write", "starting a run");
    return super.startLiveRun({ ...request, repository });
  }

  override async listRuns(filter: RunListFilter): Promise<RunSummary[]> {
    if (filter.repository === undefined) throw new RepositoryRequiredError("Listing runs");
    const repository = await this.#require(filter.repository, "read", "listing runs");
    return super.listRuns({ ...filter, repository });
  }

  override async webhookSecret(
    repository: string,
    flow: string,
    options: { rotate: boolean },
  ): Promise<WebhookSecret> {
    const name = await this.#require(repository, "admin", "a webhook secret");
    return super.webhookSecret(name, flow, options);
  }

  protected override async allowed(
    ref: string,
    purpose: RunPurpose,
  ): Promise<{ run: Run; facts: ApproverFacts }> {
    // Runs of repositories the user cannot read are not there for them, even in an
    // ambiguity's list of candidates.
    const run = await this.resolveRun(ref, async (runs) => {
      if (runs.length <= 1) return runs;
      const readable = await Promise.all(
        runs.map(async (candidate) =>
          hasPermission(await this.#permissionOnRunRepository(candidate, "read"), "read"),
        ),
      );
      return runs.filter((_, index) => readable[index]);
    });
    const fresh = purpose.needs !== "read" || purpose.decides === true;
    const permission = await this.#permissionOnRunRepository(run, fresh ? "now" : "read");
    if (permission === "none") throw new RunNotFoundError(ref);
    if (!hasPermission(permission, purpose.needs))
      throw new PermissionDeniedError(
        this.actor,
        run.repository,
        permission,
        purpose.needs,
        purpose.action,
      );
    if (purpose.decides === true && purpose.step !== undefined && this.#approverFacts)
      return { run, facts: await this.#approverFacts(run, this.actor, purpose.step, permission) };
    return { run, facts: { permission, teams: [], codeowner: false } };
  }

  /** The repository's name as stored, if the user has `needed` on it. */
  async #require(repository: string, needed: Permission, action: string): Promise<string> {
    const installed = await servedRepository(this.store, repository);
    const permission = await this.#permission(
      installed.repository,
      installed.installationId,
      needed === "read" ? "read" : "now",
    );
    if (permission === "none") throw new RepositoryNotServedError(repository);
    if (!hasPermission(permission, needed))
      throw new PermissionDeniedError(this.actor, installed.repository, permission, needed, action);
    return installed.repository;
  }

  async #permissionOnRunRepository(run: Run, when: PermissionFreshness): Promise<Permission> {
    // Local runs (no repository) are nobody's on GitHub.
    if (run.repository === "local") return "none";
    // The repository's installation now (it changes when the app is reinstalled), else
    // the one the run was started with. Uninstalled: nobody can be asked about it.
    const recorded = await getRepository(this.store, run.repository);
    if (recorded?.removedAt) return "none";
    const installationId = recorded?.installationId ?? run.github?.installationId;
    if (installationId === undefined) return "none";
    return this.#permission(run.repository, installationId, when);
  }

  /**
   * `now`: asked of GitHub now (once per request). `read`: for reading only, an answer
   * GitHub gave in the last few seconds will do (see GitHubUsers.permission).
   */
  #permission(
    repository: string,
    installationId: number,
    when: PermissionFreshness,
  ): Promise<Permission> {
    const key = `${when}:${repository.toLowerCase()}`;
    let asked = this.#asked.get(key);
    if (!asked) {
      asked = this.#users.permission(installationId, repository, this.actor, {
        forReading: when === "read",
      });
      this.#asked.set(key, asked);
    }
    return asked;
  }
}

type PermissionFreshness = "now" | "read";

/**
 * A workflow run, known by its Actions OIDC token (actions-oidc.ts): on its own
 * repository it may read, start, signal, cancel and retry runs, as a writer; it may not
 * decide approvals (they are people's) nor manage secrets; other repositories are not
 * there for it. It acts as `workflow:<owner/repo/path@ref>` in every run's history.
 */
export class WorkflowClient extends GitHubUserClient {
  constructor(
    options: Omit<GitHubUserClientOptions, "users" | "login" | "approverFacts"> & {
      identity: WorkflowIdentity;
    },
  ) {
    const own = options.identity.repository.toLowerCase();
    super({
      store: options.store,
      service: options.service,
      login: `workflow:${options.identity.workflowRef}`,
      users: {
        permission: (_installation, repository) =>
          Promise.resolve(repository.toLowerCase() === own ? "write" : "none"),
      },
    });
    // `flow#3`, an id or a prefix name a run of the workflow's own repository only.
    this.refScope = options.identity.repository;
  }

  override decide(): Promise<ApprovalVerdict> {
    return Promise.reject(
      new ApiError(
        "A workflow cannot approve or reject: approvals are people's (a review, a check-run button, `baton approve`).",
        403,
        "forbidden",
      ),
    );
  }
}
