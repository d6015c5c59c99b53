/**
 * Self-hosted runners as a part of the GitHub app: the runner protocol route, the task
 * handlers that send every `run` and `agent` step to runners, and GitHub-backed admin checks (a repository admin
 * creates tokens for the repository, an organisation admin for the organisation) and
 * checkout tokens (an installation token for one repository, contents: read, per step).
 */
import type { GitHubApp, GitHubAppPart } from "../github/github-app.js";
import { hasPermission, repositoryPermission } from "../github/permissions.js";
import { GitHubUsers } from "../http/github-users.js";
import { AuthenticationError } from "../http/errors.js";
import { runnerTaskHandlers } from "./runner-queue.js";
import type { CheckoutSource, RunnerAdminAuth } from "./runner-route.js";
import { createRunnerRoute } from "./runner-route.js";

export interface RunnersPartOptions {
  /** (Default: 30 000 ms) */
  leaseMs?: number;
}

export function runnersPart(app: GitHubApp, options: RunnersPartOptions = {}): GitHubAppPart {
  return {
    name: "runners",
    // Every `run` and `agent` step (and `run` compensation) goes to a runner: the app's
    // host runs no flow code (DESIGN.md rule 10).
    tasks: runnerTaskHandlers(),
    routes: [
      createRunnerRoute({
        store: app.store,
        log: app.log,
        admin: githubRunnerAdmin(app),
        checkout: (run) =>
          mintCheckout(app, run.repository, run.github?.installationId, run.github?.headSha),
        door: app.service.door,
        now: () => app.now(),
        ...(options.leaseMs !== undefined ? { leaseMs: options.leaseMs } : {}),
      }),
    ],
  };
}

/** The web host of a GitHub API URL: https://api.github.com → https://github.com; GHES /api/v3 → its host. */
export function gitHostOf(apiBaseUrl: string): string {
  const url = new URL(apiBaseUrl);
  if (url.hostname === "api.github.com") return "https://github.com";
  return `${url.protocol}//${url.host}`;
}

async function mintCheckout(
  app: GitHubApp,
  repository: string,
  installationId: number | undefined,
  sha: string | undefined,
): Promise<CheckoutSource> {
  if (installationId === undefined || sha === undefined)
    throw new Error(
      "`checkout: true` works for runs of a repository's flow (this run has no GitHub place)",
    );
  const name = repository.split("/")[1] ?? repository;
  // A token for this step only: one repository, read-only contents; it lives an hour.
  const { data } = await app.github
    .app()
    .request("POST /app/installations/{installation_id}/access_tokens", {
      installation_id: installationId,
      repositories: [name],
      permissions: { contents: "read" },
    });
  return { url: `${gitHostOf(app.github.baseUrl)}/${repository}.git`, sha, token: data.token };
}

/**
 * Admins, asked of GitHub at the moment of the request: `admin` on the repository, or an
 * active `admin` membership of the organisation; the installation is the app's on it.
 */
export function githubRunnerAdmin(app: GitHubApp): RunnerAdminAuth {
  const users = new GitHubUsers({ github: app.github });
  return async (request, asked) => {
    const token = /^(?:bearer|token)\s+(\S+)\s*$/i.exec(request.headers.authorization ?? "")?.[1];
    if (token === undefined)
      throw new AuthenticationError(
        "Authenticate with a GitHub token: `Authorization: Bearer <token>`.",
      );
    const login = await users.login(token);
    const refuse = (what: string) =>
      Object.assign(
        new Error(`${login} is not an admin of ${what}: only admins manage its runners`),
        {
          status: 403,
        },
      );
    if (asked.repository !== undefined) {
      const [owner = "", repo = ""] = asked.repository.split("/");
      const { data: installation } = await app.github
        .app()
        .request("GET /repos/{owner}/{repo}/installation", { owner, repo });
      const permission = await repositoryPermission(
        app.github.installation(installation.id),
        asked.repository,
        login,
      );
      if (!hasPermission(permission, "admin")) throw refuse(asked.repository);
      return {
        actor: login,
        scope: { kind: "repository", name: asked.repository, installationId: installation.id },
      };
    }
    if (asked.organization !== undefined) {
      const org = asked.organization;
      const { data: installation } = await app.github
        .app()
        .request("GET /orgs/{org}/installation", { org });
      const membership = await app.github
        .installation(installation.id)
        .request("GET /orgs/{org}/memberships/{username}", { org, username: login })
        .then(
          ({ data }) => data,
          (error: unknown) => {
            if ((error as { status?: number }).status === 404) return undefined;
            throw error;
          },
        );
      if (membership?.role !== "admin" || membership.state !== "active") throw refuse(org);
      return {
        actor: login,
        scope: { kind: "organization", name: org, installationId: installation.id },
      };
    }
    throw Object.assign(new Error("give a repository (owner/repo) or an organization"), {
      status: 400,
    });
  };
}
