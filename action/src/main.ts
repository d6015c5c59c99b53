/**
 * The action's work, on checked input (see action-input.ts): report a step's outputs,
 * send a signal, or start a run and optionally wait for it. Failures are thrown, with
 * their facts, for runner.ts to word.
 */
import type { ActionInput, Auth, WaitOptions } from "./action-input.js";
import { BatonClient } from "./baton-client.js";
import { formatDuration } from "./duration.js";
import { RunNotSucceededError, UnexpectedAnswerError, WaitTimeoutError } from "./errors.js";

/** What the action tells the job: GitHub's toolkit in the action. */
export interface Reporter {
  info(message: string): void;
  warning(message: string): void;
  setOutput(name: string, value: string): void;
}

export interface MainOptions {
  /** (Default: BatonClient's: 4 tries, 1 s doubling) */
  retry?: { attempts: number; backoffMs: number };
  /** This job's Actions OIDC token for an audience (`core.getIDToken`). (Default: none) */
  idToken?: (audience: string) => Promise<string>;
}

/** The bearer token of a request: the one given, or the job's OIDC token for Baton. */
async function bearerOf(auth: Auth, baton: string, options: MainOptions): Promise<string> {
  switch (auth.kind) {
    case "step-token":
      return auth.token.raw;
    case "github-token":
      return auth.token;
    case "oidc":
      if (!options.idToken) throw new Error("no way to ask for an Actions OIDC token here");
      // Baton expects its own URL as the audience (a token for another service is refused).
      return options.idToken(baton);
  }
}

/** The run statuses after which nothing changes (Baton's TERMINAL_RUN_STATUSES). */
const TERMINAL_STATUSES = new Set(["success", "failure", "cancelled"]);

/** `start`'s own outputs; a run output with one of these names is only in `outputs`. */
const START_OUTPUTS = new Set(["run-id", "status", "url", "outputs"]);

interface RunSnapshot {
  id: string;
  status: string;
  outputs: Record<string, string>;
  reason: string | undefined;
  url: string;
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A run as `GET /api/runs/{id}` answers it: `{ id, state: { status, outputs, reason, meta } }`. */
function snapshotOf(answer: unknown, baseUrl: string, where: string): RunSnapshot {
  if (!isObject(answer) || typeof answer.id !== "string")
    throw new UnexpectedAnswerError(where, "no run id in the answer");
  const state = isObject(answer.state) ? answer.state : answer;
  if (typeof state.status !== "string")
    throw new UnexpectedAnswerError(where, "no run status in the answer");
  const outputs: Record<string, string> = {};
  if (isObject(state.outputs))
    for (const [name, value] of Object.entries(state.outputs))
      outputs[name] = typeof value === "string" ? value : JSON.stringify(value);
  const meta = isObject(state.meta) ? state.meta : {};
  return {
    id: answer.id,
    status: state.status,
    outputs,
    reason: typeof state.reason === "string" ? state.reason : undefined,
    url:
      typeof meta.url === "string" && meta.url !== ""
        ? meta.url
        : `${baseUrl}/api/runs/${encodeURIComponent(answer.id)}`,
  };
}

async function reportOutputs(
  input: Extract<ActionInput, { mode: "outputs" }>,
  client: BatonClient,
  reporter: Reporter,
): Promise<void> {
  const { payload } = input.stepToken;
  await client.call({
    method: "POST",
    path: "/api/steps/outputs",
    token: input.stepToken.raw,
    body: { outputs: input.outputs },
    purpose: { operation: "report-outputs", stepToken: payload },
  });
  const names = Object.keys(input.outputs);
  reporter.info(
    `Reported ${names.length} output(s) to Baton (${client.baseUrl}), run ${payload.run}, ` +
      `step ${payload.step}, attempt ${payload.attempt}` +
      (names.length > 0 ? `: ${names.join(", ")}` : "."),
  );
}

async function sendSignal(
  input: Extract<ActionInput, { mode: "signal" }>,
  client: BatonClient,
  reporter: Reporter,
  options: MainOptions,
): Promise<void> {
  const { auth } = input;
  await client.call({
    method: "POST",
    path: `/api/runs/${encodeURIComponent(input.run)}/signals/${encodeURIComponent(input.signal)}`,
    token: await bearerOf(auth, client.baseUrl, options),
    body: { payload: input.payload },
    purpose: {
      operation: "signal",
      run: input.run,
      signal: input.signal,
      ...(auth.kind === "step-token" ? { stepToken: auth.token.payload } : {}),
    },
  });
  reporter.info(`Sent signal '${input.signal}' to Baton run ${input.run}.`);
}

async function readRun(client: BatonClient, token: string, runId: string): Promise<RunSnapshot> {
  const path = `/api/runs/${encodeURIComponent(runId)}`;
  const answer = await client.call({
    method: "GET",
    path,
    token,
    purpose: { operation: "read-run", run: runId },
  });
  return snapshotOf(answer, client.baseUrl, `${client.baseUrl}${path}`);
}

async function waitForRun(
  first: RunSnapshot,
  wait: WaitOptions,
  client: BatonClient,
  token: () => Promise<string>,
  reporter: Reporter,
): Promise<RunSnapshot> {
  const started = Date.now();
  let run = first;
  while (!TERMINAL_STATUSES.has(run.status)) {
    const left = started + wait.timeoutMs - Date.now();
    if (left <= 0) throw new WaitTimeoutError(run.id, run.status, wait.timeoutMs, run.url);
    await sleep(Math.min(wait.pollIntervalMs, left));
    const previous = run.status;
    run = await readRun(client, await token(), run.id);
    if (run.status !== previous) reporter.info(`Run ${run.id} is ${run.status}.`);
  }
  return run;
}

async function startRun(
  input: Extract<ActionInput, { mode: "start" }>,
  client: BatonClient,
  reporter: Reporter,
  options: MainOptions,
): Promise<void> {
  // One token for the start and every poll: an OIDC token lives minutes, a wait may not.
  const token = () => bearerOf(input.auth, client.baseUrl, options);
  const [owner = "", repo = ""] = input.repository.split("/");
  const path =
    `/api/repos/${encodeURIComponent(owner)}/${encodeURIComponent(repo)}` +
    `/flows/${encodeURIComponent(input.flow)}/runs`;
  const started = await client.call({
    method: "POST",
    path,
    token: await token(),
    body: { inputs: input.inputs },
    purpose: { operation: "start", repository: input.repository, flow: input.flow },
  });
  if (!isObject(started) || typeof started.id !== "string")
    throw new UnexpectedAnswerError(`${client.baseUrl}${path}`, "no run id in the answer");
  // The start answer names the run; its status is the run's, read like any later poll.
  let run = await readRun(client, await token(), started.id);
  reporter.info(`Started ${input.repository} flow ${input.flow}: run ${run.id} (${run.url}).`);
  reporter.setOutput("run-id", run.id);
  reporter.setOutput("status", run.status);
  reporter.setOutput("url", run.url);
  if (input.wait === undefined) return;

  reporter.info(
    `Waiting up to ${formatDuration(input.wait.timeoutMs)} for run ${run.id} to end ` +
      `(polling every ${formatDuration(input.wait.pollIntervalMs)}).`,
  );
  run = await waitForRun(run, input.wait, client, token, reporter);
  reporter.setOutput("status", run.status);
  for (const [name, value] of Object.entries(run.outputs)) {
    if (START_OUTPUTS.has(name))
      reporter.warning(
        `The run's output '${name}' has the name of one of this action's own outputs: ` +
          "read it from `outputs` (JSON), e.g. fromJSON(steps.<id>.outputs.outputs)['" +
          `${name}'].`,
      );
    else reporter.setOutput(name, value);
  }
  reporter.setOutput("outputs", JSON.stringify(run.outputs));
  if (run.status !== "success")
    throw new RunNotSucceededError(run.id, run.status, run.reason, run.url);
  reporter.info(`Run ${run.id} succeeded with ${Object.keys(run.outputs).length} output(s).`);
}

export async function main(
  input: ActionInput,
  reporter: Reporter,
  options: MainOptions = {},
): Promise<void> {
  const client = new BatonClient(input.baton.url, {
    ...(options.retry ?? {}),
    onRetry: (why, delayMs) => reporter.warning(`${why}; retrying in ${formatDuration(delayMs)}.`),
  });
  switch (input.mode) {
    case "outputs":
      return reportOutputs(input, client, reporter);
    case "signal":
      return sendSignal(input, client, reporter, options);
    case "start":
      return startRun(input, client, reporter, options);
  }
}
