/**
 * `agent:` steps: a coding-agent CLI from the runner's configuration (a command template
 * per agent name), run like a `run` step in the step's workspace (checked out first when
 * the step says `checkout: true`), so that timeouts, cancellation and the process-group
 * kill are the same. Its transcript is the step's log; its outputs:
 *
 * - `message`: its final message: what it printed on stdout, trimmed (the last 64 KiB),
 *   unless it wrote `message` to $BATON_OUTPUT itself;
 * - `changed-files`: the files it changed, added or deleted, one per line;
 * - `branch` and `commit`: the branch it created or committed on, and HEAD if it committed.
 *
 * The budget reaches the agent as `{budget_usd}` / `{max_turns}` in the template and as
 * BATON_AGENT_BUDGET_USD / BATON_AGENT_MAX_TURNS; the step's `timeout` bounds it.
 */
import type { Json } from "../engine/types.js";
import type { Executor, StepExecution } from "./executor.js";
import type { LocalShellOptions } from "./local-shell.js";
import { localShell } from "./local-shell.js";
import type { RunnerConfig } from "./runner-config.js";
import { agentFor } from "./runner-config.js";
import { baselineOf, changesSince, currentBranch } from "./workspace-git.js";

const MESSAGE_BYTES = 64 * 1024;

/** Quote for a POSIX shell: the prompt is data, never code. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

export function agentExecutor(config: RunnerConfig, shell: LocalShellOptions = {}): Executor {
  return async (execution) => {
    const spec = asObject(execution.spec);
    const agentSpec = asObject(spec.agent ?? null);
    const prompt = typeof agentSpec.prompt === "string" ? agentSpec.prompt : undefined;
    if (prompt === undefined)
      return {
        outcome: "failure",
        outputs: {},
        retryable: false,
        error: "the step has no agent.prompt",
      };
    const use = typeof agentSpec.use === "string" ? agentSpec.use : undefined;
    const chosen = agentFor(config, use);
    if (!chosen) {
      const names = Object.keys(config.agents);
      return {
        outcome: "failure",
        outputs: {},
        retryable: false,
        error:
          use !== undefined
            ? `this runner has no agent "${use}" (its agents: ${names.join(", ") || "none"}); add it under agents: in the runner's configuration`
            : `this runner has ${names.length === 0 ? "no agents" : "several agents and no default"}; configure agents: (one with default: true) or name one with agent.use`,
      };
    }
    const budget = asObject(agentSpec.budget ?? null);
    const usd = typeof budget.usd === "number" ? String(budget.usd) : "";
    const turns = typeof budget.turns === "number" ? String(budget.turns) : "";
    let stdout = "";
    let baseline = "";
    let baselineBranch: string | undefined;
    // The agent runs in the workspace (its working directory, also $BATON_WORKSPACE).
    const command = chosen.agent.command.replace(
      /\{(prompt|max_turns|budget_usd)\}/g,
      (_all, name: string) =>
        shellQuote(name === "prompt" ? prompt : name === "max_turns" ? turns : usd),
    );
    execution.log("system", `Agent ${chosen.name}: ${chosen.agent.command}\n`);
    return localShell({
      ...shell,
      prepare: async (dir, inner) => {
        await shell.prepare?.(dir, inner);
        baseline = await baselineOf(dir);
        baselineBranch = await currentBranch(dir);
      },
      finish: async (dir, outcome) => {
        const outputs = { ...outcome.outputs };
        outputs.message ??= stdout.trim().slice(-MESSAGE_BYTES);
        try {
          const changes = await changesSince(dir, baseline);
          outputs["changed-files"] ??= changes.files.join("\n");
          // The branch only when the agent made one (or committed on one).
          if (changes.branch !== undefined && (changes.branch !== baselineBranch || changes.commit))
            outputs.branch ??= changes.branch;
          if (changes.commit !== undefined) outputs.commit ??= changes.commit;
        } catch (error: unknown) {
          execution.log(
            "system",
            `Could not list the agent's changes: ${(error as Error).message}\n`,
          );
        }
        return { ...outcome, outputs };
      },
    })({
      ...execution,
      spec: { ...spec, run: command },
      env: {
        ...execution.env,
        BATON_AGENT: chosen.name,
        BATON_AGENT_PROMPT: prompt,
        ...(usd ? { BATON_AGENT_BUDGET_USD: usd } : {}),
        ...(turns ? { BATON_AGENT_MAX_TURNS: turns } : {}),
      },
      log: (stream, text) => {
        if (stream === "stdout") stdout = (stdout + text).slice(-2 * MESSAGE_BYTES);
        execution.log(stream, text);
      },
    });
  };
}

function asObject(value: Json): Record<string, Json> {
  return value !== null && typeof value === "object" && !Array.isArray(value) ? value : {};
}

export type { StepExecution };
