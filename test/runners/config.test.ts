/** The runner's configuration file and how steps are matched to runners' labels. */
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  advertisedLabels,
  agentFor,
  parseRunnerConfig,
  RunnerConfigError,
} from "../../app/runner/runner-config.js";
import { agentCommand } from "../../app/runner/agent.js";
import { runnerLabelsFor } from "../../app/runners/runner-queue.js";

test("runs-on becomes the labels a runner must have; steps without it stay local unless they are agents", () => {
  assert.deepEqual(runnerLabelsFor("run", { run: "x", "runs-on": "linux" }), ["linux"]);
  assert.deepEqual(runnerLabelsFor("run", { run: "x", "runs-on": ["self-hosted", "gpu"] }), [
    "self-hosted",
    "gpu",
  ]);
  assert.deepEqual(
    runnerLabelsFor("run", { run: "x", "runs-on": { ssh: "build-vm", labels: ["eu"] } }),
    ["eu", "ssh:build-vm"],
  );
  assert.equal(runnerLabelsFor("run", { run: "x" }), undefined);
  assert.deepEqual(runnerLabelsFor("run", { run: "x" }, { routeUnlabelled: true }), [
    "self-hosted",
  ]);
  assert.deepEqual(runnerLabelsFor("agent", { agent: { prompt: "p" } }), ["self-hosted"]);
  assert.equal(runnerLabelsFor("workflow", { workflow: "x.yml", "runs-on": "linux" }), undefined);
});

test("the configuration file: agents, SSH hosts (advertised as labels), and errors that say where", () => {
  const config = parseRunnerConfig({
    name: "box",
    labels: ["linux"],
    concurrency: 3,
    env: { TOKEN: 42 },
    agents: {
      claude: { command: "claude -p {prompt}", default: true },
      aider: "aider --message {prompt}",
    },
    ssh: { "build-vm": { host: "10.0.0.5", user: "ci", key: "/k", "host-key": "SHA256:abc" } },
  });
  assert.equal(config.concurrency, 3);
  assert.equal(config.env.TOKEN, "42");
  assert.deepEqual(config.ssh["build-vm"], {
    host: "10.0.0.5",
    username: "ci",
    privateKeyPath: "/k",
    hostKey: "SHA256:abc",
  });
  assert.deepEqual(advertisedLabels(config), ["linux", "ssh:build-vm"]);
  assert.equal(agentFor(config, undefined)?.name, "claude");
  assert.equal(agentFor(config, "aider")?.agent.command, "aider --message {prompt}");
  assert.equal(agentFor(config, "codex"), undefined);
  assert.throws(
    () => parseRunnerConfig({ concurency: 2 }, "runner.yml"),
    (error: unknown) => {
      assert.ok(error instanceof RunnerConfigError);
      assert.match(error.message, /^runner\.yml: unknown key "concurency"/);
      return true;
    },
  );
  assert.throws(() => parseRunnerConfig({ agents: { x: {} } }), /agents\.x\.command/);
  assert.throws(
    () => parseRunnerConfig({ ssh: { vm: { host: "h" } } }),
    /ssh\.vm needs host and user/,
  );
});

test("the agent's command is the template with references to variables: the prompt is data, never code", () => {
  assert.equal(
    agentCommand("claude -p {prompt} --max-turns {max_turns}"),
    'claude -p "${BATON_AGENT_PROMPT}" --max-turns "${BATON_AGENT_MAX_TURNS}"',
  );
  // Whatever quoting the runner's owner wrote around a placeholder, the prompt is one word.
  assert.equal(agentCommand('run "task: {prompt}"'), 'run "task: ${BATON_AGENT_PROMPT}"');
  assert.equal(agentCommand("run '{prompt}'"), `run ''"\${BATON_AGENT_PROMPT}"''`);
  assert.equal(
    agentCommand("codex exec {prompt} # {budget_usd}"),
    'codex exec "${BATON_AGENT_PROMPT}" # ${BATON_AGENT_BUDGET_USD}',
  );
  assert.throws(() => agentCommand("run $'{prompt}'"), /no shell variable expands.*outside quotes/);
});
