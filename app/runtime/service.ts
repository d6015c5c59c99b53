/**
 * What the CLI (and the HTTP API) can do to runs. Every operation that changes a run is
 * one transaction: it appends the input event and the engine's decision together, so the
 * runtime only has to execute what was decided.
 */
import { resolve } from "node:path";
import type { Diagnostic } from "../../flows-schema/diagnostic.js";
import { flowNameFromFile, parseFlow } from "../../flows-schema/parse-flow.js";
import { resolveInputs } from "../engine/index.js";
import type {
  ApprovalEvaluated,
  Json,
  RunEvent,
  RunState,
  RunStatus,
  Trigger,
} from "../engine/types.js";
import { TERMINAL_RUN_STATUSES } from "../engine/types.js";
import type { Database, Transaction } from "../store/database.js";
import { CHANNELS } from "../store/database.js";
import { loadEvents } from "../store/events.js";
import type { NewFlowVersion } from "../store/flow-versions.js";
import { saveFlowVersion } from "../store/flow-versions.js";
import type { FlowVersion, Run, RunGitHub, Step, StepLogChunk } from "../store/model.js";
import { findRunsByIdPrefix, findRunsByNumber, getRunById, listRuns } from "../store/runs.js";
import { readLogs } from "../store/step-logs.js";
import { getSteps } from "../store/steps.js";
import { sha256 } from "./content-hash.js";
import {
  AmbiguousRunRefError,
  FlowInvalidError,
  FlowVersionNotFoundError,
  InvalidInputsError,
  RunNotFoundError,
} from "./errors.js";
import type { ApprovalOptions } from "./run-door.js";
import { RunDoor } from "./run-door.js";

export type { ApprovalOptions } from "./run-door.js";

export interface StartRunRequest {
  /** A local flow file (path and content), or a stored version. */
  flowFile: { path: string; source: string } | { versionId: string };
  /** Input values; strings are coerced to the inputs' types. */
  inputs?: Record<string, Json>;
  /** Who starts the run (a GitHub login, or the local user name). */
  actor: string;
  /** (Default: { event: "manual", payload: {} }) */
  trigger?: Trigger;
  /** For a repository's flow: where GitHub shows the run and who acts for it. */
  github?: RunGitHub;
}

export interface StartedRun {
  runId: string;
  number: number;
  flow: string;
  /** `queued` when its concurrency group made it wait. */
  status: RunStatus;
  /** Warnings from parsing the flow file. */
  warnings: Diagnostic[];
}

export interface RunDetails {
  run: Run;
  state: RunState | undefined;
  steps: Step[];
  events: RunEvent[];
  version: FlowVersion;
}

export interface WaitOptions {
  /** Called whenever the run changes, with its latest details. */
  onProgress?: (details: RunDetails) => void;
  /** Also return when the run waits for people (an approval or a signal) and nothing runs. (Default: false) */
  untilWaiting?: boolean;
  signal?: AbortSignal;
  /** How often to look without a notification. (Default: 2000 ms) */
  pollMs?: number;
}

export class BatonService {
  readonly #db: Database;
  /** The door every change goes through; give the same one to the runtime (`RuntimeOptions.door`). */
  readonly door: RunDoor;
  readonly #now: () => number;

  constructor(options: { store: Database; now?: () => number; door?: RunDoor }) {
    this.#db = options.store;
    this.#now = options.now ?? Date.now;
    this.door = options.door ?? new RunDoor();
  }

  /**
   * Start a run of a local flow file (stored as a version pinned to its path and the
   * sha256 of its content) or of a stored version. Throws FlowInvalidError,
   * InvalidInputsError, ConcurrencyRejectedError (nothing stored), ConcurrencyGroupError.
   */
  async startRun(request: StartRunRequest): Promise<StartedRun> {
    return this.#db.transaction((tx) => this.startRunIn(tx, request));
  }

  /**
   * `startRun` in the caller's transaction: the run exists if and only if the caller's
   * other writes commit (a webhook delivery marked processed, a schedule tick claimed).
   */
  async startRunIn(tx: Transaction, request: StartRunRequest): Promise<StartedRun> {
    let version: FlowVersion | undefined;
    let warnings: Diagnostic[] = [];
    let pending: NewFlowVersion | undefined;
    if ("versionId" in request.flowFile) {
      version = await this.door.flows.get(tx, request.flowFile.versionId);
      if (!version) throw new FlowVersionNotFoundError(request.flowFile.versionId);
    } else {
      const path = resolve(request.flowFile.path);
      const parsed = parseFlow(request.flowFile.source, request.flowFile.path);
      if (!parsed.flow) throw new FlowInvalidError(request.flowFile.path, parsed.diagnostics);
      warnings = parsed.diagnostics.filter((d) => d.severity === "warning");
      pending = {
        sourceKind: "local",
        repository: "local",
        path,
        sha: sha256(request.flowFile.source),
        name: flowNameFromFile(path),
        definition: parsed.flow,
        source: request.flowFile.source,
      };
    }
    const definition = version?.definition ?? pending?.definition;
    const name = version?.name ?? pending?.name ?? "";
    if (!definition) throw new Error("unreachable: no flow definition");
    const inputs = resolveInputs(definition, request.inputs ?? {});
    if (!inputs.ok) throw new InvalidInputsError(name, inputs.errors);
    const now = this.#now();
    const stored = version ?? (await saveFlowVersion(tx, pending as NonNullable<typeof pending>));
    const advanced = await this.door.startRun(
      tx,
      {
        version: stored,
        inputs: inputs.inputs,
        actor: request.actor,
        trigger: request.trigger ?? { event: "manual", payload: {} },
        ...(request.github ? { github: request.github } : {}),
      },
      now,
    );
    const state = advanced.decision.state;
    return {
      runId: state.meta.id,
      number: state.meta.number,
      flow: name,
      status: state.status,
      warnings,
    };
  }

  /** Newest first. */
  listRuns(
    filter: { flow?: string; status?: RunStatus | RunStatus[]; limit?: number } = {},
  ): Promise<Run[]> {
    return listRuns(this.#db, filter);
  }

  /** `ref`: a run id, a unique prefix of one (at least 4 characters), or `<flow>#<number>`. */
  async resolveRun(ref: string): Promise<Run> {
    const numbered = /^(.+)#(\d+)$/.exec(ref);
    let runs: Run[];
    if (numbered) {
      runs = await findRunsByNumber(this.#db, numbered[1] ?? "", Number(numbered[2]));
    } else if (/^[0-9a-f-]{36}$/i.test(ref)) {
      const run = await getRunById(this.#db, ref.toLowerCase());
      runs = run ? [run] : [];
    } else if (/^[0-9a-f-]{4,}$/i.test(ref)) {
      runs = await findRunsByIdPrefix(this.#db, ref.toLowerCase(), 5);
    } else {
      runs = [];
    }
    if (runs.length === 0) throw new RunNotFoundError(ref);
    if (runs.length > 1)
      throw new AmbiguousRunRefError(
        ref,
        runs.map((run) => `${run.flow}#${run.number} (${run.id})`),
      );
    return runs[0] as Run;
  }

  async getRun(ref: string): Promise<RunDetails> {
    const run = await this.resolveRun(ref);
    const [steps, events, version] = await Promise.all([
      getSteps(this.#db, run.id),
      loadEvents(this.#db, run.id),
      this.door.flows.get(this.#db, run.flowVersionId),
    ]);
    return { run, state: run.state, steps, events, version };
  }

  /** Output chunks in order; pass the last `seq` seen as `afterSeq` to follow. */
  async getLogs(
    runRef: string,
    options: { step?: string; afterSeq?: number; limit?: number } = {},
  ): Promise<StepLogChunk[]> {
    const run = await this.resolveRun(runRef);
    return readLogs(this.#db, { runId: run.id, ...options });
  }

  /**
   * Approve a waiting approval step. Returns how the engine judged it: `counted`, or not
   * with the `reason` (e.g. self-approval not allowed). Throws StepNotWaitingError.
   */
  approve(
    runRef: string,
    step: string,
    options: ApprovalOptions,
  ): Promise<ApprovalEvaluated | undefined> {
    return this.#submitApproval(runRef, step, "approve", options);
  }

  reject(
    runRef: string,
    step: string,
    options: ApprovalOptions,
  ): Promise<ApprovalEvaluated | undefined> {
    return this.#submitApproval(runRef, step, "reject", options);
  }

  async #submitApproval(
    runRef: string,
    step: string,
    decision: "approve" | "reject",
    options: ApprovalOptions,
  ): Promise<ApprovalEvaluated | undefined> {
    const run = await this.resolveRun(runRef);
    return this.#db.transaction((tx) => this.submitApprovalIn(tx, run.id, step, decision, options));
  }

  /**
   * `approve` or `reject` in the caller's transaction, for a run id (a GitHub delivery's
   * commit: a check-run button, a review). Reads nothing outside `tx`.
   */
  async submitApprovalIn(
    tx: Transaction,
    runId: string,
    step: string,
    decision: "approve" | "reject",
    options: ApprovalOptions,
  ): Promise<ApprovalEvaluated | undefined> {
    return this.door.submitApproval(tx, runId, step, decision, options, this.#now());
  }

  /** Send a signal to a run; a `wait: { signal }` step (now or later) consumes it. */
  async signal(runRef: string, name: string, payload: Json, by: string): Promise<void> {
    const run = await this.resolveRun(runRef);
    await this.door.signal(this.#db, run.id, { name, payload, by }, this.#now());
  }

  async cancel(runRef: string, reason: string, by: string): Promise<RunStatus> {
    const run = await this.resolveRun(runRef);
    return this.#db.transaction((tx) => this.cancelIn(tx, run.id, reason, by));
  }

  /** `cancel` in the caller's transaction, for a run id. */
  async cancelIn(tx: Transaction, runId: string, reason: string, by: string): Promise<RunStatus> {
    return this.door.cancel(tx, runId, { reason, by }, this.#now());
  }

  /** Rerun a finished run from `fromStep` (Default: every step that did not succeed). */
  async retry(runRef: string, options: { fromStep?: string; by: string }): Promise<RunStatus> {
    const run = await this.resolveRun(runRef);
    return this.#db.transaction((tx) => this.retryIn(tx, run.id, options));
  }

  /** `retry` in the caller's transaction, for a run id. */
  async retryIn(
    tx: Transaction,
    runId: string,
    options: { fromStep?: string; by: string },
  ): Promise<RunStatus> {
    return this.door.retry(tx, runId, options, this.#now());
  }

  /**
   * Resolve when the run has finished (or, with `untilWaiting`, waits for people and
   * nothing else runs). Woken by notifications, with polling as a fallback.
   */
  async waitForRun(runRef: string, options: WaitOptions = {}): Promise<RunDetails> {
    const run = await this.resolveRun(runRef);
    let poke: (() => void) | undefined;
    // Watch (or listen) before reading, so that no change in between goes unseen.
    const unlisten = this.#db.watchRun
      ? await this.#db.watchRun(run.id, () => poke?.())
      : await this.#db.listen(CHANNELS.runs, (payload) => {
          if (payload === "" || payload === run.id) poke?.();
        });
    try {
      let lastSeq = -1;
      for (;;) {
        options.signal?.throwIfAborted();
        const changed = new Promise<void>((resolvePoke) => (poke = resolvePoke));
        const details = await this.getRun(run.id);
        if (details.run.lastSeq !== lastSeq) {
          lastSeq = details.run.lastSeq;
          options.onProgress?.(details);
        }
        if (TERMINAL_RUN_STATUSES.includes(details.run.status)) return details;
        if (options.untilWaiting && waitsForPeople(details)) return details;
        let timer: NodeJS.Timeout | undefined;
        const aborted = new Promise<void>((resolveAbort) =>
          options.signal?.addEventListener("abort", () => resolveAbort(), { once: true }),
        );
        await Promise.race([
          changed,
          aborted,
          new Promise<void>(
            (resolveTimer) => (timer = setTimeout(resolveTimer, options.pollMs ?? 2000)),
          ),
        ]);
        clearTimeout(timer);
      }
    } finally {
      await unlisten();
    }
  }
}

/** Some step waits for an approval or a signal, and no step runs or is about to retry. */
export function waitsForPeople(details: RunDetails): boolean {
  const steps = details.version.definition.steps;
  const states = Object.values(details.state?.steps ?? {});
  const busy = states.some((step) => step.status === "running" || step.status === "retrying");
  const waiting = states.some(
    (step) =>
      step.status === "waiting" &&
      (steps[step.id]?.approval !== undefined || steps[step.id]?.wait?.signal !== undefined),
  );
  return waiting && !busy;
}
