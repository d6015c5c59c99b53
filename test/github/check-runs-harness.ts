/**
 * What the check-run tests share: a fake GitHub with one installation and repository, the
 * GitHub app's pieces around a test database, runtimes running the check-runs part, and
 * waits with a hang guard.
 */
import assert from "node:assert/strict";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { checkRunsPart } from "../../app/github/check-runs/index.js";
import type { GitHubApp } from "../../app/github/github-app.js";
import type { GitHubClient } from "../../app/github/github-client.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { GITHUB_REQUEST, GITHUB_WRITE_KINDS, githubRequestTask } from "../../app/github/outbox.js";
import { silentLogger, stderrLogger } from "../../app/runtime/log.js";
import { sha256 } from "../../app/runtime/content-hash.js";
import type { Runtime } from "../../app/runtime/runtime.js";
import { startRuntime } from "../../app/runtime/runtime.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import type { FakeCheckRun } from "../fake-github/server.js";
import { FakeGitHub } from "../fake-github/server.js";

/** Set CHECK_RUNS_TEST_LOG=1 to see the runtime's log. */
const testLog = process.env.CHECK_RUNS_TEST_LOG ? stderrLogger : silentLogger;

export const INSTALLATION = 7;
export const REPOSITORY = "acme/widgets";
export const FLOW_PATH = ".github/flows/release.yml";
export const INTERVAL_MS = 40;

export interface Harness {
  fake: FakeGitHub;
  store: Database;
  service: BatonService;
  app: GitHubApp;
  head: string;
  runtimes: Runtime[];
  /** Start a run of `source` (a flow file) on the repository's head. */
  startRun(source: string, options?: { issue?: number }): Promise<string>;
  startRuntime(options?: { github?: GitHubClient }): Runtime;
  stop(): Promise<void>;
}

export async function startHarness(
  store: Database,
  options: {
    writeIntervalMs?: number;
    /** The app's `publicUrl`. (Default: none) */
    publicUrl?: string;
    fake?: Parameters<typeof FakeGitHub.start>[0];
  } = {},
): Promise<Harness> {
  const fake = await FakeGitHub.start(options.fake ?? {});
  fake.addInstallation({ id: INSTALLATION, account: "acme" });
  const { head } = fake.addRepository({
    owner: "acme",
    name: "widgets",
    installationId: INSTALLATION,
    files: { "README.md": "widgets\n" },
  });
  fake.addIssue(REPOSITORY, 3);
  const github = createGitHubClient({
    appId: fake.appId,
    privateKey: fake.privateKey,
    baseUrl: fake.url,
    throttle: false,
  });
  const service = new BatonService({ store });
  const app: GitHubApp = {
    store,
    service,
    github,
    log: testLog,
    now: Date.now,
    ...(options.publicUrl !== undefined ? { publicUrl: options.publicUrl } : {}),
  };
  const runtimes: Runtime[] = [];
  const harness: Harness = {
    fake,
    store,
    service,
    app,
    head,
    runtimes,
    async startRun(source, runOptions = {}) {
      const parsed = parseFlow(source, FLOW_PATH);
      assert.ok(parsed.flow, JSON.stringify(parsed.diagnostics));
      const version = await saveFlowVersion(store, {
        sourceKind: "repository",
        repository: REPOSITORY,
        path: FLOW_PATH,
        // Every fake starts from the same commit: one version per source, not per SHA.
        sha: sha256(source),
        name: "release",
        definition: parsed.flow,
        source,
      });
      const started = await service.startRun({
        flowFile: { versionId: version.id },
        actor: "starter",
        github: {
          installationId: INSTALLATION,
          headSha: head,
          ...(runOptions.issue !== undefined ? { issue: runOptions.issue } : {}),
        },
      });
      return started.runId;
    },
    startRuntime(runtimeOptions = {}) {
      const runtimeApp = { ...app, github: runtimeOptions.github ?? github };
      const part = checkRunsPart(runtimeApp, {
        writeIntervalMs: options.writeIntervalMs ?? INTERVAL_MS,
      });
      const runtime = startRuntime({
        store,
        log: testLog,
        handlers: { ...part.tasks, [GITHUB_REQUEST]: githubRequestTask(runtimeApp) },
        // As the app runs them (start-app.ts): GitHub writes in their own lane.
        lanes: [{ name: "github", kinds: GITHUB_WRITE_KINDS, concurrency: 2 }],
      });
      runtimes.push(runtime);
      return runtime;
    },
    async stop() {
      for (const runtime of runtimes) await runtime.stop({ graceMs: 2000 });
      await fake.stop();
    },
  };
  return harness;
}

/** Wait (at most 20 s: a hang guard) until `check` returns something. */
export async function eventually<T>(
  what: string,
  check: () => T | undefined | Promise<T | undefined>,
): Promise<T> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    assert.ok(Date.now() < deadline, `timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 15));
  }
}

/** The run's check runs, oldest first. */
export function checkRunsOf(fake: FakeGitHub, runId: string): FakeCheckRun[] {
  return fake.checkRuns.filter((c) => c.external_id === runId).sort((a, b) => a.id - b.id);
}

/** The run's current check run once it shows `status`/`conclusion`. */
export function latestCheckRun(
  fake: FakeGitHub,
  runId: string,
  status: string,
  conclusion: string | null = null,
): Promise<FakeCheckRun> {
  return eventually(`the check run of ${runId} to be ${status} ${conclusion ?? ""}`, () => {
    const latest = checkRunsOf(fake, runId).at(-1);
    return latest?.status === status && latest.conclusion === conclusion ? latest : undefined;
  });
}

/** GitHub never changes a completed check run's status or conclusion: Baton must not ask. */
export function assertNoCompletedCheckRunChanged(fake: FakeGitHub): void {
  const sent = new Map<string, { status?: string; conclusion?: string }>();
  // The fake keeps check runs in the order they were created, one per accepted POST.
  let created = 0;
  for (const request of fake.requests) {
    if (request.status >= 300) continue;
    if (request.method === "POST" && /\/check-runs$/.test(request.path)) {
      const id = fake.checkRuns[created]?.id;
      created += 1;
      sent.set(String(id), { ...(request.body as { status?: string; conclusion?: string }) });
      continue;
    }
    const match = /\/check-runs\/(\d+)$/.exec(request.path);
    if (request.method !== "PATCH" || !match) continue;
    const body = request.body as { status?: string; conclusion?: string };
    const before = sent.get(match[1] ?? "");
    if (before?.status === "completed")
      assert.ok(
        body.status === "completed" && body.conclusion === before.conclusion,
        `check run ${match[1]} was completed (${before.conclusion}) and was sent ${body.status} ${body.conclusion ?? ""}`,
      );
    sent.set(match[1] ?? "", { ...before, ...body });
  }
}
