/**
 * The fake GitHub's Actions: workflow dispatch validated as GitHub validates it, workflow
 * runs read, listed and cancelled over real HTTP with a real Octokit, and the drivers'
 * `workflow_run` / `workflow_job` webhooks delivered signed and shaped as GitHub's
 * published schemas require.
 */
import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, test } from "node:test";
import { ProbotOctokit } from "probot";
import { verifyWebhookSignature } from "../../app/github/webhook-signature.js";
import { WORKFLOW_RUN_CONCLUSIONS, type FakeActionsOptions } from "./actions.js";
import { checkWebhookPayload } from "./openapi.js";
import { FakeGitHub } from "./server.js";

const INSTALLATION = 61;
const REPO = "acme/widgets";
const SECRET = "actions-secret";

const BUILD = `name: Build
run-name: "Build \${{ inputs.target }} [\${{ github.event.inputs.baton }}] by \${{ github.workflow }}\${{ secrets.TOKEN }}"
on:
  push: {}
  workflow_dispatch:
    inputs:
      baton:
        required: false
      target:
        required: true
        default: prod
jobs: {}
`;
const DEPLOY = `on:
  workflow_dispatch:
    inputs:
      environment:
        required: true
`;
const FILES = {
  ".github/workflows/build.yml": BUILD,
  ".github/workflows/deploy.yml": DEPLOY,
  ".github/workflows/listed.yaml": "on: [push, workflow_dispatch]\n",
  ".github/workflows/bare.yml": "name: Bare\non: workflow_dispatch\n",
  ".github/workflows/push-only.yml": "on: push\n",
};

type Octokit = InstanceType<typeof ProbotOctokit>;

interface ReceivedWebhook {
  event: string;
  action: string;
  validSignature: boolean;
  payload: Record<string, unknown>;
}

/** The app's webhook endpoint stand-in: answers 202 and keeps what it received. */
async function startReceiver(): Promise<{
  url: string;
  received: ReceivedWebhook[];
  close: () => Promise<void>;
}> {
  const received: ReceivedWebhook[] = [];
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on("data", (c: Buffer) => chunks.push(c));
    request.on("end", () => {
      const raw = Buffer.concat(chunks);
      const payload = JSON.parse(raw.toString("utf8")) as Record<string, unknown>;
      received.push({
        event: String(request.headers["x-github-event"]),
        action: String(payload.action),
        validSignature: verifyWebhookSignature(
          SECRET,
          raw,
          request.headers["x-hub-signature-256"] as string,
        ),
        payload,
      });
      response.writeHead(202).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** A fake with one repository of workflows, a webhook receiver, and the installation's Octokit. */
async function withFake(
  actions: FakeActionsOptions | undefined,
  body: (context: {
    fake: FakeGitHub;
    octokit: Octokit;
    received: ReceivedWebhook[];
  }) => Promise<void>,
): Promise<void> {
  const receiver = await startReceiver();
  const fake = await FakeGitHub.start({
    webhook: { url: receiver.url, secret: SECRET },
    ...(actions ? { actions } : {}),
  });
  try {
    fake.addInstallation({ id: INSTALLATION, account: "acme" });
    fake.addRepository({
      owner: "acme",
      name: "widgets",
      installationId: INSTALLATION,
      files: FILES,
    });
    const octokit = new ProbotOctokit({
      auth: { appId: fake.appId, privateKey: fake.privateKey, installationId: INSTALLATION },
      baseUrl: fake.url,
      throttle: { enabled: false },
      retry: { enabled: false },
    });
    await body({ fake, octokit, received: receiver.received });
    fake.assertNoUnexpectedRequests();
  } finally {
    await fake.stop();
    await receiver.close();
  }
}

function dispatch(
  octokit: Octokit,
  workflow: string | number,
  body: { ref: string; inputs?: Record<string, unknown>; return_run_details?: boolean },
) {
  return octokit.request("POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches", {
    owner: "acme",
    repo: "widgets",
    workflow_id: workflow,
    ...body,
  });
}

/** The status and message of a request Octokit refused. */
async function refusal(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (error: unknown) {
    const { status, response } = error as {
      status: number;
      response?: { data?: { message?: string } };
    };
    return { status, message: response?.data?.message ?? "" };
  }
  throw new Error("The request succeeded");
}

async function eventually(check: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Every delivery is signed and valid against GitHub's schema for its event and action. */
function assertWellFormed(received: readonly ReceivedWebhook[]): void {
  for (const hook of received) {
    assert.ok(hook.validSignature, `${hook.event}.${hook.action} is signed`);
    assert.deepEqual(
      checkWebhookPayload(hook.event, hook.action, hook.payload),
      [],
      `${hook.event}.${hook.action} matches GitHub's schema`,
    );
  }
}

const kinds = (received: readonly ReceivedWebhook[]) =>
  received.map((r) => `${r.event}.${r.action}`);

describe("the fake GitHub's Actions", () => {
  test("a dispatch with return_run_details answers the run's id and URLs and records the run, without a webhook", async () => {
    await withFake(undefined, async ({ fake, octokit, received }) => {
      const response = await dispatch(octokit, "build.yml", {
        ref: "main",
        inputs: { baton: "bst1.abc.def" },
        return_run_details: true,
      });
      assert.equal(response.status, 200);
      const details = response.data as unknown as {
        workflow_run_id: number;
        run_url: string;
        html_url: string;
      };
      const [run] = fake.workflowRuns;
      assert.ok(run);
      assert.equal(details.workflow_run_id, run.id);
      assert.ok(run.id > 1_000_000_000, "run ids are large, as GitHub's are");
      assert.equal(details.run_url, `${fake.url}/repos/${REPO}/actions/runs/${run.id}`);
      assert.equal(details.html_url, `${fake.url}/${REPO}/actions/runs/${run.id}`);
      assert.equal(run.htmlUrl, details.html_url);
      assert.equal(run.repository, REPO);
      assert.equal(run.path, ".github/workflows/build.yml");
      assert.equal(run.ref, "main");
      assert.equal(run.headSha, fake.head(REPO));
      assert.deepEqual(run.inputs, { baton: "bst1.abc.def" });
      // Defaults fill inputs; unknown contexts (secrets) become empty.
      assert.equal(run.displayTitle, "Build prod [bst1.abc.def] by Build");
      assert.equal(run.status, "queued");
      assert.equal(run.conclusion, null);

      const { data } = await octokit.rest.actions.getWorkflowRun({
        owner: "acme",
        repo: "widgets",
        run_id: run.id,
      });
      assert.equal(data.id, run.id);
      assert.equal(data.name, "Build");
      assert.equal(data.display_title, "Build prod [bst1.abc.def] by Build");
      assert.equal(data.head_branch, "main");
      assert.equal(data.head_sha, run.headSha);
      assert.equal(data.event, "workflow_dispatch");
      assert.equal(data.status, "queued");
      assert.equal(data.conclusion, null);
      assert.equal(data.path, ".github/workflows/build.yml");
      assert.equal(data.run_attempt, 1);
      assert.equal(data.html_url, run.htmlUrl);
      assert.equal(data.url, details.run_url);
      assert.equal(data.repository.full_name, REPO);
      assert.equal(data.workflow_id, fake.workflowId(REPO, "build.yml"));
      assert.equal(
        await refusal(
          octokit.rest.actions.getWorkflowRun({ owner: "acme", repo: "widgets", run_id: 1 }),
        ).then((r) => r.status),
        404,
      );
      assert.deepEqual(received, [], "a dispatch alone delivers nothing: the test drives the run");
    });
  });

  test("without return_run_details, and on GitHub Enterprise Server always, a dispatch answers 204", async () => {
    await withFake(undefined, async ({ fake, octokit }) => {
      fake.tag(REPO, "v1.0.0");
      const plain = await dispatch(octokit, "bare.yml", { ref: "main" });
      assert.equal(plain.status, 204);
      // The list form of `on:`, a tag, `refs/heads/…`, and the workflow's numeric id.
      assert.equal((await dispatch(octokit, "listed.yaml", { ref: "v1.0.0" })).status, 204);
      const byId = fake.workflowId(REPO, ".github/workflows/bare.yml");
      assert.equal((await dispatch(octokit, byId, { ref: "refs/heads/main" })).status, 204);
      assert.deepEqual(
        fake.workflowRuns.map((r) => [r.path, r.ref, r.displayTitle]),
        [
          [".github/workflows/bare.yml", "main", "Bare"],
          // No name: the path names the workflow and its runs.
          [".github/workflows/listed.yaml", "v1.0.0", ".github/workflows/listed.yaml"],
          [".github/workflows/bare.yml", "main", "Bare"],
        ],
      );
    });
    await withFake({ returnRunDetails: false }, async ({ fake, octokit }) => {
      const response = await dispatch(octokit, "build.yml", {
        ref: "main",
        return_run_details: true,
      });
      assert.equal(response.status, 204);
      assert.equal(fake.workflowRuns.length, 1);
    });
  });

  test("a dispatch GitHub refuses is answered with GitHub's status and message, and no run", async () => {
    await withFake(undefined, async ({ fake, octokit }) => {
      const sha = fake.head(REPO);
      const cases: [string, Parameters<typeof dispatch>[2], number, string][] = [
        [
          "build.yml",
          { ref: "main", inputs: { b: "1", a: "2" } },
          422,
          'Unexpected inputs provided: ["b", "a"]',
        ],
        ["deploy.yml", { ref: "main" }, 422, "Required input 'environment' not provided"],
        [
          "push-only.yml",
          { ref: "main" },
          422,
          "Workflow does not have 'workflow_dispatch' trigger",
        ],
        ["build.yml", { ref: sha }, 422, `No ref found for: ${sha}`],
        ["build.yml", { ref: "nope" }, 422, "No ref found for: nope"],
        ["missing.yml", { ref: "main" }, 404, "Not Found"],
      ];
      for (const [workflow, body, status, message] of cases)
        assert.deepEqual(
          await refusal(dispatch(octokit, workflow, body)),
          { status, message },
          workflow,
        );
      assert.equal(
        (await dispatch(octokit, "deploy.yml", { ref: "main", inputs: { environment: "prod" } }))
          .status,
        204,
      );
      assert.equal(fake.workflowRuns.length, 1);
    });
  });

  test("runs are listed newest first, filtered by event, status, conclusion, branch and created, and paged", async () => {
    await withFake(undefined, async ({ fake, octokit }) => {
      fake.commit(REPO, { files: { "x.txt": "x" }, branch: "feature" });
      await dispatch(octokit, "build.yml", { ref: "main" });
      await dispatch(octokit, "bare.yml", { ref: "main" });
      await dispatch(octokit, "build.yml", { ref: "feature" });
      const [first, second, third] = fake.workflowRuns;
      assert.ok(first && second && third);
      await fake.completeWorkflowRun(first.id, "success");
      const ids = async (
        query: Record<string, string | number> = {},
        workflow?: string | number,
      ) => {
        const { data } =
          workflow === undefined
            ? await octokit.rest.actions.listWorkflowRunsForRepo({
                owner: "acme",
                repo: "widgets",
                ...query,
              })
            : await octokit.rest.actions.listWorkflowRuns({
                owner: "acme",
                repo: "widgets",
                workflow_id: workflow,
                ...query,
              });
        assert.equal(data.total_count >= data.workflow_runs.length, true);
        return data.workflow_runs.map((r) => r.id);
      };
      assert.deepEqual(await ids(), [third.id, second.id, first.id]);
      assert.deepEqual(await ids({ event: "workflow_dispatch" }), [third.id, second.id, first.id]);
      assert.deepEqual(await ids({ event: "push" }), []);
      assert.deepEqual(await ids({ status: "completed" }), [first.id]);
      assert.deepEqual(await ids({ status: "success" }), [first.id]);
      assert.deepEqual(await ids({ status: "failure" }), []);
      assert.deepEqual(await ids({ status: "queued" }), [third.id, second.id]);
      assert.deepEqual(await ids({ branch: "feature" }), [third.id]);
      assert.deepEqual(await ids({ created: ">=2000-01-01T00:00:00Z" }), [
        third.id,
        second.id,
        first.id,
      ]);
      assert.deepEqual(await ids({ created: ">=2999-01-01T00:00:00Z" }), []);
      assert.deepEqual(await ids({}, "build.yml"), [third.id, first.id]);
      assert.deepEqual(await ids({ branch: "main" }, fake.workflowId(REPO, "build.yml")), [
        first.id,
      ]);
      assert.equal(
        (
          await refusal(
            octokit.rest.actions.listWorkflowRuns({
              owner: "acme",
              repo: "widgets",
              workflow_id: "none.yml",
            }),
          )
        ).status,
        404,
      );

      const page = await octokit.rest.actions.listWorkflowRunsForRepo({
        owner: "acme",
        repo: "widgets",
        per_page: 2,
        page: 2,
      });
      assert.equal(page.data.total_count, 3);
      assert.deepEqual(
        page.data.workflow_runs.map((r) => r.id),
        [first.id],
      );
      assert.match(page.headers.link ?? "", /rel="prev"/);
      const all = await octokit.paginate(octokit.rest.actions.listWorkflowRunsForRepo, {
        owner: "acme",
        repo: "widgets",
        per_page: 1,
      });
      assert.deepEqual(
        all.map((r) => r.id),
        [third.id, second.id, first.id],
      );
    });
  });

  test("the drivers move a run through its life and deliver GitHub's webhooks, for every conclusion", async () => {
    await withFake(undefined, async ({ fake, octokit, received }) => {
      await dispatch(octokit, "build.yml", { ref: "main", inputs: { baton: "token" } });
      const run = await fake.waitForWorkflowRun((r) => r.path.endsWith("build.yml"));
      await fake.workflowRunRequested(run.id);
      await fake.startWorkflowRun(run.id);
      assert.equal(run.status, "in_progress");
      await fake.waitOnEnvironment(run.id, "production");
      assert.equal(run.status, "waiting");
      await fake.completeWorkflowRun(run.id, "failure");
      assert.deepEqual(kinds(received), [
        "workflow_run.requested",
        "workflow_job.queued",
        "workflow_job.in_progress",
        "workflow_run.in_progress",
        "workflow_job.waiting",
        "workflow_job.completed",
        "workflow_run.completed",
      ]);
      assertWellFormed(received);
      const runPayload = received.at(-1)!.payload;
      const workflowRun = runPayload.workflow_run as Record<string, unknown>;
      assert.deepEqual(
        {
          id: workflowRun.id,
          name: workflowRun.name,
          display_title: workflowRun.display_title,
          head_branch: workflowRun.head_branch,
          head_sha: workflowRun.head_sha,
          path: workflowRun.path,
          event: workflowRun.event,
          status: workflowRun.status,
          conclusion: workflowRun.conclusion,
          run_attempt: workflowRun.run_attempt,
          html_url: workflowRun.html_url,
        },
        {
          id: run.id,
          name: "Build",
          display_title: "Build prod [token] by Build",
          head_branch: "main",
          head_sha: fake.head(REPO),
          path: ".github/workflows/build.yml",
          event: "workflow_dispatch",
          status: "completed",
          conclusion: "failure",
          run_attempt: 1,
          html_url: run.htmlUrl,
        },
      );
      assert.equal((runPayload.repository as { full_name: string }).full_name, REPO);
      assert.equal((runPayload.installation as { id: number }).id, INSTALLATION);
      assert.equal((runPayload.sender as { login: string }).login, "baton[bot]");
      const job = received.at(-2)!.payload.workflow_job as Record<string, unknown>;
      assert.equal(job.run_id, run.id);
      assert.equal(job.id, run.jobId);
      assert.equal(job.status, "completed");
      assert.equal(job.conclusion, "failure");
      assert.equal(job.workflow_name, "Build");
      assert.equal(job.head_branch, "main");
      assert.equal(job.head_sha, run.headSha);
      assert.equal(job.html_url, `${run.htmlUrl}/job/${run.jobId}`);
      const waiting = received.find((r) => r.action === "waiting")!.payload;
      assert.equal((waiting.deployment as { environment: string }).environment, "production");
      assert.equal(run.conclusion, "failure");

      for (const conclusion of WORKFLOW_RUN_CONCLUSIONS) {
        await dispatch(octokit, "bare.yml", { ref: "main" });
        const next = fake.workflowRuns.at(-1)!;
        await fake.completeWorkflowRun(next.id, conclusion);
        const { data } = await octokit.rest.actions.getWorkflowRun({
          owner: "acme",
          repo: "widgets",
          run_id: next.id,
        });
        assert.deepEqual([data.status, data.conclusion], ["completed", conclusion]);
      }
      assertWellFormed(received);
      // A run that never started or went stale ends no job: workflow_run.completed alone.
      const runOnly = received
        .slice(7)
        .filter((r, i, all) => r.event === "workflow_run" && all[i - 1]?.event !== "workflow_job")
        .map((r) => (r.payload.workflow_run as { conclusion: string }).conclusion);
      assert.deepEqual(runOnly, ["startup_failure", "stale"]);
      assert.equal(received.length, 7 + 2 * WORKFLOW_RUN_CONCLUSIONS.length - 2);
    });
  });

  test("waitForWorkflowRun resolves when the dispatch arrives", async () => {
    await withFake(undefined, async ({ fake, octokit }) => {
      const waiting = fake.waitForWorkflowRun();
      setTimeout(() => void dispatch(octokit, "bare.yml", { ref: "main" }), 50);
      const run = await waiting;
      assert.equal(run.path, ".github/workflows/bare.yml");
      await assert.rejects(
        fake.waitForWorkflowRun((r) => r.ref === "other", 50),
        /No workflow run matched/,
      );
    });
  });

  test("a cancel answers 202 and completes the run as cancelled, with webhooks; a completed run is 409", async () => {
    await withFake(undefined, async ({ fake, octokit, received }) => {
      await dispatch(octokit, "build.yml", { ref: "main" });
      const run = fake.workflowRuns[0]!;
      await fake.startWorkflowRun(run.id);
      received.length = 0;
      const cancel = await octokit.rest.actions.cancelWorkflowRun({
        owner: "acme",
        repo: "widgets",
        run_id: run.id,
      });
      assert.equal(cancel.status, 202);
      assert.deepEqual(cancel.data, {});
      await eventually(() => received.length === 2, "the cancellation's webhooks");
      assert.deepEqual(kinds(received), ["workflow_job.completed", "workflow_run.completed"]);
      assertWellFormed(received);
      assert.equal(
        (received[1]!.payload.workflow_run as { conclusion: string }).conclusion,
        "cancelled",
      );
      assert.deepEqual(
        [run.status, run.conclusion, run.cancelRequests],
        ["completed", "cancelled", 1],
      );
      assert.deepEqual(
        await refusal(
          octokit.rest.actions.cancelWorkflowRun({
            owner: "acme",
            repo: "widgets",
            run_id: run.id,
          }),
        ),
        { status: 409, message: "Cannot cancel a workflow run that is completed." },
      );
      assert.deepEqual(
        await refusal(
          octokit.rest.actions.forceCancelWorkflowRun({
            owner: "acme",
            repo: "widgets",
            run_id: run.id,
          }),
        ),
        { status: 409, message: "Cannot cancel a workflow run that is completed." },
      );
      assert.equal(run.cancelRequests, 2);
    });
  });

  test("a stuck run ignores cancel and stops at force-cancel, with webhooks", async () => {
    await withFake({ onCancel: "ignore" }, async ({ fake, octokit, received }) => {
      await dispatch(octokit, "build.yml", { ref: "main" });
      const run = fake.workflowRuns[0]!;
      await fake.startWorkflowRun(run.id);
      received.length = 0;
      for (let i = 0; i < 2; i++)
        assert.equal(
          (
            await octokit.rest.actions.cancelWorkflowRun({
              owner: "acme",
              repo: "widgets",
              run_id: run.id,
            })
          ).status,
          202,
        );
      // Longer than a cancel takes to complete when it is not ignored.
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert.deepEqual([run.status, run.cancelRequests, received.length], ["in_progress", 2, 0]);

      const force = await octokit.rest.actions.forceCancelWorkflowRun({
        owner: "acme",
        repo: "widgets",
        run_id: run.id,
      });
      assert.equal(force.status, 202);
      assert.deepEqual(
        [run.status, run.conclusion, run.forceCancelRequests],
        ["completed", "cancelled", 1],
      );
      await eventually(() => received.length === 2, "the force-cancel's webhooks");
      assert.deepEqual(kinds(received), ["workflow_job.completed", "workflow_run.completed"]);
      assertWellFormed(received);
      assert.equal(
        (received[1]!.payload.workflow_run as { conclusion: string }).conclusion,
        "cancelled",
      );
      assert.equal(
        (
          await refusal(
            octokit.rest.actions.forceCancelWorkflowRun({
              owner: "acme",
              repo: "widgets",
              run_id: run.id,
            }),
          )
        ).status,
        409,
      );
      assert.equal(run.forceCancelRequests, 2);
    });
  });
});
