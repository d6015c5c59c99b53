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
 * Runs go one at a time, 20 ms apart; the first WARM_UP are not counted. All along, the
 * same installation's check runs are kept busy, as on a busy repository: BUSY_RUNS runs of
 * another flow of the same repository each get a signal in turn every BUSY_EVERY_MS (each
 * completes one of their steps, so each changes their check run), more changes than the
 * installation's one write a second can show, so that check-run syncs are always waiting
 * for their pacing slot while dispatches are measured. The table says how many check-run
 * writes GitHub saw meanwhile (paced: about one a second).
 *
 * The app runs in this process (it needs the fake GitHub's clock and state); the dispatch
 * is seen in the fake's memory, not through the app's database.
 */
import { startAppAgainst } from "../test/fake-github/start-app-against.js";
import type { Database } from "../app/store/database.js";
import { FakeGitHub } from "../test/fake-github/server.js";
import { patchPayload, sendWebhook, webhookExample } from "../test/fake-github/webhooks.js";
import type { BatonService } from "../app/runtime/service.js";
import { figureKey } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { figure, fmt, printTable } from "./table.js";
import type { Latency } from "./webhooks.js";
import { latencyOf, onBoth, pair, waitFor } from "./webhooks.js";

const WARM_UP = 5;
const BUSY_RUNS = 6;
const BUSY_STEPS = 100;
const BUSY_EVERY_MS = 100;
const SECRET = "bench secret";

const FLOW = `on: { manual: {} }
steps:
  build:
    workflow: build.yml
    with: { sha: "\${{ run.sha }}" }
`;
/** Steps that each wait for their own signal: every signal changes the run and its check run. */
const BUSY_FLOW = `on: { manual: {} }
steps:
${Array.from({ length: BUSY_STEPS }, (_, i) => `  s${i}:\n    wait: { signal: s${i} }\n`).join("")}`;
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
  /** Check-run writes GitHub saw while the runs were measured, and over how long. */
  checkRunWrites: number;
  seconds: number;
  /** Signals sent to the busy runs meanwhile (each one a change of a check run). */
  busyChanges: number;
}

export async function benchWorkflowSteps(sizes: Sizes): Promise<void> {
  const count = sizes.workflowRuns;
  const { pglite, postgres } = await onBoth((store) => measure(store, count));
  const rows = (f: Figures & { database: string }) => [
    {
      label: `anchor: a dispatch's 3 GitHub requests, direct (${f.database}), p50 / p99`,
      value: pair(f.directCalls),
    },
    {
      label: `run start → workflow dispatched on ${f.database}, p50 / p99`,
      value: pair(f.dispatch),
      figure: figure({
        figure: `workflows.dispatch_p50_ms.${figureKey(f.database)}`,
        baton: f.dispatch.p50,
        anchor: f.directCalls.p50,
        unit: "ms",
        aim: { of: "baton", op: "<", value: 30 },
      }),
    },
    {
      label: `  meanwhile: check-run writes to GitHub / busy-run changes`,
      value: `${f.checkRunWrites} in ${fmt.fixed(f.seconds)} s / ${f.busyChanges}`,
    },
    {
      label: `anchor: a workflow_run not Baton's, sent → dropped (${f.database}), p50 / p99`,
      value: pair(f.foreign),
    },
    {
      label: `workflow_run.completed → run succeeded on ${f.database}, p50 / p99`,
      value: pair(f.completion),
    },
  ];
  printTable(
    `Workflow steps on Actions: ${count} runs of one workflow step, one at a time, while ${BUSY_RUNS} other runs of the installation change every ${BUSY_EVERY_MS * BUSY_RUNS} ms`,
    [...rows(pglite), ...rows(postgres)],
    [
      "Check-run writes are paced at one a second per installation: the busy runs ask for more",
      "than that, so syncs wait for their slot all along; a dispatch must not wait behind them.",
    ],
  );
}

/** Signal the busy runs in turn until `stop`; a run whose steps are all done is replaced. */
function keepBusy(
  service: BatonService,
  start: () => Promise<string>,
): { stop(): Promise<number> } {
  let stopped = false;
  let changes = 0;
  const loop = (async () => {
    const runs = await Promise.all(Array.from({ length: BUSY_RUNS }, start));
    const next = runs.map(() => 0);
    for (let i = 0; !stopped; i = (i + 1) % BUSY_RUNS) {
      if ((next[i] ?? 0) >= BUSY_STEPS) {
        runs[i] = await start();
        next[i] = 0;
      }
      await service.signal(runs[i] as string, `s${next[i] ?? 0}`, {}, "bench");
      next[i] = (next[i] ?? 0) + 1;
      changes += 1;
      await new Promise((resolve) => setTimeout(resolve, BUSY_EVERY_MS));
    }
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      return changes;
    },
  };
}

async function measure(store: Database, count: number): Promise<Figures> {
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 1_000_000 } });
  const running = await startAppAgainst(fake, store, { secret: SECRET });
  let busy: { stop(): Promise<number> } | undefined;
  try {
    await fake.install({
      installationId: 1,
      account: "acme",
      repositories: [
        {
          name: "widgets",
          files: {
            ".github/flows/bench.yml": FLOW,
            ".github/flows/busy.yml": BUSY_FLOW,
            ".github/workflows/build.yml": WORKFLOW,
          },
        },
      ],
    });
    const liveVersion = (flow: string) =>
      waitFor(async () => {
        const live = await store.query<{ version_id: string | null }>(
          "SELECT version_id FROM live_flows WHERE repository = 'acme/widgets' AND flow = $1",
          [flow],
        );
        return live.rows[0]?.version_id ?? undefined;
      });
    const version = await liveVersion("bench");
    const busyVersion = await liveVersion("busy");
    const service = running.app.service;
    busy = keepBusy(service, async () => {
      const started = await service.startRun({
        flowFile: { versionId: busyVersion },
        actor: "bench",
        github: { installationId: 1, headSha: fake.head("acme/widgets") },
      });
      return started.runId;
    });
    let measuredFrom = Number.NaN;
    const octokit = running.app.github.installation(1);
    const directCalls: number[] = [];
    const dispatch: number[] = [];
    const completion: number[] = [];
    const foreign: number[] = [];
    const pause = () => new Promise((resolve) => setTimeout(resolve, 20));
    for (let i = 0; i < count + WARM_UP; i++) {
      if (i === WARM_UP) measuredFrom = Date.now();
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
    const measuredTo = Date.now();
    const busyChanges = await busy.stop();
    busy = undefined;
    const checkRunWrites = fake.writes.filter(
      (w) =>
        w.installationId === 1 &&
        w.path.includes("/check-runs") &&
        w.at >= measuredFrom &&
        w.at <= measuredTo,
    ).length;
    return {
      checkRunWrites,
      seconds: (measuredTo - measuredFrom) / 1000,
      busyChanges,
      directCalls: latencyOf(directCalls),
      dispatch: latencyOf(dispatch),
      foreign: latencyOf(foreign),
      completion: latencyOf(completion),
    };
  } finally {
    await busy?.stop().catch(() => 0);
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
