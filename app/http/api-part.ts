/**
 * The run API as a part of the GitHub app (app/server/start-app.ts): its routes on the
 * app's HTTP server, next to the webhook inbox and the webhook triggers, for GitHub users
 * (`Authorization: Bearer <GitHub user token>`), and for workflow runs (their Actions OIDC
 * token).
 */
import type { GitHubApp, GitHubAppPart } from "../github/github-app.js";
import { approverFactsForStep } from "../github/approvals/approver-facts.js";
import { createApiRoute } from "./api-server.js";

export function apiPart(app: GitHubApp): GitHubAppPart {
  return {
    name: "api",
    routes: [
      createApiRoute({
        service: app.service,
        store: app.store,
        auth: {
          kind: "github-users",
          github: app.github,
          // `baton approve` through the API: the same facts as reviews, comments and buttons.
          approverFacts: (run, user, step, permission) =>
            approverFactsForStep(app, run, user, step, permission),
          // Workflows start and signal runs of their own repository with the job's OIDC
          // token, asked for Baton's URL as the audience (what the Baton action does).
          actionsOidc: { audience: app.publicUrl ?? "baton" },
        },
        log: app.log,
      }),
    ],
  };
}
