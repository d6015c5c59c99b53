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
 *
 * The prompt is a value (expressions expanded: an issue title, a payload), so it never
 * becomes part of the command's text (DESIGN rule 11): `{prompt}` becomes a reference to
 * "$BATON_AGENT_PROMPT", and the prompt travels in the environment. The command text is a
 * function of the runner's template alone. (Argv without a shell would do too, but the
 * template is the runner owner's shell command, pipes and all, and running it like a `run`
 * step keeps one way of starting, stopping and logging a process.) A placeholder outside
 * quotes or inside double quotes gives the agent the prompt as one argument; inside single
 * quotes the reference closes and reopens them. Where no variable can expand (a quoted
 * here-document, `$'…'`) the step fails, saying how to fix the template.
 */
import type { HoleContext } from "../../flows-schema/shell-quoting.js";
import { expands, holeContexts } from "../../flows-schema/shell-quoting.js";
import type { Json } from "../engine/types.js";
import type { Executor, StepExecution } from "./executor.js";
import type { LocalShellOptions } from "./local-shell.js";
import { localShell } from "./local-shell.js";
import type { RunnerConfig } from "./runner-config.js";
import { agentFor } from "./runner-config.js";
import { baselineOf, changesSince, currentBranch } from "./workspace-git.js";

const MESSAGE_BYTES = 64 * 1024;

const PLACEHOLDERS: Record<string, string> = {
  prompt: "BATON_AGENT_PROMPT",
  max_turns: "BATON_AGENT_MAX_TURNS",
  budget_usd: "BATON_AGENT_BUDGET_USD",
};

/**
 * The agent's command: the template with each placeholder replaced by a reference to the
 * variable that carries its value, fitted to the quoting around it. Depends on the
 * template only. Throws where a placeholder sits where no variable expands.
 */
export function agentCommand(template: string): string {
  const pieces: (string | null)[] = [];
  const names: string[] = [];
  let last = 0;
  for (const match of template.matchAll(/\{(prompt|max_turns|budget_usd)\}/g)) {
    pieces.push(template.slice(last, match.index), null);
    names.push(match[1] as string);
    last = match.index + match[0].length;
  }
  pieces.push(template.slice(last));
  const contexts = holeContexts(pieces);
  let command = "";
  let hole = 0;
  for (const piece of pieces) {
    if (piece !== null) {
      command += piece;
      continue;
    }
    const name = names[hole] as string;
    const reference = `\${${PLACEHOLDERS[name] ?? ""}}`;
    const context = contexts[hole] as HoleContext;
    hole += 1;
    if (context.kind === "bare") command += `"${reference}"`;
    else if (context.kind === "single") command += `'"${reference}"'`;
    else if (expands(context)) command += reference;
    else
      throw new Error(
        `the agent command template puts {${name}} where no shell variable expands (${context.kind === "ansi-c" ? "inside $'…'" : "in a here-document with a quoted delimiter"}); write it outside quotes, e.g. "claude -p {prompt}", in the runner's configuration`,
      );
  }
  return command;
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
    let command: string;
    try {
      command = agentCommand(chosen.agent.command);
    } catch (error: unknown) {
      return { outcome: "failure", outputs: {}, retryable: false, error: (error as Error).message };
    }
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
        // Always set, so that a placeholder of an unset limit is "" (as the template expects).
        BATON_AGENT_PROMPT: prompt,
        BATON_AGENT_BUDGET_USD: usd,
        BATON_AGENT_MAX_TURNS: turns,
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
