/**
 * Baton as a custom deployment protection rule for GitHub Actions environments: an
 * Actions deployment to an environment protected by this app waits for a Baton approval
 * policy.
 *
 * The format needs nothing new: a live flow declares that it handles the event as any
 * GitHub trigger, `on: { github: { deployment_protection_rule: {} } }`, and the triggers
 * part starts its run (the environment is `${{ trigger.payload.environment }}`, so a flow
 * that gates some environments only puts `if:` on its approval step; a skipped approval
 * approves). This part, after the triggers part in the same delivery transaction:
 *
 * - records a gate for every run that delivery started (`github_deployment_gates`), or,
 *   when no live flow handles the event, answers `rejected` at once and says why (GitHub
 *   would otherwise hold the deployment for 30 days);
 * - answers each open gate once (`POST /repos/{o}/{r}/actions/runs/{run_id}/
 *   deployment_protection_rule`, through the outbox), as soon as the run's approval
 *   steps have decided (all approved or skipped → approved; one rejected or failed →
 *   rejected), or the run ends (success → approved, otherwise rejected). A background job
 *   looks at the open gates (few: one per deployment waiting) every `pollMs` while there
 *   are some, and sleeps until a gate is recorded when there are none; the answer is
 *   claimed with an UPDATE, so one process answers, once.
 */
import type { FlowDefinition, RunState } from "../../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../../engine/types.js";
import type { Queryable, Transaction } from "../../store/database.js";
import { CHANNELS } from "../../store/database.js";
import { getFlowVersion } from "../../store/flow-versions.js";
import { RUN_STATE_SQL } from "../../store/runs.js";
import type { BackgroundJob, EventHandler, GitHubApp } from "../github-app.js";
import { enqueueGitHubRequest } from "../outbox.js";

export const GATE_ROUTE =
  "POST /repos/{owner}/{repo}/actions/runs/{run_id}/deployment_protection_rule";

type Payload = Record<string, unknown>;

function object(value: unknown): Payload | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Payload)
    : undefined;
}

/** The workflow run id of a `deployment_callback_url` (…/actions/runs/{id}/deployment_protection_rule). */
export function workflowRunIdOf(callbackUrl: string): number | undefined {
  const match = /\/actions\/runs\/(\d+)\/deployment_protection_rule\/?$/.exec(callbackUrl);
  return match ? Number(match[1]) : undefined;
}

export const handleDeploymentProtectionRule: EventHandler = (event, app) => {
  const repository = object(event.payload.repository)?.full_name;
  const environment = event.payload.environment;
  const callback = event.payload.deployment_callback_url;
  const installationId = event.installationId;
  if (
    typeof repository !== "string" ||
    typeof environment !== "string" ||
    typeof callback !== "string" ||
    installationId === undefined
  )
    return Promise.resolve(undefined);
  const workflowRunId = workflowRunIdOf(callback);
  if (workflowRunId === undefined) {
    app.log.warn("deployment_protection_rule without a usable callback URL; ignored", {
      delivery: event.id,
      callback,
    });
    return Promise.resolve(undefined);
  }
  return Promise.resolve(async (tx: Transaction) => {
    // The runs the triggers part started for this very delivery (same transaction).
    const started = await tx.query<{ id: string }>(
      `SELECT id FROM runs
        WHERE lower(repository) = lower($1) AND trigger_event = 'deployment_protection_rule'
          AND state->'trigger'->'payload'->>'deployment_callback_url' = $2`,
      [repository, callback],
    );
    if (started.rows.length === 0) {
      await answerGate(tx, {
        installationId,
        repository,
        workflowRunId,
        environment,
        state: "rejected",
        comment:
          `No live Baton flow of ${repository} handles deployment protection rules: add ` +
          "`deployment_protection_rule: {}` under `on: github:` of a flow on the default branch.",
        key: `deployment-gate/${event.id}`,
      });
      return;
    }
    for (const { id } of started.rows) {
      await tx.query(
        `INSERT INTO github_deployment_gates
           (run_id, installation_id, repository, environment, workflow_run_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (run_id) DO NOTHING`,
        [id, installationId, repository, environment, workflowRunId, new Date(app.now())],
      );
      await tx.notify(CHANNELS.gates, id);
    }
  });
};

export interface GateVerdict {
  state: "approved" | "rejected";
  comment: string;
}

/** What to answer for a run now, or undefined while it has not decided. */
export function gateVerdict(
  definition: FlowDefinition,
  state: RunState,
  runLabel: string,
  url: string | undefined,
): GateVerdict | undefined {
  const link = url ? ` ${url}` : "";
  const approvals = Object.keys(definition.steps).filter(
    (id) => definition.steps[id]?.approval !== undefined,
  );
  const decided = approvals.map((id) => state.steps[id]);
  const refused = decided.find(
    (step) => step?.status === "done" && step.result !== "success" && step.result !== "skipped",
  );
  if (refused) {
    return {
      state: "rejected",
      comment: `${runLabel}: \`${refused.id}\` ${refused.reason ?? refused.result ?? "failed"}.${link}`,
    };
  }
  if (approvals.length > 0 && decided.every((step) => step?.status === "done")) {
    const by = decided
      .map((step) => step?.outputs.approvers)
      .filter((who): who is string => who !== undefined && who !== "");
    return {
      state: "approved",
      comment: `${runLabel}: approved${by.length > 0 ? ` by ${by.join(", ")}` : ""}.${link}`,
    };
  }
  if (TERMINAL_RUN_STATUSES.includes(state.status)) {
    return state.status === "success"
      ? { state: "approved", comment: `${runLabel} succeeded.${link}` }
      : {
          state: "rejected",
          comment: `${runLabel} ended ${state.status}${state.reason ? `: ${state.reason}` : ""}.${link}`,
        };
  }
  return undefined;
}

interface OpenGate {
  run_id: string;
  installation_id: string | number;
  repository: string;
  environment: string;
  workflow_run_id: string | number;
}

/** Answer every open gate whose run has decided. Returns how many were answered. */
export async function answerDecidedGates(app: GitHubApp): Promise<number> {
  return (await answerOpenGates(app)).answered;
}

/** `answerDecidedGates`, also saying how many gates were open when it looked. */
async function answerOpenGates(app: GitHubApp): Promise<{ answered: number; open: number }> {
  const open = await app.store.query<OpenGate>(
    `SELECT run_id, installation_id, repository, environment, workflow_run_id
       FROM github_deployment_gates WHERE answered_state IS NULL ORDER BY created_at LIMIT 100`,
  );
  let answered = 0;
  for (const gate of open.rows) {
    const run = await app.store.query<{
      state: RunState | null;
      flow_version_id: string;
      flow: string;
      number: number;
    }>(
      `SELECT ${RUN_STATE_SQL} AS state, r.flow_version_id, r.flow, r.number FROM runs AS r WHERE r.id = $1`,
      [gate.run_id],
    );
    const row = run.rows[0];
    if (!row?.state) continue;
    const version = await getFlowVersion(app.store, row.flow_version_id);
    if (!version) continue;
    const url = app.publicUrl ? `${app.publicUrl}/runs/${gate.run_id}` : undefined;
    const verdict = gateVerdict(
      version.definition,
      row.state,
      `Baton ${row.flow}#${row.number}`,
      url,
    );
    if (!verdict) continue;
    await app.store.transaction(async (tx) => {
      const claimed = await tx.query(
        `UPDATE github_deployment_gates SET answered_state = $2, answered_at = $3
          WHERE run_id = $1 AND answered_state IS NULL`,
        [gate.run_id, verdict.state, new Date(app.now())],
      );
      if ((claimed.rowCount ?? 0) === 0) return; // another process answered
      await answerGate(tx, {
        installationId: Number(gate.installation_id),
        repository: gate.repository,
        workflowRunId: Number(gate.workflow_run_id),
        environment: gate.environment,
        ...verdict,
        key: `deployment-gate/${gate.run_id}`,
      });
      answered += 1;
    });
  }
  return { answered, open: open.rows.length };
}

async function answerGate(
  tx: Queryable & Transaction,
  answer: {
    installationId: number;
    repository: string;
    workflowRunId: number;
    environment: string;
    state: "approved" | "rejected";
    comment: string;
    key: string;
  },
): Promise<void> {
  const [owner = "", repo = ""] = answer.repository.split("/");
  await enqueueGitHubRequest(tx, {
    installationId: answer.installationId,
    route: GATE_ROUTE,
    params: {
      owner,
      repo,
      run_id: answer.workflowRunId,
      environment_name: answer.environment,
      state: answer.state,
      // GitHub shows the comment on the deployment; keep it within its limits.
      comment: answer.comment.slice(0, 1000),
    },
    key: answer.key,
  });
}

/** Without open gates, the longest sleep in case a notification was lost. */
const IDLE_MS = 5 * 60 * 1000;

/**
 * Look at the open gates every `pollMs` while there are some; with none, sleep until a
 * gate is recorded (`CHANNELS.gates`, from any process on Postgres).
 */
export function startGateAnswers(app: GitHubApp, pollMs: number): BackgroundJob {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  let looking = false;
  // A gate recorded while looking may have been missed by the look: look again after it.
  let again = false;
  const tick = () => {
    clearTimeout(timer);
    if (stopped) return;
    if (looking) {
      again = true;
      return;
    }
    looking = true;
    again = false;
    let open = 0;
    running = answerOpenGates(app)
      .then((result) => {
        open = result.open;
      })
      .catch((error: unknown) => {
        open = 1; // look again soon
        app.log.error("answering deployment protection rules failed; trying again", { error });
      })
      .finally(() => {
        looking = false;
        if (!stopped) timer = setTimeout(tick, again ? 0 : open > 0 ? pollMs : IDLE_MS);
      });
  };
  const listening = app.store.listen(CHANNELS.gates, tick).catch(() => undefined);
  timer = setTimeout(tick, 0);
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await (
        await listening
      )?.();
    },
  };
}
