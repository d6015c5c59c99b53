/**
 * The parts of the GitHub side, in the order their webhook handlers run: a push first
 * makes the new flows live, then starts the runs it triggers.
 */
import type { GitHubApp, GitHubAppPart } from "./github-app.js";

export function defaultParts(app: GitHubApp): GitHubAppPart[] {
  void app;
  return [];
}
