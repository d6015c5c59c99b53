/**
 * The action's inputs, checked and resolved before any request is sent: a mistake in them
 * fails the step with its fix, and Baton is never called with half-understood input.
 */
import { readFileSync } from "node:fs";
import { parseDuration } from "./duration.js";
import { InputError } from "./errors.js";
import { parseJsonInput } from "./parse-json.js";
import { mergeOutputs, parseOutputsInput, readOutputsFile } from "./parse-outputs.js";
import type { StepToken } from "./step-token.js";
import { decodeStepToken } from "./step-token.js";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Baton's base URL and where it came from (error messages say which to fix). */
export interface BatonLocation {
  url: string;
  source: "the `url` input" | "the step token" | "BATON_URL";
}

/**
 * Who a request acts as: a step (its token), a GitHub user (their token), or this workflow
 * run (its Actions OIDC token, asked for when the request is made).
 */
export type Auth =
  | { kind: "step-token"; token: StepToken }
  | { kind: "github-token"; token: string }
  | { kind: "oidc" };

export interface WaitOptions {
  timeoutMs: number;
  pollIntervalMs: number;
}

export type ActionInput =
  | {
      mode: "outputs";
      baton: BatonLocation;
      stepToken: StepToken;
      outputs: Record<string, string>;
    }
  | {
      mode: "signal";
      baton: BatonLocation;
      auth: Auth;
      run: string;
      signal: string;
      payload: Json;
    }
  | {
      mode: "start";
      baton: BatonLocation;
      auth: Extract<Auth, { kind: "github-token" | "oidc" }>;
      repository: string;
      flow: string;
      inputs: Record<string, Json>;
      /** Absent: answer as soon as the run is started. */
      wait?: WaitOptions;
    };

/** Where inputs come from: GitHub's runner in the action, anything in a test. */
export interface InputSource {
  /** An input's value, trimmed unless `trim` is false; "" when not given. */
  input(name: string, options?: { trim: boolean }): string;
  env: Record<string, string | undefined>;
  cwd: string;
  /** Hides a secret in everything the job logs from now on. */
  mask(secret: string): void;
}

const MODES = ["outputs", "signal", "start"] as const;
type Mode = (typeof MODES)[number];

const isMode = (value: string): value is Mode => (MODES as readonly string[]).includes(value);

const NO_STEP_TOKEN =
  "No Baton step token: `step-token` is empty and this run's workflow_dispatch event has no " +
  "`baton` input. Declare it in the workflow (`on: workflow_dispatch: inputs: baton: " +
  "{ required: false }`), so that Baton can pass its token, or pass " +
  "`step-token: ${{ inputs.baton }}`.";

/**
 * The step token: the `step-token` input, else the `baton` input of the workflow_dispatch
 * event that started this run (Baton dispatches Baton steps with it).
 */
function stepTokenOf(source: InputSource): StepToken | undefined {
  const given = source.input("step-token");
  if (given !== "") {
    source.mask(given);
    return decodeStepToken(given, "`step-token` input");
  }
  const eventPath = source.env.GITHUB_EVENT_PATH;
  if (eventPath === undefined || eventPath === "") return undefined;
  let event: unknown;
  try {
    event = JSON.parse(readFileSync(eventPath, "utf8"));
  } catch (error: unknown) {
    throw new InputError(
      `Cannot read the event file GITHUB_EVENT_PATH (${eventPath}) for the \`baton\` input: ` +
        `${error instanceof Error ? error.message : String(error)}. Pass \`step-token\` instead.`,
      { cause: error },
    );
  }
  const inputs =
    event !== null && typeof event === "object" && "inputs" in event ? event.inputs : undefined;
  const baton =
    inputs !== null && typeof inputs === "object" && "baton" in inputs ? inputs.baton : undefined;
  if (typeof baton !== "string" || baton.trim() === "") return undefined;
  source.mask(baton.trim());
  return decodeStepToken(baton.trim(), "`baton` input of the workflow_dispatch event");
}

function batonLocation(source: InputSource, stepToken: StepToken | undefined): BatonLocation {
  const given = source.input("url");
  const env = source.env.BATON_URL ?? "";
  const [url, from]: [string, BatonLocation["source"]] =
    given !== ""
      ? [given, "the `url` input"]
      : stepToken !== undefined
        ? [stepToken.payload.url, "the step token"]
        : [env.trim(), "BATON_URL"];
  if (url === "")
    throw new InputError(
      "Baton's URL is unknown: pass `url` (e.g. https://baton.example.com), set BATON_URL, " +
        "or run as a Baton step (its step token carries the URL).",
    );
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new InputError(`Baton's URL '${url}' (from ${from}) is not a URL.`);
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:")
    throw new InputError(`Baton's URL '${url}' (from ${from}) must be http(s).`);
  return { url: url.replace(/\/+$/, ""), source: from };
}

function required(source: InputSource, name: string, mode: Mode, what: string): string {
  const value = source.input(name);
  if (value === "")
    throw new InputError(`\`${name}\` is required with \`mode: ${mode}\`: ${what}.`);
  return value;
}

/** Whether the job may ask GitHub for an OIDC token (`permissions: { id-token: write }`). */
function canAskOidc(source: InputSource): boolean {
  return Boolean(
    source.env.ACTIONS_ID_TOKEN_REQUEST_URL && source.env.ACTIONS_ID_TOKEN_REQUEST_TOKEN,
  );
}

function githubTokenOf(source: InputSource): string | undefined {
  const token = source.input("github-token");
  if (token === "") return undefined;
  source.mask(token);
  return token;
}

function jsonObjectInput(source: InputSource, name: string): Record<string, Json> {
  const text = source.input(name);
  if (text === "") return {};
  const value = parseJsonInput(text, `\`${name}\``);
  if (value === null || typeof value !== "object" || Array.isArray(value))
    throw new InputError(`\`${name}\` must be a JSON object, e.g. {"version": "1.2.3"}.`);
  return value as Record<string, Json>;
}

function booleanInput(source: InputSource, name: string): boolean {
  const text = source.input(name).toLowerCase();
  if (text === "" || text === "false") return false;
  if (text === "true") return true;
  throw new InputError(`\`${name}\` must be true or false (got '${source.input(name)}').`);
}

function readOutputsMode(source: InputSource): ActionInput {
  // Masked first: nothing below may print a token, but a mistake must not leak it either.
  const stepToken = stepTokenOf(source);
  const text = source.input("outputs", { trim: false });
  const file = source.input("outputs-file");
  if (text.trim() === "" && file === "")
    throw new InputError(
      "`mode: outputs` needs `outputs` (a JSON object, or name=value lines) or `outputs-file` " +
        "(a path to a JSON object).",
    );
  const outputs = mergeOutputs(
    file === "" ? {} : readOutputsFile(file, source.cwd),
    text.trim() === "" ? {} : parseOutputsInput(text),
  );
  if (stepToken === undefined) throw new InputError(NO_STEP_TOKEN);
  return { mode: "outputs", baton: batonLocation(source, stepToken), stepToken, outputs };
}

function readSignalMode(source: InputSource): ActionInput {
  const githubToken = githubTokenOf(source);
  const stepToken = stepTokenOf(source);
  const signal = required(source, "signal", "signal", "the name of the signal to send");
  const payloadText = source.input("payload");
  const payload = (payloadText === "" ? null : parseJsonInput(payloadText, "`payload`")) as Json;
  const givenRun = source.input("run");
  // A GitHub token may signal any run its user can write to; a step token only its own run.
  if (githubToken !== undefined) {
    const run = givenRun !== "" ? givenRun : stepToken?.payload.run;
    if (run === undefined)
      throw new InputError(
        "`run` is required with `mode: signal` outside a Baton step: the run's id, or flow#number.",
      );
    return {
      mode: "signal",
      baton: batonLocation(source, stepToken),
      auth: { kind: "github-token", token: githubToken },
      run,
      signal,
      payload,
    };
  }
  if (stepToken === undefined && canAskOidc(source)) {
    if (givenRun === "")
      throw new InputError(
        "`run` is required with `mode: signal` outside a Baton step: the run's id, or flow#number.",
      );
    return {
      mode: "signal",
      baton: batonLocation(source, undefined),
      auth: { kind: "oidc" },
      run: givenRun,
      signal,
      payload,
    };
  }
  if (stepToken === undefined)
    throw new InputError(
      "`mode: signal` needs a token: in a Baton step its step token (declare the `baton` " +
        "workflow_dispatch input, or pass `step-token`) signals the step's own run; to signal " +
        "another run, pass `github-token` (a user token or PAT with write on the run's repository).",
    );
  if (givenRun !== "" && givenRun !== stepToken.payload.run)
    throw new InputError(
      `A step token signals only its own run (${stepToken.payload.run}), not '${givenRun}': ` +
        "leave `run` empty, or pass `github-token` to signal another run.",
    );
  return {
    mode: "signal",
    baton: batonLocation(source, stepToken),
    auth: { kind: "step-token", token: stepToken },
    run: stepToken.payload.run,
    signal,
    payload,
  };
}

function readStartMode(source: InputSource): ActionInput {
  const githubToken = githubTokenOf(source);
  const flow = required(source, "flow", "start", "the name of the flow to start");
  const repository = source.input("repository") || (source.env.GITHUB_REPOSITORY ?? "");
  if (!/^[^/\s]+\/[^/\s]+$/.test(repository))
    throw new InputError(
      `\`repository\` must be owner/repo (got '${repository}'); it defaults to this workflow's repository.`,
    );
  const inputs = jsonObjectInput(source, "inputs");
  const wait = booleanInput(source, "wait");
  const timeoutMs = parseDuration(source.input("wait-timeout") || "6h", "wait-timeout");
  const pollIntervalMs = parseDuration(source.input("poll-interval") || "5s", "poll-interval");
  if (githubToken === undefined && !canAskOidc(source))
    throw new InputError(
      "`mode: start` needs an identity: give the job `permissions: { id-token: write }` (the " +
        "workflow then starts flows of its own repository as itself), or pass `github-token`, a " +
        `GitHub user token or PAT with write access to ${repository}, stored as a secret ` +
        "(e.g. `github-token: ${{ secrets.BATON_GITHUB_TOKEN }}`).",
    );
  // A Baton step may start another flow; its token then tells where Baton is, nothing more.
  const stepToken = source.input("url") === "" ? stepTokenOf(source) : undefined;
  return {
    mode: "start",
    baton: batonLocation(source, stepToken),
    auth:
      githubToken !== undefined ? { kind: "github-token", token: githubToken } : { kind: "oidc" },
    repository,
    flow,
    inputs,
    ...(wait ? { wait: { timeoutMs, pollIntervalMs } } : {}),
  };
}

/** The inputs, checked, with the tokens masked; an InputError says what to fix. */
export function readActionInput(source: InputSource): ActionInput {
  const mode = source.input("mode");
  if (mode === "")
    throw new InputError(
      "`mode` is required: outputs (report this step's outputs to Baton), signal (send a " +
        "signal to a run) or start (start a flow).",
    );
  if (!isMode(mode))
    throw new InputError(`\`mode\` must be outputs, signal or start (got '${mode}').`);
  switch (mode) {
    case "outputs":
      return readOutputsMode(source);
    case "signal":
      return readSignalMode(source);
    case "start":
      return readStartMode(source);
  }
}
