/**
 * How Baton talks to GitHub: Octokit clients authenticated as the app (a JWT, for `/app`
 * routes) or as one installation (an installation token, minted and refreshed by
 * Probot's auth strategy; tokens live 1 hour).
 *
 * The clients are Probot's Octokit: REST methods, pagination, retries of server errors,
 * and throttling that honours `retry-after` and GitHub's secondary rate limits (writes
 * serialised, 1 s apart, per process). Across processes, the check-run writer paces
 * itself through the database as well (app/github/check-runs).
 *
 * Steps get neither: `forRepository` mints a token for one repository of the installation
 * and only the permissions the step's flow declares (docs/architecture.md rule 12), asked of GitHub
 * when it is minted (`POST /app/installations/{id}/access_tokens` with `repositories` and
 * `permissions`; GitHub answers 422 for a permission the installation does not have).
 *
 * `baseUrl` is https://api.github.com, or `${GHE_PROTOCOL}://${GHE_HOST}/api/v3` for
 * GitHub Enterprise Server (also how tests point Baton at the fake GitHub).
 */
import { ProbotOctokit } from "probot";
import type { StepTokenPermissions } from "./permissions.js";

export type Octokit = InstanceType<typeof ProbotOctokit>;

export interface GitHubClientOptions {
  appId: number | string;
  privateKey: string;
  /** (Default: https://api.github.com) */
  baseUrl?: string;
  /**
   * Octokit's throttling (in-process write pacing, waiting out rate limits). Tests that
   * talk to the fake GitHub turn it off to keep to real time. (Default: true)
   */
  throttle?: boolean;
}

export interface GitHubClient {
  readonly baseUrl: string;
  /** Authenticated as the app: `/app/...` routes (installations, hook deliveries). */
  app(): Octokit;
  /** Authenticated as one installation; the client is cached per installation. */
  installation(installationId: number): Octokit;
  /**
   * Authenticated with a token for one repository ("owner/repo") of the installation and
   * these permissions only; cached per (installation, repository, permissions) until five
   * minutes before the token expires. Rejects with GitHub's answer (422: the installation
   * lacks a permission asked for; 422 or 404: it cannot see the repository).
   */
  forRepository(
    installationId: number,
    repository: string,
    permissions: StepTokenPermissions,
  ): Promise<Octokit>;
}

interface RepositoryToken {
  minting: Promise<Octokit>;
  /** Once minted: when GitHub says the token expires (ms since the epoch). */
  expiresAt?: number;
}

/** A cached token is used until this long before GitHub says it expires. */
const TOKEN_REFRESH_MARGIN_MS = 5 * 60 * 1000;

/** GitHub App permissions that have no `read` level: `read-all` leaves them out. */
const WRITE_ONLY_PERMISSIONS = new Set(["workflows", "profile"]);

export function createGitHubClient(options: GitHubClientOptions): GitHubClient {
  const baseUrl = (options.baseUrl ?? "https://api.github.com").replace(/\/+$/, "");
  const throttle = options.throttle ?? true;
  const common = {
    baseUrl,
    ...(throttle ? {} : { throttle: { enabled: false }, retry: { enabled: false } }),
  };
  const appClient = new ProbotOctokit({
    ...common,
    auth: { appId: options.appId, privateKey: options.privateKey },
  });
  const installations = new Map<number, Octokit>();
  /** Minting (expiresAt unset) or minted tokens, by installation, repository and permissions. */
  const repositoryTokens = new Map<string, RepositoryToken>();

  async function mintForRepository(
    installationId: number,
    repository: string,
    permissions: StepTokenPermissions,
  ): Promise<{ octokit: Octokit; expiresAt: number }> {
    let requested: Record<string, string> | undefined;
    if (permissions.kind === "some") requested = { ...permissions.permissions };
    else if (permissions.kind === "read-all") {
      const { data } = await appClient.request("GET /app/installations/{installation_id}", {
        installation_id: installationId,
      });
      requested = {};
      for (const name of Object.keys(data.permissions ?? {}))
        if (!WRITE_ONLY_PERMISSIONS.has(name)) requested[name] = "read";
    }
    // `repositories` takes names without the owner: the installation is the owner's.
    const name = repository.slice(repository.indexOf("/") + 1);
    const { data } = await appClient.request(
      "POST /app/installations/{installation_id}/access_tokens",
      {
        installation_id: installationId,
        repositories: [name],
        ...(requested !== undefined ? { permissions: requested } : {}),
      },
    );
    return {
      octokit: new ProbotOctokit({ ...common, auth: { token: data.token } }),
      expiresAt: Date.parse(data.expires_at),
    };
  }

  return {
    baseUrl,
    app: () => appClient,
    installation(installationId) {
      let client = installations.get(installationId);
      if (!client) {
        client = new ProbotOctokit({
          ...common,
          auth: { appId: options.appId, privateKey: options.privateKey, installationId },
        });
        installations.set(installationId, client);
      }
      return client;
    },
    forRepository(installationId, repository, permissions) {
      const key = JSON.stringify([
        installationId,
        repository.toLowerCase(),
        permissions.kind,
        permissions.kind === "some" ? Object.entries(permissions.permissions).sort() : [],
      ]);
      const now = Date.now();
      const fresh = (entry: RepositoryToken) =>
        entry.expiresAt === undefined || entry.expiresAt - TOKEN_REFRESH_MARGIN_MS > now;
      const cached = repositoryTokens.get(key);
      if (cached && fresh(cached)) return cached.minting;
      for (const [other, entry] of repositoryTokens)
        if (!fresh(entry)) repositoryTokens.delete(other);
      const entry: RepositoryToken = {
        minting: mintForRepository(installationId, repository, permissions).then((minted) => {
          entry.expiresAt = minted.expiresAt;
          return minted.octokit;
        }),
      };
      // A refused mint is not cached: the next step asks GitHub again.
      entry.minting.catch(() => {
        if (repositoryTokens.get(key) === entry) repositoryTokens.delete(key);
      });
      repositoryTokens.set(key, entry);
      return entry.minting;
    },
  };
}

/** The REST base URL for github.com or a GitHub Enterprise Server host (GHE_HOST, GHE_PROTOCOL). */
export function githubBaseUrl(env: NodeJS.ProcessEnv): string {
  const host = env.GHE_HOST?.trim();
  if (!host) return "https://api.github.com";
  const protocol = env.GHE_PROTOCOL?.trim() || "https";
  return `${protocol}://${host}/api/v3`;
}
