/**
 * A runner is one tenant's: whatever it says about a job of another repository,
 * organisation or installation (a result, a heartbeat, logs) is refused with 403 and
 * recorded, and nothing reaches the job. Late results of its own jobs are bounded. Over
 * real HTTP, against the runner route, on Postgres and on PGlite.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { localRunnerAdmin, createRunnerRoute } from "../../app/runners/runner-route.js";
import {
  createRegistrationToken,
  enqueueRunnerJob,
  getRunnerJob,
  listRunnerRefusals,
  MAX_LATE_RESULTS,
  registerRunner,
  type RunnerScope,
} from "../../app/store/runner-jobs.js";
import { silentLogger } from "../../app/runtime/log.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import { uuidv7 } from "../../app/store/ids.js";
import { allocateRunNumber, insertRun } from "../../app/store/runs.js";
import { flowDefinition } from "../../flows-schema/schema.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";

for (const backend of BACKENDS) {
  describe(`runner scope (${backend})`, () => {
    let t: TestDatabase;
    let server: Server;
    let base: string;

    const call = async (token: string, path: string, body: unknown) => {
      const response = await fetch(`${base}${path}`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(body),
      });
      return {
        status: response.status,
        body: (await response.json()) as Record<string, unknown> & {
          error?: { code: string; message: string };
        },
      };
    };

    /** A run of `repository` whose step `s` (attempt 1) waits on a runner job. */
    const jobIn = async (repository: string, installationId: number): Promise<string> => {
      const id = uuidv7(Date.now());
      await t.db.transaction(async (tx) => {
        const version = await saveFlowVersion(tx, {
          sourceKind: "repository",
          repository,
          path: ".github/flows/build.yml",
          sha: "a".repeat(40),
          name: "build",
          definition: flowDefinition.parse({ steps: { s: { "runs-on": "x", run: "true" } } }),
          source: "steps: { s: { runs-on: x, run: 'true' } }",
        });
        const number = await allocateRunNumber(tx, repository, "build");
        await insertRun(tx, {
          id,
          flowVersionId: version.id,
          repository,
          flow: "build",
          number,
          actor: "octocat",
          triggerEvent: "manual",
          inputs: {},
          createdAt: new Date(),
          github: { installationId, headSha: "a".repeat(40) },
        });
        await tx.query(
          "INSERT INTO steps (run_id, step, status, attempt) VALUES ($1, 's', 'running', 1)",
          [id],
        );
        await enqueueRunnerJob(tx, {
          key: `${id}/s/1`,
          runId: id,
          step: "s",
          attempt: 1,
          kind: "execute",
          labels: ["self-hosted", "x"],
          repository,
          installationId,
          payload: { kind: "run", spec: { run: "true" } },
        });
      });
      return `${id}/s/1`;
    };

    const runnerFor = async (scope: RunnerScope): Promise<{ id: string; token: string }> => {
      const registration = await createRegistrationToken(t.db, {
        scope,
        createdBy: "admin",
        expiresInMs: 600_000,
      });
      const registered = await registerRunner(t.db, {
        registrationToken: registration.token,
        name: `${scope.name}-runner`,
        labels: ["self-hosted", "x"],
      });
      assert.ok(registered);
      return { id: registered.runner.id, token: registered.token };
    };

    before(async () => {
      t = await createTestDatabase(backend);
      const route = createRunnerRoute({
        store: t.db,
        admin: localRunnerAdmin("admin-token", "admin"),
        log: silentLogger,
        leaseMs: 60_000,
      });
      server = createServer((request, response) => {
        const url = new URL(request.url ?? "/", "http://localhost");
        void route(request, response, url).then((handled) => {
          if (!handled) response.writeHead(404).end();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await t.drop();
    });

    test("a runner's result, heartbeat and logs for another repository's job are refused (403) and recorded, never stored", async () => {
      const acmeKey = await jobIn("acme/widgets", 1);
      const acme = await runnerFor({ kind: "repository", name: "acme/widgets", installationId: 1 });
      const other = await runnerFor({
        kind: "repository",
        name: "other/gadgets",
        installationId: 2,
      });
      const claimed = await call(acme.token, "/api/runner/claim", { slots: 4 });
      const jobs = claimed.body.jobs as { key: string; leaseId: string }[];
      assert.deepEqual(
        jobs.map((job) => job.key),
        [acmeKey],
      );
      const leaseId = jobs[0]?.leaseId ?? "";

      // Even with the right lease id, the other repository's runner gets nothing through.
      const result = await call(other.token, "/api/runner/result", {
        key: acmeKey,
        leaseId,
        outcome: "success",
        outputs: { forged: "yes" },
      });
      assert.equal(result.status, 403);
      assert.equal(result.body.error?.code, "outside_scope");
      const heartbeat = await call(other.token, "/api/runner/heartbeat", {
        leases: [{ key: acmeKey, leaseId }],
      });
      assert.equal(heartbeat.status, 403, "no `current: true` for another tenant's job");
      assert.equal(heartbeat.body.leases, undefined);
      const logs = await call(other.token, "/api/runner/logs", {
        key: acmeKey,
        leaseId,
        chunks: [{ stream: "stdout", text: "forged output" }],
      });
      assert.equal(logs.status, 403);

      const job = await getRunnerJob(t.db, acmeKey);
      assert.equal(job?.status, "running");
      assert.equal(job?.runnerId, acme.id);
      const stored = await t.db.query<{ late_results: unknown[]; outcome: unknown }>(
        "SELECT late_results, outcome FROM runner_jobs WHERE key = $1",
        [acmeKey],
      );
      assert.deepEqual(stored.rows[0], { late_results: [], outcome: null });
      const printed = await t.db.query("SELECT 1 FROM step_logs WHERE chunk = 'forged output'");
      assert.equal(printed.rows.length, 0);
      const refusals = await listRunnerRefusals(t.db, other.id);
      assert.deepEqual(
        refusals.map((refusal) => [refusal.request, refusal.key]),
        [
          ["result", acmeKey],
          ["heartbeat", acmeKey],
          ["logs", acmeKey],
        ],
      );
      assert.match(
        refusals[0]?.reason ?? "",
        /outside the runner's scope \(repository other\/gadgets\)/,
      );

      // The job's own runner is unaffected: its heartbeat holds, its attempt is current.
      const own = await call(acme.token, "/api/runner/heartbeat", {
        leases: [{ key: acmeKey, leaseId }],
      });
      assert.equal(own.status, 200);
      assert.deepEqual(own.body.leases, [{ key: acmeKey, held: true, current: true }]);
    });

    test("an organisation runner is refused for a job of the same organisation under another installation", async () => {
      const key = await jobIn("globex/web", 7);
      const impostor = await runnerFor({ kind: "organization", name: "globex", installationId: 8 });
      const answer = await call(impostor.token, "/api/runner/result", {
        key,
        leaseId: "guessed",
        outcome: "failure",
      });
      assert.equal(answer.status, 403);
      assert.equal((await listRunnerRefusals(t.db, impostor.id)).length, 1);
    });

    test("late results of a runner's own job are bounded: the first kept, the rest counted", async () => {
      const key = await jobIn("acme/late", 3);
      const runner = await runnerFor({ kind: "repository", name: "acme/late", installationId: 3 });
      const claimed = await call(runner.token, "/api/runner/claim", { slots: 1 });
      assert.equal((claimed.body.jobs as unknown[]).length, 1);
      for (let i = 0; i < MAX_LATE_RESULTS + 5; i++) {
        const late = await call(runner.token, "/api/runner/result", {
          key,
          leaseId: `old-lease-${i}`,
          outcome: "success",
          error: "x".repeat(1000),
        });
        assert.equal(late.status, 409);
      }
      const stored = await t.db.query<{
        late_results: { leaseId: string }[];
        late_results_dropped: number;
      }>("SELECT late_results, late_results_dropped FROM runner_jobs WHERE key = $1", [key]);
      const row = stored.rows[0];
      assert.equal(row?.late_results.length, MAX_LATE_RESULTS);
      assert.equal(row?.late_results[0]?.leaseId, "old-lease-0");
      assert.equal(row?.late_results_dropped, 5);
      assert.deepEqual(await listRunnerRefusals(t.db, runner.id), [], "late, not refused");
    });
  });
}
