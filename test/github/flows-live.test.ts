/**
 * Flows from repositories, end to end against the fake GitHub: installation and pushes to
 * the default branch make the flows at the branch's head live, pinned to the commit; an
 * invalid flow keeps the last valid version live and is annotated on its exact lines;
 * a deleted flow is retired; runs already started are untouched; deliveries processed
 * out of order end with the newest head live; a truncated tree is walked.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { applyLiveLoad, listLiveFlows, listSchedules } from "../../app/store/live-flows.js";
import { getRepository, upsertRepository } from "../../app/store/repositories.js";
import type { LoadedFlows } from "../../app/github/flows/load-flows.js";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { nextScheduleTick } from "../../app/github/schedule-ticks.js";
import { getFlowVersion } from "../../app/store/flow-versions.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import { webhookExample, patchPayload } from "../fake-github/webhooks.js";
import { flowsChecks, startFlowsHarness } from "./flows-harness.js";

const RELEASE = `on:
  manual: {}
  schedule:
    - cron: "0 9 * * 1"
      timezone: Europe/Oslo
steps:
  build:
    wait: { signal: built }
`;

/** The same schedule, another step: the schedule's next tick must be kept. */
const RELEASE_V2 = `on:
  manual: {}
  schedule:
    - cron: "0 9 * * 1"
      timezone: Europe/Oslo
steps:
  build:
    wait: { signal: built-again }
`;

/** Line 7, column 14: `5 minutes` is not a duration. */
const RELEASE_BROKEN = `on:
  manual: {}
  schedule:
    - cron: "0 9 * * 1"
      timezone: Europe/Oslo
steps:
  build:
    wait: { signal: built }
    timeout: 5 minutes
`;

const REPO = "acme/widgets";

for (const backend of BACKENDS) {
  describe(`live flows on ${backend}`, () => {
    let testDb: TestDatabase;
    before(async () => {
      testDb = await createTestDatabase(backend);
    });
    after(async () => {
      await testDb.drop();
    });

    test("installed, pushed broken, pushed fixed, deleted: live follows the last valid version", async () => {
      const h = await startFlowsHarness(testDb.db);
      try {
        await h.fake.install({
          installationId: 7,
          account: "acme",
          repositories: [
            { name: "widgets", files: { ".github/flows/release.yml": RELEASE, "README.md": "hi" } },
          ],
        });
        await h.drain();
        const first = h.fake.head(REPO);

        // Live, pinned to the installation's head commit, with its schedule.
        const [live] = await listLiveFlows(h.store, REPO);
        assert.ok(live?.versionId);
        const version = await getFlowVersion(h.store, live.versionId);
        assert.deepEqual(
          [version?.sourceKind, version?.sha, version?.path, version?.name],
          ["repository", first, ".github/flows/release.yml", "release"],
        );
        assert.equal((await getRepository(h.store, REPO))?.liveSha, first);
        const [schedule] = await listSchedules(h.store, REPO);
        assert.ok(schedule && schedule.nextAt.getTime() > Date.now());
        assert.equal(schedule.versionId, live.versionId);
        const [check] = flowsChecks(h.fake, first);
        assert.equal(check?.conclusion, "success");
        assert.match(
          check?.output.summary ?? "",
          /\| `release` \| manual, schedule `0 9 \* \* 1` \| 1 \|/,
        );

        // A run of the live version, started before anything else changes.
        const started = await h.app.service.startRun({
          flowFile: { versionId: live.versionId },
          actor: "mona",
        });

        // Broken: the last valid version stays live; the check points at line 9.
        const broken = (
          await h.fake.push(REPO, { files: { ".github/flows/release.yml": RELEASE_BROKEN } })
        ).sha;
        await h.drain();
        const [afterBroken] = await listLiveFlows(h.store, REPO);
        assert.equal(afterBroken?.versionId, live.versionId);
        assert.equal(afterBroken?.invalidSha, broken);
        assert.equal(afterBroken?.diagnostics?.[0]?.line, 9);
        const [failed] = flowsChecks(h.fake, broken);
        assert.equal(failed?.conclusion, "failure");
        assert.match(
          failed?.output.summary ?? "",
          /The last valid version \(from [0-9a-f]{7}\) stays live/,
        );
        assert.deepEqual(
          failed?.annotations.map((a) => [
            a.path,
            a.start_line,
            a.start_column,
            a.annotation_level,
          ]),
          [[".github/flows/release.yml", 9, 14, "failure"]],
        );
        assert.deepEqual(
          await listSchedules(h.store, REPO),
          [schedule],
          "the schedule is untouched",
        );

        // Fixed, same schedule: a new version, and the schedule keeps its next tick.
        const fixed = (
          await h.fake.push(REPO, { files: { ".github/flows/release.yml": RELEASE_V2 } })
        ).sha;
        await h.drain();
        const [afterFixed] = await listLiveFlows(h.store, REPO);
        assert.equal(afterFixed?.versionSha, fixed);
        assert.equal(afterFixed?.invalidSha, undefined);
        const [keptSchedule] = await listSchedules(h.store, REPO);
        assert.equal(keptSchedule?.nextAt.getTime(), schedule.nextAt.getTime());
        assert.equal(keptSchedule?.versionId, afterFixed?.versionId);

        // A push that does not touch flows loads nothing.
        const requestsBefore = h.fake.requests.length;
        await h.fake.push(REPO, { files: { "README.md": "more" } });
        await h.drain();
        assert.equal(h.fake.requests.length, requestsBefore, "no GitHub request for it");

        // Deleted: retired with its schedule; the run started earlier is untouched.
        const deleted = (await h.fake.push(REPO, { files: { ".github/flows/release.yml": null } }))
          .sha;
        await h.drain();
        assert.deepEqual(await listLiveFlows(h.store, REPO), []);
        assert.deepEqual(await listSchedules(h.store, REPO), []);
        assert.match(
          flowsChecks(h.fake, deleted)[0]?.output.summary ?? "",
          /`release`: the file is gone/,
        );
        const run = await h.app.service.getRun(started.runId);
        assert.equal(run.run.flowVersionId, live.versionId);
        assert.equal(run.run.status, started.status);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("pushes processed out of order end with the newest head live", async () => {
      const h = await startFlowsHarness(testDb.db);
      const repo = "acme/ordered";
      try {
        await h.fake.install({
          installationId: 8,
          account: "acme",
          repositories: [{ name: "ordered", files: { ".github/flows/release.yml": RELEASE } }],
        });
        await h.drain();
        const older = await h.fake.push(repo, {
          files: { ".github/flows/release.yml": RELEASE_V2 },
        });
        const newer = await h.fake.push(repo, {
          files: { ".github/flows/release.yml": RELEASE_BROKEN },
        });
        // The newer push is processed first; the older one arrives after it.
        await h.store.query(
          "UPDATE github_deliveries SET run_at = run_at - interval '1 minute' WHERE id = $1",
          [newer.delivery.deliveryId],
        );
        await h.drain();
        const repository = await getRepository(h.store, repo);
        assert.equal(repository?.liveSha, newer.sha);
        const [live] = await listLiveFlows(h.store, repo);
        assert.equal(live?.invalidSha, newer.sha, "the newest head's (broken) version is recorded");
        assert.notEqual(live?.versionSha, older.sha, "the older push's version never went live");
        assert.equal(flowsChecks(h.fake, older.sha).length, 0, "the older push loaded nothing");
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("a load whose head was resolved before the live one is dropped", async () => {
      const repository = "acme/stale";
      const loaded = (sha: string, source: string): LoadedFlows => {
        const parsed = parseFlow(source, ".github/flows/release.yml");
        return {
          repository,
          sha,
          problems: [],
          files: [
            {
              name: "release",
              path: ".github/flows/release.yml",
              blobSha: sha,
              source,
              ...(parsed.flow ? { flow: parsed.flow } : {}),
              diagnostics: parsed.diagnostics,
            },
          ],
        };
      };
      const now = new Date();
      await testDb.db.transaction(async (tx) => {
        await upsertRepository(tx, { repository, installationId: 1, defaultBranch: "main" });
        const newer = await applyLiveLoad(tx, loaded("b".repeat(40), RELEASE_V2), {
          resolvedAt: new Date(now.getTime() + 1000),
          now,
        });
        assert.deepEqual(newer, { live: ["release"], invalid: [], retired: [] });
        const stale = await applyLiveLoad(tx, loaded("a".repeat(40), RELEASE), {
          resolvedAt: now,
          now,
        });
        assert.equal(stale, undefined);
      });
      const [live] = await listLiveFlows(testDb.db, repository);
      assert.equal(live?.versionSha, "b".repeat(40));

      // A changed cron starts over from its next tick; an unchanged one kept its own.
      const [kept] = await listSchedules(testDb.db, repository);
      const later = new Date(now.getTime() + 7 * 24 * 3600 * 1000);
      await testDb.db.transaction(async (tx) => {
        await applyLiveLoad(
          tx,
          loaded("c".repeat(40), RELEASE_V2.replace("0 9 * * 1", "30 6 * * *")),
          {
            resolvedAt: later,
            now: later,
          },
        );
      });
      const [changed] = await listSchedules(testDb.db, repository);
      assert.equal(changed?.cron, "30 6 * * *");
      assert.equal(
        changed?.nextAt.getTime(),
        nextScheduleTick("30 6 * * *", "Europe/Oslo", later).getTime(),
      );
      assert.notEqual(changed?.nextAt.getTime(), kept?.nextAt.getTime());
    });

    test("a truncated recursive tree is walked down to .github/flows", async () => {
      const h = await startFlowsHarness(testDb.db, { treeEntryLimit: 4 });
      try {
        const files: Record<string, string> = { ".github/flows/release.yml": RELEASE };
        for (let i = 0; i < 10; i++) files[`src/file-${i}.ts`] = `export const n = ${i};\n`;
        // Over the validator's 1 MiB: reported from the tree's size, never downloaded.
        files[".github/flows/huge.yml"] = `# ${"x".repeat(1024 * 1024)}\n`;
        await h.fake.install({
          installationId: 9,
          account: "acme",
          repositories: [{ name: "big", files }],
        });
        await h.drain();
        const live = (await listLiveFlows(h.store, "acme/big")).find((f) => f.flow === "release");
        assert.equal(live?.versionSha, h.fake.head("acme/big"));
        const treeRequests = h.fake.requests.filter((r) => r.operationId === "git/get-tree");
        assert.equal(treeRequests.length, 4, "recursive (truncated), root, .github, .github/flows");
        const blobRequests = h.fake.requests.filter((r) => r.operationId === "git/get-blob");
        assert.equal(blobRequests.length, 1, "only release.yml is read");
        const [check] = flowsChecks(h.fake, h.fake.head("acme/big"));
        assert.equal(check?.conclusion, "failure");
        assert.deepEqual(
          check?.annotations.map((a) => [a.path, a.start_line, a.message]),
          [
            [
              ".github/flows/huge.yml",
              1,
              "the file is 1048579 bytes; a flow file may be at most 1048576 bytes (1 MiB)",
            ],
          ],
        );
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });

    test("repositories added later are loaded; removed and uninstalled ones are marked removed, their live flows kept", async () => {
      const h = await startFlowsHarness(testDb.db);
      try {
        const sent = await h.fake.install({
          installationId: 10,
          account: "acme",
          repositories: [{ name: "gone", files: { ".github/flows/release.yml": RELEASE } }],
        });
        assert.equal(sent.status, 202);
        await h.drain();
        const payload = patchPayload(webhookExample("installation", "deleted"), {
          installationId: 10,
        });
        // A repository added to the installation later is loaded like the first ones.
        const added = h.fake.addRepository({
          owner: "acme",
          name: "later",
          installationId: 10,
          files: { ".github/flows/release.yml": RELEASE },
        });
        const repositoryRef = {
          id: added.id,
          name: "later",
          full_name: "acme/later",
          private: false,
        };
        const addedPayload = patchPayload(webhookExample("installation_repositories", "added"), {
          installationId: 10,
        });
        addedPayload.repositories_added = [repositoryRef];
        await h.fake.deliverWebhook("installation_repositories", addedPayload);
        await h.drain();
        assert.equal((await listLiveFlows(h.store, "acme/later"))[0]?.versionSha, added.head);

        const removedPayload = patchPayload(
          webhookExample("installation_repositories", "removed"),
          {
            installationId: 10,
          },
        );
        removedPayload.repositories_removed = [repositoryRef];
        await h.fake.deliverWebhook("installation_repositories", removedPayload);
        await h.drain();
        assert.ok((await getRepository(h.store, "acme/later"))?.removedAt);
        assert.equal((await getRepository(h.store, "acme/gone"))?.removedAt, undefined);

        await h.fake.deliverWebhook("installation", payload);
        await h.drain();
        assert.ok((await getRepository(h.store, "acme/gone"))?.removedAt);
        assert.equal((await listLiveFlows(h.store, "acme/gone")).length, 1);
        assert.ok((await getRepository(h.store, "acme/later"))?.removedAt);
        h.fake.assertNoUnexpectedRequests();
      } finally {
        await h.stop();
      }
    });
  });
}
