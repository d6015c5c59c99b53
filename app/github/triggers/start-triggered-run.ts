/**
 * Starting one run among several in a shared transaction (a delivery's, a schedule
 * claim's). A refusal of one run (a concurrency `reject`, inputs that do not fit, a
 * broken concurrency group) must not undo the others or the claim: each start runs under
 * a savepoint, rolled back to on failure, and the failure is returned to the caller, who
 * logs it or answers with it.
 */
import type { StartRunRequest, StartedRun } from "../../runtime/index.js";
import type { Transaction } from "../../store/database.js";
import { underSavepoint } from "../../store/savepoint.js";
import type { GitHubApp } from "../github-app.js";

export type StartOutcome = { ok: true; run: StartedRun } | { ok: false; error: unknown };

export async function startRunUnderSavepoint(
  tx: Transaction,
  app: GitHubApp,
  request: StartRunRequest,
): Promise<StartOutcome> {
  try {
    return { ok: true, run: await underSavepoint(tx, () => app.service.startRunIn(tx, request)) };
  } catch (error: unknown) {
    return { ok: false, error };
  }
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
