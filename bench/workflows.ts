/**
 * A `workflow` step's overhead (issue 6): the whole app as `npm start` composes it,
 * against the fake GitHub's Actions, with a live flow of one workflow step.
 *
 * - Dispatch: from `service.startRun` to the workflow run existing at the fake. Anchor, in
 *   the same run: the three GitHub requests a dispatch needs (the repository, the workflow
 *   file, the dispatch), made directly with the installation's client.
 * - Completion: from sending `workflow_run.completed` to the Baton run's success (the
 *   delivery stored, processed, the attempt finished and the run decided). Anchor: the same
 *   delivery path for a `workflow_run` that is not Baton's (a push-started run: dropped).
 *
 * Runs go one at a time, 20 ms apart; the first WARM_UP are not counted.
 */
import { startAppAgainst } from "../test/fake-github/start-app-against.js";
import type { Database } from "../app/store/database.js";
import { openPostgres } from "../app/store/postgres.js";
import { FakeGitHub } from "../test/fake-github/server.js";
import { patchPayload, sendWebhook, webhookExample } from "../test/fake-github/webhooks.js";
import { withBenchDatabase } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { printTable } from "./table.js";
import type { Latency } from "./webhooks.js";
import { latencyOf, pair, waitFor, withPglite } from "./webhooks.js";

const WARM_UP = 10;
const SECRET = "bench secret";

const FLOW = `on: { manual: {} }
steps:
  build:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
`;
const WORKFLOW = `name: Build
run-name: "Build \${{ inputs.baton }}"
on:
  workflow_dispatch:
    inputs:
      sha: { required: true }
      baton: { required: false }
jobs: {}
`;

interface Figures {
  directCalls: Latency;
  dispatch: Latency;
  foreign: Latency;
  completion: Latency;
}

export async function benchWorkflowSteps(sizes: Sizes): Promise<void> {
  const count = sizes.triggerDeliveries;
  const pglite = await withPglite((store) => measure(store, count));
  const postgres = await withBenchDatabase({}, async (bench) => {
    const store = openPostgres({ connectionString: bench.url, max: 10 });
    try {
      return await measure(store, count);
    } finally {
      await store.close();
    }
  });
  const rows = (name: string, f: Figures) => [
    {
      label: `anchor: a dispatch's 3 GitHub requests, direct (${name}), p50 / p99`,
      value: pair(f.directCalls),
    },
    { label: `run start → workflow dispatched on ${name}, p50 / p99`, value: pair(f.dispatch) },
    {
      label: `anchor: a workflow_run not Baton's, sent → dropped (${name}), p50 / p99`,
      value: pair(f.foreign),
    },
    {
      label: `workflow_run.completed → run succeeded on ${name}, p50 / p99`,
      value: pair(f.completion),
    },
  ];
  printTable(`Workflow steps on Actions: ${count} runs of one workflow step, one at a time`, [
    ...rows("PGlite", pglite),
    ...rows("Postgres", postgres),
  ]);
}

async function measure(store: Database, count: number): Promise<Figures> {
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 1_000_000 } });
  const running = await startAppAgainst(fake, store, { secret: SECRET });
  try {
    await fake.install({
      installationId: 1,
      account: "acme",
      repositories: [
        {
          name: "widgets",
          files: { ".github/flows/bench.yml": FLOW, ".github/workflows/build.yml": WORKFLOW },
        },
      ],
    });
    const version = await waitFor(async () => {
      const live = await store.query<{ version_id: string | null }>(
        "SELECT version_id FROM live_flows WHERE repository = 'acme/widgets' AND flow = 'bench'",
      );
      return live.rows[0]?.version_id ?? undefined;
    });
    const octokit = running.app.github.installation(1);
    const directCalls: number[] = [];
    const dispatch: number[] = [];
    const completion: number[] = [];
    const foreign: number[] = [];
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < count + WARM_UP; i++) {
      const head = fake.head("acme/widgets");
      const direct = performance.now();
      await octokit.request("GET /repos/{owner}/{repo}", { owner: "acme", repo: "widgets" });
      await octokit.request("GET /repos/{owner}/{repo}/contents/{path}", {
        owner: "acme",
        repo: "widgets",
        path: ".github/workflows/build.yml",
        ref: "main",
      });
      await octokit.request(
        "POST /repos/{owner}/{repo}/actions/workflows/{workflow_id}/dispatches",
        {
          owner: "acme",
          repo: "widgets",
          workflow_id: "build.yml",
          ref: "main",
          inputs: { sha: head },
          return_run_details: true,
        },
      );
      if (i >= WARM_UP) directCalls.push(performance.now() - direct);
      const directRun = fake.workflowRuns.at(-1);

      const seen = fake.workflowRuns.length;
      const startedAt = performance.now();
      const { runId } = await running.app.service.startRun({
        flowFile: { versionId: version },
        actor: "bench",
        github: { installationId: 1, headSha: head },
      });
      const workflowRun = await waitFor(() =>
        Promise.resolve(fake.workflowRuns.length > seen ? fake.workflowRuns.at(-1) : undefined),
      );
      if (i >= WARM_UP) dispatch.push(performance.now() - startedAt);
      // The dispatch is committed right after GitHub's answer: wait for it.
      await waitFor(async () => {
        const row = await store.query(
          "SELECT 1 FROM workflow_dispatches WHERE workflow_run_id = $1",
          [workflowRun.id],
        );
        return row.rows.length > 0 ? true : undefined;
      });
      await pause();

      // A workflow_run of a push: every installed repository's CI sends these.
      if (directRun) {
        const payload = foreignRunPayload(fake, directRun.id);
        const sentAt = performance.now();
        const sent = await sendWebhook({
          url: `${running.url}/api/github/webhooks`,
          secret: SECRET,
          event: "workflow_run",
          payload,
        });
        const guid = sent.deliveryId;
        await waitFor(async () => {
          const row = await store.query<{ status: string }>(
            "SELECT status FROM github_deliveries WHERE id = $1",
            [guid],
          );
          const status = row.rows[0]?.status;
          return status !== undefined && status !== "pending" ? true : undefined;
        });
        if (i >= WARM_UP) foreign.push(performance.now() - sentAt);
      }
      await pause();

      const completedAt = performance.now();
      await fake.completeWorkflowRun(workflowRun.id, "success");
      await waitFor(async () => {
        const row = await store.query<{ status: string }>("SELECT status FROM runs WHERE id = $1", [
          runId,
        ]);
        return row.rows[0]?.status === "success" ? true : undefined;
      });
      if (i >= WARM_UP) completion.push(performance.now() - completedAt);
      await pause();
    }
    return {
      directCalls: latencyOf(directCalls),
      dispatch: latencyOf(dispatch),
      foreign: latencyOf(foreign),
      completion: latencyOf(completion),
    };
  } finally {
    await running.stop();
    await fake.stop();
  }
}

function foreignRunPayload(fake: FakeGitHub, id: number): Record<string, unknown> {
  const repository = fake.repository("acme/widgets");
  const payload = patchPayload(webhookExample("workflow_run", "completed"), {
    installationId: 1,
    repository: { id: repository.id, owner: "acme", name: "widgets" },
  });
  const run = payload.workflow_run as Record<string, unknown>;
  payload.workflow_run = { ...run, id: id + 1_000_000_000, event: "push" };
  return payload;
}
