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
import { MASK, SecretMasker } from "../../app/runner/secret-masker.js";
import { runnerLabelsFor, waitingForRunner } from "../../app/runners/runner-queue.js";

test("runs-on becomes the labels a runner must have; every run and agent step is a runner's", () => {
  assert.deepEqual(runnerLabelsFor("run", { run: "x", "runs-on": "linux" }), ["linux"]);
  assert.deepEqual(runnerLabelsFor("run", { run: "x", "runs-on": ["self-hosted", "gpu"] }), [
    "self-hosted",
    "gpu",
  ]);
  assert.deepEqual(
    runnerLabelsFor("run", { run: "x", "runs-on": { ssh: "build-vm", labels: ["eu"] } }),
    ["eu", "ssh:build-vm"],
  );
  // Without runs-on: any runner (they all have self-hosted), never the host's own shell.
  assert.deepEqual(runnerLabelsFor("run", { run: "x" }), ["self-hosted"]);
  assert.deepEqual(runnerLabelsFor("run", { run: "x", "runs-on": [] }), ["self-hosted"]);
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

test("a step waiting for a runner says which labels and how to register one", () => {
  assert.equal(
    waitingForRunner(["self-hosted"], "acme/widgets"),
    "waiting for a runner with labels [self-hosted]; register one with " +
      "`baton runner-token create --repo acme/widgets` then `baton runner --token …`",
  );
  assert.equal(
    waitingForRunner(["linux", "ssh:vm"], undefined),
    "waiting for a runner with labels [self-hosted, linux, ssh:vm]; register one with " +
      "`baton runner-token create` then `baton runner --token … --label linux --config <a file with ssh: vm>`",
  );
});

test("secrets of the configuration are in the step's environment, and refused when too short or twice", () => {
  const config = parseRunnerConfig({
    env: { NODE_ENV: "production" },
    secrets: { NPM_TOKEN: "npm_abcdef", PORT_PIN: 12345 },
  });
  assert.deepEqual(config.env, {
    NODE_ENV: "production",
    NPM_TOKEN: "npm_abcdef",
    PORT_PIN: "12345",
  });
  assert.deepEqual(config.secrets, { NPM_TOKEN: "npm_abcdef", PORT_PIN: "12345" });
  assert.throws(
    () => parseRunnerConfig({ secrets: { PIN: "123" } }, "runner.yml"),
    /^RunnerConfigError: runner\.yml: secrets\.PIN is shorter than 4 characters/,
  );
  assert.throws(
    () => parseRunnerConfig({ env: { T: "abcd" }, secrets: { T: "abcd" } }),
    /T is under both env and secrets/,
  );
  assert.throws(() => parseRunnerConfig({ secrets: ["x"] }), /secrets must be a mapping/);
});

test("the masker masks secrets, lines of multi-line ones, and secrets cut across pieces of a stream", () => {
  const masker = new SecretMasker(["hunter22", "line-one\nline-two", "abc"]);
  assert.equal(masker.mask("pw=hunter22!"), `pw=${MASK}!`);
  assert.equal(masker.mask("a line-two b"), `a ${MASK} b`);
  assert.equal(
    masker.mask("abc stays: too short to be masked"),
    "abc stays: too short to be masked",
  );
  assert.deepEqual(masker.maskAll({ out: "hunter22hunter22" }), { out: MASK + MASK });
  const pieces: string[] = [];
  const stream = masker.stream((text) => pieces.push(text));
  for (const piece of ["the key is hun", "t", "er2", "2; next: hunt", "ing season\n", "hunte"])
    stream.write(piece);
  stream.end();
  const text = pieces.join("");
  assert.equal(text, `the key is ${MASK}; next: hunting season\nhunte`);
  // Text that cannot begin a secret is not held back.
  assert.ok(pieces.includes("the key is "), JSON.stringify(pieces));
});
