/**
 * The runners part as the GitHub app mounts it, against the fake GitHub: who may create
 * registration tokens (repository admins, asked of GitHub), and the checkout a claim
 * carries (an installation token minted for the step, for that one repository).
 */
import assert from "node:assert/strict";
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { createGitHubClient } from "../../app/github/github-client.js";
import { serveApiRoute } from "../../app/http/api-server.js";
import { gitHostOf, runnersPart } from "../../app/runners/runners-part.js";
import { silentLogger } from "../../app/runtime/log.js";
import { startRuntime, type Runtime } from "../../app/runtime/runtime.js";
import { finishTask } from "../../app/runtime/task-context.js";
import { BatonService } from "../../app/runtime/service.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { FakeGitHub } from "../fake-github/server.js";
import { waitFor } from "../cli/baton-process.js";
import type { TestDatabase } from "../helpers/db.js";
import { BACKENDS, createTestDatabase } from "../helpers/db.js";

const REPOSITORY = "acme/widgets";
const INSTALLATION_ID = 7;

for (const backend of BACKENDS) {
  describe(`runners on the GitHub app (${backend})`, () => {
    let database: TestDatabase;
    let fake: FakeGitHub;
    let server: Server;
    let runtime: Runtime;
    let url: string;
    const post = async (token: string | undefined, path: string, body: unknown) => {
      const response = await fetch(new URL(path, url), {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
        },
        body: JSON.stringify(body),
      });
      return { status: response.status, body: (await response.json()) as Record<string, unknown> };
    };

    before(async () => {
      database = await createTestDatabase(backend);
      fake = await FakeGitHub.start();
      fake.addInstallation({ id: INSTALLATION_ID, account: "acme" });
      fake.addRepository({
        owner: "acme",
        name: "widgets",
        installationId: INSTALLATION_ID,
        files: {},
      });
      fake.addRepository({
        owner: "acme",
        name: "other",
        installationId: INSTALLATION_ID,
        files: {},
      });
      fake.setRole(REPOSITORY, "admin", "admin");
      fake.setRole(REPOSITORY, "writer", "write");
      const github = createGitHubClient({
        appId: fake.appId,
        privateKey: fake.privateKey,
        baseUrl: fake.url,
        throttle: false,
      });
      const store = database.db;
      const part = runnersPart({
        store,
        service: new BatonService({ store }),
        github,
        log: silentLogger,
        now: Date.now,
      });
      runtime = startRuntime({
        store,
        log: silentLogger,
        handlers: {
          ...part.tasks,
          "sync-check-run": (ctx, task) => finishTask(ctx, task, () => Promise.resolve()),
        },
      });
      const [route] = part.routes ?? [];
      if (!route) throw new Error("the runners part has no route");
      server = serveApiRoute(route);
      await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
      await runtime.stop();
      await fake.stop();
      await database.drop();
    });

    test("repository admins create registration tokens; writers and strangers are refused", async () => {
      const admin = await post(fake.userToken("admin"), "/api/runners/registration-tokens", {
        repository: REPOSITORY,
      });
      assert.equal(admin.status, 201, JSON.stringify(admin.body));
      assert.match(String(admin.body.token), /^baton_rr_/);
      assert.deepEqual(admin.body.scope, {
        kind: "repository",
        name: REPOSITORY,
        installationId: INSTALLATION_ID,
      });
      const writer = await post(fake.userToken("writer"), "/api/runners/registration-tokens", {
        repository: REPOSITORY,
      });
      assert.equal(writer.status, 403);
      assert.match(JSON.stringify(writer.body), /writer is not an admin of acme\/widgets/);
      const anonymous = await post(undefined, "/api/runners/registration-tokens", {
        repository: REPOSITORY,
      });
      assert.equal(anonymous.status, 401);
    });

    test("a checkout step's claim carries the run's commit and a token for that repository only", async () => {
      const created = await post(fake.userToken("admin"), "/api/runners/registration-tokens", {
        repository: REPOSITORY,
      });
      const registered = await post(undefined, "/api/runner/register", {
        registrationToken: created.body.token,
        name: "builder",
        labels: ["linux"],
      });
      assert.equal(registered.status, 201);
      const runnerToken = String(registered.body.token);
      const source =
        "name: co\nsteps:\n  build:\n    runs-on: linux\n    checkout: true\n    run: make\n";
      const parsed = parseFlow(source, ".github/flows/co.yml");
      const version = await saveFlowVersion(database.db, {
        sourceKind: "repository",
        repository: REPOSITORY,
        path: ".github/flows/co.yml",
        sha: "a".repeat(40),
        name: "co",
        definition: parsed.flow!,
        source,
      });
      const headSha = "b".repeat(40);
      await new BatonService({ store: database.db }).startRun({
        flowFile: { versionId: version.id },
        actor: "admin",
        github: { installationId: INSTALLATION_ID, headSha },
      });
      const claimed = await waitFor(async () => {
        const answer = await post(runnerToken, "/api/runner/claim", { slots: 1, waitMs: 1000 });
        const jobs = answer.body.jobs as Array<Record<string, unknown>>;
        return jobs.length > 0 ? jobs[0] : undefined;
      }, 30_000);
      const checkout = claimed.checkout as { url: string; sha: string; token: string };
      assert.equal(checkout.url, `${gitHostOf(fake.url)}/${REPOSITORY}.git`);
      assert.equal(checkout.sha, headSha);
      const read = (path: string) =>
        fetch(new URL(path, fake.url), { headers: { authorization: `token ${checkout.token}` } });
      assert.equal((await read(`/repos/${REPOSITORY}`)).status, 200);
      assert.equal((await read("/repos/acme/other")).status, 404);
    });
  });
}
