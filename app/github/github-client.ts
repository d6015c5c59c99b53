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
 * `baseUrl` is https://api.github.com, or `${GHE_PROTOCOL}://${GHE_HOST}/api/v3` for
 * GitHub Enterprise Server (also how tests point Baton at the fake GitHub).
 */
import { ProbotOctokit } from "probot";

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
}

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
  };
}

/** The REST base URL for github.com or a GitHub Enterprise Server host (GHE_HOST, GHE_PROTOCOL). */
export function githubBaseUrl(env: NodeJS.ProcessEnv): string {
  const host = env.GHE_HOST?.trim();
  if (!host) return "https://api.github.com";
  const protocol = env.GHE_PROTOCOL?.trim() || "https";
  return `${protocol}://${host}/api/v3`;
}
