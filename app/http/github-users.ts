/**
 * Who a GitHub user token belongs to, and what that user may do on a repository, as
 * GitHub says.
 *
 * The login is asked with the token itself (`GET /user`) and remembered for a short
 * while, keyed by a hash of the token (the token is never kept or logged): a revoked
 * token keeps working for at most `cacheMs`. Permissions are asked with the app's
 * installation token at the moment of each change (docs/architecture.md rule 8); only reading runs
 * may reuse an answer of the last `readCacheMs`, so that following a run does not spend
 * the installation's rate limit.
 */
import { createHash } from "node:crypto";
import { ProbotOctokit } from "probot";
import type { GitHubClient } from "../github/github-client.js";
import type { Permission } from "../github/permissions.js";
import { repositoryPermission } from "../github/permissions.js";
import { AuthenticationError, GitHubUnavailableError } from "./errors.js";

export interface GitHubUsersOptions {
  github: GitHubClient;
  /** How long a token's login is remembered. (Default: 60 000 ms) */
  cacheMs?: number;
  /** How long a permission may be reused to read runs (never to change them). (Default: 10 000 ms) */
  readCacheMs?: number;
  /** The clock. (Default: Date.now) */
  now?: () => number;
}

/** Past this many remembered tokens, forgotten ones are swept out. */
const SWEEP_AT = 1000;

export class GitHubUsers {
  readonly #github: GitHubClient;
  readonly #cacheMs: number;
  readonly #now: () => number;
  readonly #readCacheMs: number;
  readonly #logins = new Map<string, { login: Promise<string>; expiresAt: number }>();
  readonly #readPermissions = new Map<string, { permission: Permission; expiresAt: number }>();

  constructor(options: GitHubUsersOptions) {
    this.#github = options.github;
    this.#cacheMs = options.cacheMs ?? 60_000;
    this.#readCacheMs = options.readCacheMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** The token's user login; throws AuthenticationError when GitHub does not accept it. */
  login(token: string): Promise<string> {
    const key = createHash("sha256").update(token).digest("hex");
    const now = this.#now();
    const cached = this.#logins.get(key);
    if (cached && cached.expiresAt > now) return cached.login;
    if (this.#logins.size >= SWEEP_AT) {
      for (const [k, entry] of this.#logins) if (entry.expiresAt <= now) this.#logins.delete(k);
    }
    // Concurrent requests with one token share one question to GitHub; a failure is not kept.
    const login = this.#askLogin(token);
    this.#logins.set(key, { login, expiresAt: now + this.#cacheMs });
    login.catch(() => this.#logins.delete(key));
    return login;
  }

  /**
   * The user's permission on the repository, asked with the installation's token. Asked
   * now, unless `forReading`: then an answer from the last `readCacheMs` will do.
   */
  async permission(
    installationId: number,
    repository: string,
    login: string,
    options: { forReading?: boolean } = {},
  ): Promise<Permission> {
    const key = `${installationId}:${repository.toLowerCase()}:${login.toLowerCase()}`;
    const now = this.#now();
    const cached = this.#readPermissions.get(key);
    if (options.forReading && cached && cached.expiresAt > now) return cached.permission;
    let permission: Permission;
    try {
      permission = await repositoryPermission(
        this.#github.installation(installationId),
        repository,
        login,
      );
    } catch (error: unknown) {
      throw new GitHubUnavailableError(`for ${login}'s permission on ${repository}`, {
        cause: error,
      });
    }
    if (this.#readPermissions.size >= SWEEP_AT) {
      for (const [k, entry] of this.#readPermissions)
        if (entry.expiresAt <= now) this.#readPermissions.delete(k);
    }
    this.#readPermissions.set(key, { permission, expiresAt: now + this.#readCacheMs });
    return permission;
  }

  async #askLogin(token: string): Promise<string> {
    // A client of its own for this token: no retries (a bad token is answered at once)
    // and no throttling queue shared with the app's own requests.
    const octokit = new ProbotOctokit({
      auth: { token },
      baseUrl: this.#github.baseUrl,
      throttle: { enabled: false },
      retry: { enabled: false },
    });
    try {
      const { data } = await octokit.rest.users.getAuthenticated();
      return data.login;
    } catch (error: unknown) {
      const status = (error as { status?: number }).status;
      // 401: unknown or revoked token. 403: a token that is not a user's (an installation
      // token has no /user).
      if (status === 401 || status === 403)
        throw new AuthenticationError(
          "GitHub does not accept this token as a user's token. Use a personal access token " +
            "or `gh auth token` (run `gh auth login` first).",
          { cause: error },
        );
      throw new GitHubUnavailableError("who the token belongs to", { cause: error });
    }
  }
}
