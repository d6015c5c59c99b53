/**
 * What the approval tests share: the whole app (startApp with the default parts and the
 * approvals part) against a fake GitHub with one installation and repository, runs on
 * pull requests and issues, deliveries awaited until processed, and waits with a hang
 * guard.
 */
import assert from "node:assert/strict";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { getDelivery } from "../../app/store/deliveries.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { defaultParts } from "../../app/server/parts.js";
import type { RunningApp } from "../../app/server/start-app.js";
import { startApp } from "../../app/server/start-app.js";
import type { RunEvent } from "../../app/engine/types.js";
import { advanceRun } from "../../app/runtime/advance-run.js";
import { sha256 } from "../../app/runtime/content-hash.js";
import { FlowCache } from "../../app/runtime/flow-cache.js";
import { silentLogger, stderrLogger } from "../../app/runtime/log.js";
import type { RunDetails } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import type { SentWebhook } from "../fake-github/webhooks.js";
import { FakeGitHub } from "../fake-github/server.js";
import { startAppRunner } from "../runners/app-runner.js";
import { eventually } from "./check-runs-harness.js";

/** Set APPROVALS_TEST_LOG=1 to see the app's log. */
const testLog = process.env.APPROVALS_TEST_LOG ? stderrLogger : silentLogger;

export const INSTALLATION = 9;
export const REPOSITORY = "acme/widgets";
export const FLOW_PATH = ".github/flows/release.yml";
const SECRET = "approvals";
const flows = new FlowCache();

export interface ApprovalsHarness {
  fake: FakeGitHub;
  running: RunningApp;
  store: Database;
  /** A pull request `number` by `author`, on a branch of its own. Returns its head. */
  openPullRequest(number: number, author: string): string;
  /** Start a run of `source` (a flow file) as `actor`, on a pull request or an issue. */
  startRun(
    source: string,
    place: { pullRequest: number; actor?: string } | { issue: number; actor?: string },
    inputs?: Record<string, string>,
  ): Promise<string>;
  /** Wait until GitHub's delivery has been processed by the app. */
  processed(sent: SentWebhook | Promise<SentWebhook>): Promise<void>;
  details(runId: string): Promise<RunDetails>;
  /** Wait until `check` holds for the run's details. */
  until(runId: string, what: string, check: (d: RunDetails) => boolean): Promise<RunDetails>;
  /** The app's comments on an issue or pull request whose body matches `pattern`. */
  replies(number: number, pattern: RegExp): string[];
  /**
   * Let `ms` pass on the app's clock and fire the run's timers, as the runtime's `advance`
   * task does when a timer is due (the tests' clock runs ahead of the database's, whose
   * clock decides when a timer task is claimed, so the test fires it).
   */
  passTime(runId: string, ms: number): Promise<void>;
  /** A runner for the `run` steps of another repository (acme/widgets has one). */
  runnerFor(repository: string, installationId: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startApprovalsApp(store: Database): Promise<ApprovalsHarness> {
  const fake = await FakeGitHub.start();
  fake.addInstallation({ id: INSTALLATION, account: "acme" });
  fake.addRepository({
    owner: "acme",
    name: "widgets",
    installationId: INSTALLATION,
    files: { "README.md": "widgets\n" },
  });
  const github = createGitHubClient({
    appId: fake.appId,
    privateKey: fake.privateKey,
    baseUrl: fake.url,
    throttle: false,
  });
  let offsetMs = 0;
  const now = () => Date.now() + offsetMs;
  const running = await startApp({
    now,
    store,
    github,
    webhookSecret: SECRET,
    parts: (app) =>
      defaultParts(app, {
        checkRuns: { writeIntervalMs: 5 },
        approvals: { deploymentGatePollMs: 20 },
      }),
    log: testLog,
    port: 0,
    host: "127.0.0.1",
    recoveryIntervalMs: 0,
  });
  fake.webhook = { url: `${running.url}/api/github/webhooks`, secret: SECRET };
  // The flows' `run` steps go to a runner, as in the app they always do.
  const runners = [
    await startAppRunner({
      url: running.url,
      store,
      repository: REPOSITORY,
      installationId: INSTALLATION,
    }),
  ];
  const service = running.app.service;
  const harness: ApprovalsHarness = {
    fake,
    running,
    store,
    openPullRequest(number, author) {
      fake.commit(REPOSITORY, {
        files: { [`src/change-${number}.ts`]: `export const n = ${number};\n` },
        branch: `feature-${number}`,
      });
      return fake.addPullRequest(REPOSITORY, {
        number,
        headBranch: `feature-${number}`,
        user: author,
      }).head.sha;
    },
    async startRun(source, place, inputs = {}) {
      const parsed = parseFlow(source, FLOW_PATH);
      assert.ok(parsed.flow, JSON.stringify(parsed.diagnostics));
      const version = await saveFlowVersion(store, {
        sourceKind: "repository",
        repository: REPOSITORY,
        path: FLOW_PATH,
        sha: sha256(source),
        name: "release",
        definition: parsed.flow,
        source,
      });
      const headSha =
        "pullRequest" in place
          ? fake.pullRequest(REPOSITORY, place.pullRequest).head.sha
          : fake.head(REPOSITORY);
      const started = await service.startRun({
        flowFile: { versionId: version.id },
        inputs,
        actor: place.actor ?? "starter",
        github: {
          installationId: INSTALLATION,
          headSha,
          ...("pullRequest" in place ? { pullRequest: place.pullRequest } : { issue: place.issue }),
        },
      });
      return started.runId;
    },
    async processed(sent) {
      const delivery = await sent;
      assert.equal(
        delivery.status,
        202,
        `GitHub's delivery was accepted: ${JSON.stringify(delivery.body)}`,
      );
      await eventually(`delivery ${delivery.deliveryId} to be processed`, async () => {
        const stored = await getDelivery(store, delivery.deliveryId);
        if (stored?.status === "failed") assert.fail(`delivery ${delivery.deliveryId} failed`);
        return stored?.status === "processed" || stored?.status === "ignored" ? true : undefined;
      });
    },
    details: (runId) => service.getRun(runId),
    async until(runId, what, check) {
      return eventually(what, async () => {
        const details = await service.getRun(runId);
        return check(details) ? details : undefined;
      });
    },
    replies(number, pattern) {
      return fake
        .issueComments(REPOSITORY, number)
        .map((c) => c.body)
        .filter((body) => pattern.test(body));
    },
    async passTime(runId, ms) {
      offsetMs += ms;
      await store.transaction(async (tx) => {
        await advanceRun(tx, flows, runId, [], now());
      });
    },
    async runnerFor(repository, installationId) {
      runners.push(await startAppRunner({ url: running.url, store, repository, installationId }));
    },
    async stop() {
      await Promise.all(runners.map((runner) => runner.stop()));
      await running.stop();
      await fake.stop();
    },
  };
  return harness;
}

// The check-run tests' hang-guarded wait, for the approvals tests too.
export { eventually };

export function stepOf(details: RunDetails, step: string) {
  const state = details.state?.steps[step];
  assert.ok(state, `the run has a step ${step}`);
  return state;
}

export function waiting(step: string, reason?: string): (d: RunDetails) => boolean {
  return (d) =>
    d.state?.steps[step]?.status === "waiting" &&
    (reason === undefined || d.state.steps[step]?.reason === reason);
}

export function eventsOf<T extends RunEvent["type"]>(
  details: RunDetails,
  type: T,
): Extract<RunEvent, { type: T }>[] {
  return details.events.filter((e): e is Extract<RunEvent, { type: T }> => e.type === type);
}
