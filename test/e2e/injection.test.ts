/**
 * The script-injection hole of GitHub Actions, closed, end to end: the GitHub app (as
 * `npm start` composes it) against the fake GitHub, a real `baton runner`, and two
 * triggers whose payload anyone can write: an issue labeled with a title written by a
 * user with read access only, and a webhook-trigger body. The payload reaches the runner's
 * shell byte for byte and runs nothing.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { signWebhookRequest, webhookSecret } from "../../app/github/triggers/index.js";
import type { RunningApp } from "../../app/server/start-app.js";
import { baton, startBaton, type Running } from "../cli/baton-process.js";
import { eventually } from "../github/check-runs-harness.js";
import { createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { startAppAgainst } from "../fake-github/start-app-against.js";
import { FakeGitHub } from "../fake-github/server.js";
import { patchPayload, webhookExample } from "../fake-github/webhooks.js";
import { injectionValue } from "../runtime/injection-cases.js";

const REPO = "acme/widgets";

describe("no trigger payload becomes syntax (the GitHub app, a runner)", () => {
  let testDb: TestDatabase;
  let fake: FakeGitHub;
  let app: RunningApp;
  let runner: Running;
  let dir: string;
  let out: string;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "baton-e2e-injection-"));
    out = join(dir, "out");
    await mkdir(out);
    testDb = await createTestDatabase("postgres");
    fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 10_000 } });
    app = await startAppAgainst(fake, testDb.db, {
      secret: "injection",
      parts: { checkRuns: { writeIntervalMs: 5 } },
    });
    await fake.install({
      installationId: 1,
      account: "acme",
      repositories: [{ name: "widgets", files: { "README.md": "widgets\n" } }],
    });
    fake.setRole(REPO, "admin", "admin");
    fake.setRole(REPO, "mallory", "read");
    // One flow, two triggers: each writes the text it was given to a file named by its event.
    const pushed = await fake.push(REPO, {
      files: {
        ".github/flows/inject.yml": `name: Inject
on:
  github:
    issues: { types: [labeled], labels: [triage] }
  webhook: {}
steps:
  echo:
    runs-on: [inject]
    run: |
      printf '%s' "\${{ trigger.payload.issue.title }}\${{ trigger.payload.text }}" > "${out}/\${{ trigger.event }}"
      cat > "${out}/\${{ trigger.event }}-heredoc" <<EOF
      \${{ trigger.payload.issue.title }}\${{ trigger.payload.text }}
      EOF
      : \${{ trigger.payload.issue.title }} \${{ trigger.payload.text }}
`,
      },
    });
    await eventually("the flow to be live", () =>
      fake.checkRuns.find((c) => c.name === "baton / flows" && c.head_sha === pushed.sha)
        ?.conclusion === "success"
        ? true
        : undefined,
    );
    const created = await baton(
      ["--url", app.url, "runner-token", "create", "--repo", REPO, "--json"],
      { env: { BATON_TOKEN: fake.userToken("admin") } },
    );
    assert.equal(created.code, 0, created.stderr);
    const registration = (JSON.parse(created.stdout) as { token: string }).token;
    const stateDir = join(dir, "runner");
    runner = startBaton(
      ["--url", app.url, "runner", "--name", "inject", "--label", "inject"].concat([
        "--token",
        registration,
        "--state-dir",
        stateDir,
      ]),
      { timeoutMs: 300_000 },
    );
  });
  after(async () => {
    runner?.kill("SIGTERM");
    await runner?.exited;
    await app?.stop();
    await fake?.stop();
    await testDb?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  const finished = (count: number) =>
    eventually(`${count} finished runs`, () => {
      const runs = fake.checkRuns.filter((c) => c.name === "baton / Inject");
      return runs.length >= count && runs.every((c) => c.status === "completed") ? runs : undefined;
    });

  test("an issue title from a user with read access arrives literally", async () => {
    const canary = join(dir, "canary-issue");
    const title = `x"; touch ${canary}; echo "$(id) ${injectionValue(canary)}`;
    const repository = fake.repository(REPO);
    const payload = patchPayload(webhookExample("issues", "labeled"), {
      installationId: 1,
      repository: { id: repository.id, owner: "acme", name: "widgets" },
    });
    const label = { ...(payload.label as Record<string, unknown>), name: "triage" };
    fake.addIssue(REPO, 9);
    payload.label = label;
    payload.sender = { ...(payload.sender as Record<string, unknown>), login: "mallory" };
    payload.issue = { ...(payload.issue as Record<string, unknown>), number: 9, title };
    assert.equal((await fake.deliverWebhook("issues", payload)).status, 202);
    const [check] = await finished(1);
    assert.equal(check?.conclusion, "success", check?.output.summary ?? "");
    assert.equal(existsSync(canary), false, "an injection ran: the canary exists");
    assert.equal(await readFile(join(out, "issues"), "utf8"), title);
    assert.equal(await readFile(join(out, "issues-heredoc"), "utf8"), `${title}\n`);
  });

  test("a webhook-trigger body arrives literally", async () => {
    const canary = join(dir, "canary-webhook");
    const text = injectionValue(canary);
    const { secret, path } = await webhookSecret(testDb.db, REPO, "inject", { by: "admin" });
    const body = JSON.stringify({ text });
    const response = await fetch(new URL(path, app.url), {
      method: "POST",
      headers: {
        "content-type": "application/json",
        ...signWebhookRequest(secret, body),
      },
      body,
    });
    assert.equal(response.status, 202, await response.text());
    const checks = await finished(2);
    assert.equal(checks.at(-1)?.conclusion, "success", checks.at(-1)?.output.summary ?? "");
    assert.equal(existsSync(canary), false, "an injection ran: the canary exists");
    assert.equal(await readFile(join(out, "webhook"), "utf8"), text);
    assert.equal(await readFile(join(out, "webhook-heredoc"), "utf8"), `${text}\n`);
  });
});
