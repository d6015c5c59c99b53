/**
 * A real `baton runner` process for an app the test started in its own process: in the
 * app every `run` step goes to a runner (DESIGN.md rule 10), so app-mode suites whose
 * flows have `run` steps start one. It is registered for one repository of one
 * installation with a token made in the store (no GitHub admin check: that is tested in
 * github-admin.test.ts and the e2e suite).
 */
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createRegistrationToken } from "../../app/store/runner-jobs.js";
import type { Database } from "../../app/store/database.js";
import { startBaton, waitFor } from "../cli/baton-process.js";

export interface AppRunner {
  /** Everything the runner printed so far is in `output` once it has stopped. */
  stop(): Promise<{ output: string }>;
}

export async function startAppRunner(options: {
  url: string;
  store: Database;
  repository: string;
  installationId: number;
  /** (Default: "app-runner") */
  name?: string;
  /** The configuration file's text. (Default: a short kill grace, 4 steps at once) */
  config?: string;
}): Promise<AppRunner> {
  const { token } = await createRegistrationToken(options.store, {
    scope: {
      kind: "repository",
      name: options.repository,
      installationId: options.installationId,
    },
    createdBy: "tests",
    expiresInMs: 3600_000,
  });
  const stateDir = await mkdtemp(join(tmpdir(), "baton-app-runner-"));
  const config = join(stateDir, "config.yml");
  await writeFile(config, options.config ?? "concurrency: 4\nkill-grace-ms: 500\n");
  const runner = startBaton(
    [
      ...["--url", options.url, "runner", "--name", options.name ?? "app-runner"],
      ...["--token", token, "--state-dir", stateDir, "--config", config],
    ],
    { timeoutMs: 600_000 },
  );
  let exited = false;
  void runner.exited.then(() => (exited = true));
  // Registered (and about to poll) once its identity file is written.
  await waitFor(() => {
    if (exited) throw new Error("the runner exited before it registered");
    return Promise.resolve(existsSync(join(stateDir, "runner.json")) ? true : undefined);
  }, 30_000);
  return {
    async stop() {
      runner.kill("SIGTERM");
      const finished = await runner.exited;
      await rm(stateDir, { recursive: true, force: true });
      return { output: finished.stderr };
    },
  };
}
