/**
 * What the API refuses on behalf of GitHub users: who they are (401), what GitHub says
 * they may do (403), and repository flows that are not there or cannot start that way.
 * `error-status.ts` maps each class to its HTTP status and code.
 */
import type { Permission } from "../github/permissions.js";

/** The request carries no token, or GitHub does not know it as a user's token. */
export class AuthenticationError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "AuthenticationError";
  }
}

/** GitHub reports a permission on the repository below what the action needs. */
export class PermissionDeniedError extends Error {
  constructor(
    readonly user: string,
    readonly repository: string,
    /** What GitHub reported, at the moment of the action. */
    readonly permission: Permission,
    readonly required: Permission,
    readonly action: string,
  ) {
    super(
      `${user} has ${permission === "none" ? "no" : permission} permission on ${repository}; ` +
        `${action} needs ${required}. Ask a repository admin for ${required} access.`,
    );
    this.name = "PermissionDeniedError";
  }
}

/**
 * The app does not serve this repository: not installed there, uninstalled, or the user
 * cannot read it (GitHub answers 404 for a private repository one cannot see; so does
 * Baton, so that the answer does not tell whether the repository exists).
 */
export class RepositoryNotServedError extends Error {
  constructor(readonly repository: string) {
    super(
      `Baton serves no repository ${repository} that you can read. Check the name (owner/repo), ` +
        "that the Baton app is installed on it, and that your GitHub token is the right account's.",
    );
    this.name = "RepositoryNotServedError";
  }
}

export class LiveFlowNotFoundError extends Error {
  constructor(
    readonly repository: string,
    readonly flow: string,
    /** The live flows of the repository. */
    readonly liveFlows: string[],
  ) {
    super(
      `${repository} has no live flow "${flow}" (.github/flows/${flow}.yml on the default branch, valid). ` +
        (liveFlows.length > 0
          ? `Its live flows: ${liveFlows.join(", ")}.`
          : "It has no live flows yet: commit one to .github/flows/ on the default branch."),
    );
    this.name = "LiveFlowNotFoundError";
  }
}

/** The live version does not declare the trigger the request needs (`manual`, `webhook`). */
export class TriggerNotDeclaredError extends Error {
  constructor(
    readonly repository: string,
    readonly flow: string,
    readonly trigger: "manual" | "webhook",
  ) {
    super(
      `The live version of ${repository}/${flow} does not declare \`on.${trigger}\`, so it cannot be ` +
        `${trigger === "manual" ? "started by hand" : "triggered by a webhook"}. ` +
        `Add \`on: { ${trigger}: {} }\` to .github/flows/${flow}.yml on the default branch.`,
    );
    this.name = "TriggerNotDeclaredError";
  }
}

/**
 * A GitHub app runs only flows committed to a repository: a flow file sent by a client is
 * untrusted content (docs/architecture.md rule 7), whatever the sender's permission.
 */
export class LocalFlowRefusedError extends Error {
  constructor() {
    super(
      "This Baton app runs only flows committed to a repository. Start a live flow with " +
        "`baton run <flow> --repo owner/repo`, or run a local file without --url/BATON_URL.",
    );
    this.name = "LocalFlowRefusedError";
  }
}

/** The request needs a repository it did not name. */
export class RepositoryRequiredError extends Error {
  constructor(what: string) {
    super(
      `${what} needs a repository against a GitHub app: pass --repo owner/repo (API: ?repository=owner/repo).`,
    );
    this.name = "RepositoryRequiredError";
  }
}

/** GitHub could not be asked (network, 5xx): nothing was decided, try again. */
export class GitHubUnavailableError extends Error {
  constructor(what: string, options: { cause: unknown }) {
    const cause = options.cause instanceof Error ? options.cause.message : String(options.cause);
    super(`Could not ask GitHub ${what}: ${cause}. Try again in a moment.`, options);
    this.name = "GitHubUnavailableError";
  }
}
