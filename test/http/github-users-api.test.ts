/**
 * The run API as the GitHub app serves it: real HTTP, GitHub user tokens, and each
 * permission asked of the fake GitHub at the moment of the action.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { getRunById } from "../../app/store/runs.js";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import {
  type AppApi,
  assertOnlyBadTokenRequests,
  INSTALLATION_ID,
  REPOSITORY,
  startAppApi,
} from "./github-app-api.js";

const START = `/api/repos/${REPOSITORY}/flows/release/runs`;

for (const backend of BACKENDS) {
  describe(`the API for GitHub users on ${backend}`, () => {
    let testDb: TestDatabase;
    let app: AppApi;
    before(async () => {
      testDb = await createTestDatabase(backend);
      app = await startAppApi(testDb.db);
    });
    after(async () => {
      await app.stop();
      await testDb.drop();
    });

    test("a write user starts the live version with inputs, as themselves, on the live commit", async () => {
      const started = await app.call(app.tokens.writer, "POST", START, {
        inputs: { version: "1.2", "dry-run": "true" },
      });
      assert.equal(started.status, 201, JSON.stringify(started.body));
      assert.equal(started.body.flow, "release");
      assert.equal(started.body.repository, REPOSITORY);
      const run = await getRunById(testDb.db, String(started.body.id));
      assert.ok(run);
      assert.equal(run.actor, "writer");
      assert.equal(run.repository, REPOSITORY);
      assert.equal(run.flowVersionId, app.versions.release);
      assert.equal(run.triggerEvent, "manual");
      assert.deepEqual(run.inputs, { version: "1.2", "dry-run": true });
      assert.deepEqual(run.github, { installationId: INSTALLATION_ID, headSha: app.liveSha });
      app.fake.assertNoUnexpectedRequests();
    });

    test("a read user lists and shows runs, by id and by owner/repo/flow#n, but cannot start, cancel, retry or signal them", async () => {
      const started = await app.call(app.tokens.writer, "POST", START, {
        inputs: { version: "2.0" },
      });
      assert.equal(started.status, 201);
      const id = String(started.body.id);
      const number = Number(started.body.number);

      const listed = await app.call(app.tokens.reader, "GET", `/api/runs?repository=${REPOSITORY}`);
      assert.equal(listed.status, 200);
      const runs = listed.body as unknown as Array<{ id: string; repository: string }>;
      assert.ok(runs.some((run) => run.id === id));
      assert.ok(runs.every((run) => run.repository === REPOSITORY));

      const ref = encodeURIComponent(`${REPOSITORY}/release#${number}`);
      const shown = await app.call(app.tokens.reader, "GET", `/api/runs/${ref}`);
      assert.equal(shown.status, 200, JSON.stringify(shown.body));
      assert.equal(shown.body.id, id);
      const otherCase = encodeURIComponent(`ACME/Widgets/release#${number}`);
      const shownOtherCase = await app.call(app.tokens.reader, "GET", `/api/runs/${otherCase}`);
      assert.equal(shownOtherCase.body.id, id, "GitHub names are case-insensitive");
      const byPrefix = await app.call(app.tokens.reader, "GET", `/api/runs/${id.slice(0, 13)}`);
      assert.equal(byPrefix.body.id, id);
      const logs = await app.call(app.tokens.reader, "GET", `/api/runs/${id}/logs`);
      assert.equal(logs.status, 200);

      const refused = [
        await app.call(app.tokens.reader, "POST", START, { inputs: { version: "3.0" } }),
        await app.call(app.tokens.reader, "POST", `/api/runs/${id}/cancel`, {}),
        await app.call(app.tokens.reader, "POST", `/api/runs/${id}/retry`, {}),
        await app.call(app.tokens.reader, "POST", `/api/runs/${id}/signals/go`, {}),
      ];
      for (const answer of refused) {
        assert.equal(answer.status, 403, JSON.stringify(answer.body));
        assert.equal(answer.body.error?.code, "permission_denied");
        assert.equal(answer.body.error?.permission, "read");
        assert.equal(answer.body.error?.required, "write");
        assert.match(
          answer.body.error?.message ?? "",
          /reader has read permission on acme\/widgets/,
        );
      }
      const run = await getRunById(testDb.db, id);
      assert.equal(run?.status, "running", "the refused cancel changed nothing");

      // The same cancel by someone who may: the run is cancelled, by that user.
      const cancelled = await app.call(app.tokens.writer, "POST", `/api/runs/${ref}/cancel`, {});
      assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
      const after = await app.call(app.tokens.reader, "GET", `/api/runs/${id}`);
      const events = after.body.events as Array<{ type: string; by?: string; reason?: string }>;
      const request = events.find((event) => event.type === "run.cancel-requested");
      assert.equal(request?.by, "writer");
      assert.equal(request?.reason, "cancelled by writer");
      app.fake.assertNoUnexpectedRequests();
    });

    test("approvals through the API carry the permission GitHub reports to the flow's policy", async () => {
      const started = await app.call(app.tokens.writer, "POST", START, {
        inputs: { version: "4.0" },
      });
      const id = String(started.body.id);
      const byReader = await app.call(
        app.tokens.reader,
        "POST",
        `/api/runs/${id}/steps/ship/approve`,
        {},
      );
      assert.equal(byReader.status, 200, JSON.stringify(byReader.body));
      assert.deepEqual(byReader.body, {
        counted: false,
        reason: "reader has read permission; this approval needs write",
        user: "reader",
      });
      const byStranger = await app.call(
        app.tokens.stranger,
        "POST",
        `/api/runs/${id}/steps/ship/approve`,
        {},
      );
      assert.equal(
        byStranger.status,
        404,
        "someone who cannot read the repository does not see the run",
      );
      const byAdmin = await app.call(
        app.tokens.admin,
        "POST",
        `/api/runs/${id}/steps/ship/approve`,
        {
          comment: "ship it",
        },
      );
      assert.deepEqual(byAdmin.body, { counted: true, user: "admin" });
      const shown = await app.call(app.tokens.reader, "GET", `/api/runs/${id}`);
      const submitted = (shown.body.events as Array<Record<string, unknown>>).filter(
        (event) => event.type === "approval.submitted",
      );
      assert.deepEqual(
        submitted.map((event) => [
          event.user,
          event.via,
          (event.facts as { permission: string }).permission,
        ]),
        [
          ["reader", "cli", "read"],
          ["admin", "cli", "admin"],
        ],
      );
      app.fake.assertNoUnexpectedRequests();
    });

    test("reading a run may reuse GitHub's answer of the last seconds; every change asks GitHub again", async () => {
      const started = await app.call(app.tokens.writer, "POST", START, {
        inputs: { version: "6" },
      });
      const id = String(started.body.id);
      // Someone new, whose permission nothing has asked yet.
      app.fake.setRole(REPOSITORY, "maintainer", "maintain");
      const token = app.fake.userToken("maintainer");
      const asked = () =>
        app.fake.requests.filter((r) => r.operationId === "repos/get-collaborator-permission-level")
          .length;
      const before = asked();
      for (let i = 0; i < 3; i++) {
        const shown = await app.call(token, "GET", `/api/runs/${id}`);
        assert.equal(shown.status, 200);
      }
      assert.equal(asked() - before, 1, "three reads, one question");

      // Demoted on GitHub: the next change is refused at once.
      app.fake.setRole(REPOSITORY, "maintainer", "read");
      try {
        const signal = await app.call(token, "POST", `/api/runs/${id}/signals/go`, {});
        assert.equal(signal.status, 403);
        assert.equal(signal.body.error?.permission, "read");
      } finally {
        app.fake.setRole(REPOSITORY, "maintainer", "maintain");
      }
      const again = await app.call(token, "POST", `/api/runs/${id}/signals/go`, {});
      assert.equal(again.status, 200, JSON.stringify(again.body));
      assert.equal(asked() - before, 3, "each change asked GitHub");
      app.fake.assertNoUnexpectedRequests();
    });

    test("inputs that do not fit the flow get 422 with every problem listed, and nothing starts", async () => {
      const before = await testDb.db.query("SELECT count(*)::int AS n FROM runs");
      const answer = await app.call(app.tokens.writer, "POST", START, {
        inputs: { "dry-run": "maybe", colour: "blue" },
      });
      assert.equal(answer.status, 422, JSON.stringify(answer.body));
      assert.equal(answer.body.error?.code, "invalid_inputs");
      const details = answer.body.error?.details ?? [];
      assert.ok(
        details.some((d) => /version/.test(d)),
        `missing required input: ${details.join("; ")}`,
      );
      assert.ok(
        details.some((d) => /dry-run/.test(d)),
        `not a boolean: ${details.join("; ")}`,
      );
      assert.ok(
        details.some((d) => /colour/.test(d)),
        `unknown input: ${details.join("; ")}`,
      );

      const notManual = await app.call(
        app.tokens.writer,
        "POST",
        `/api/repos/${REPOSITORY}/flows/hook/runs`,
        {
          inputs: {},
        },
      );
      assert.equal(notManual.status, 422);
      assert.equal(notManual.body.error?.code, "trigger_not_declared");
      assert.match(notManual.body.error?.message ?? "", /on\.manual/);

      const unknown = await app.call(
        app.tokens.writer,
        "POST",
        `/api/repos/${REPOSITORY}/flows/nope/runs`,
        {},
      );
      assert.equal(unknown.status, 404);
      assert.equal(unknown.body.error?.code, "flow_not_found");
      assert.match(unknown.body.error?.message ?? "", /Its live flows: hook, release/);

      const notAnObject = await app.call(app.tokens.writer, "POST", START, { inputs: ["1.0"] });
      assert.equal(notAnObject.status, 400);
      const after = await testDb.db.query("SELECT count(*)::int AS n FROM runs");
      assert.deepEqual(after.rows, before.rows);
      app.fake.assertNoUnexpectedRequests();
    });

    test("a missing or unknown token gets 401; a login is asked of GitHub once for several requests", async () => {
      const none = await app.call(undefined, "GET", `/api/runs?repository=${REPOSITORY}`);
      assert.equal(none.status, 401);
      assert.equal(none.body.error?.code, "unauthorized");
      const bad = await app.call("gho_not_a_token", "GET", `/api/runs?repository=${REPOSITORY}`);
      assert.equal(bad.status, 401);
      assert.match(bad.body.error?.message ?? "", /does not accept this token/);

      const token = app.fake.userToken("writer");
      const asked = () =>
        app.fake.requests.filter((r) => r.operationId === "users/get-authenticated").length;
      const before = asked();
      for (let i = 0; i < 3; i++) {
        const answer = await app.call(token, "GET", `/api/runs?repository=${REPOSITORY}`);
        assert.equal(answer.status, 200);
      }
      assert.equal(asked() - before, 1, "GET /user once for the token's three requests");
      assertOnlyBadTokenRequests(app.fake);
    });

    test("someone without permission is told there is no such repository; local flows and unnamed repositories are refused", async () => {
      const list = await app.call(app.tokens.stranger, "GET", `/api/runs?repository=${REPOSITORY}`);
      assert.equal(list.status, 404);
      assert.equal(list.body.error?.code, "repository_not_found");
      const start = await app.call(app.tokens.stranger, "POST", START, {
        inputs: { version: "1" },
      });
      assert.equal(start.status, 404);
      const notInstalled = await app.call(
        app.tokens.writer,
        "GET",
        "/api/runs?repository=acme/other",
      );
      assert.equal(notInstalled.status, 404);

      const everywhere = await app.call(app.tokens.reader, "GET", "/api/runs");
      assert.equal(everywhere.status, 400);
      assert.equal(everywhere.body.error?.code, "repository_required");

      const local = await app.call(app.tokens.admin, "POST", "/api/runs", {
        flowFile: { path: "x.yml", source: "on: { manual: {} }\nsteps: { a: { run: 'true' } }\n" },
        inputs: {},
      });
      assert.equal(local.status, 403);
      assert.equal(local.body.error?.code, "local_flows_refused");
      app.fake.assertNoUnexpectedRequests();
    });

    test("paths the API does not own are passed to the app's other routes; malformed requests get 400", async () => {
      // The webhook trigger's path is the triggers part's: the API route passes it, unauthenticated.
      const trigger = await app.call(
        undefined,
        "POST",
        `/api/flows/${REPOSITORY}/hook/webhook`,
        {},
      );
      assert.equal(trigger.status, 404);
      assert.equal(trigger.body.error?.code, "not_found");
      const started = await app.call(app.tokens.writer, "POST", START, {
        inputs: { version: "5" },
      });
      const logs = await app.call(
        app.tokens.reader,
        "GET",
        `/api/runs/${String(started.body.id)}/logs?after=last`,
      );
      assert.equal(logs.status, 400);
      const encoding = await app.call(app.tokens.reader, "GET", "/api/runs/%E0%A4%A");
      assert.equal(encoding.status, 400);
      const limit = await app.call(
        app.tokens.reader,
        "GET",
        `/api/runs?repository=${REPOSITORY}&limit=0`,
      );
      assert.equal(limit.status, 400);
      app.fake.assertNoUnexpectedRequests();
    });

    test("an admin gets a flow's webhook secret, the same until rotated; a write user cannot", async () => {
      const path = `/api/flows/${REPOSITORY}/hook/webhook-secret`;
      const first = await app.call(app.tokens.admin, "POST", path, {});
      assert.equal(first.status, 200, JSON.stringify(first.body));
      assert.equal(first.body.path, `/api/flows/${REPOSITORY}/hook/webhook`);
      assert.equal(typeof first.body.secret, "string");
      assert.ok(String(first.body.secret).length >= 32);
      const again = await app.call(app.tokens.admin, "POST", path, {});
      assert.equal(again.body.secret, first.body.secret);
      const rotated = await app.call(app.tokens.admin, "POST", path, { rotate: true });
      assert.equal(rotated.body.rotated, true);
      assert.notEqual(rotated.body.secret, first.body.secret);

      const byWriter = await app.call(app.tokens.writer, "POST", path, {});
      assert.equal(byWriter.status, 403);
      assert.equal(byWriter.body.error?.permission, "write");
      assert.equal(byWriter.body.error?.required, "admin");
      assert.equal(byWriter.body.secret, undefined);

      const noWebhook = await app.call(
        app.tokens.admin,
        "POST",
        `/api/flows/${REPOSITORY}/release/webhook-secret`,
        {},
      );
      assert.equal(noWebhook.status, 422);
      assert.equal(noWebhook.body.error?.code, "trigger_not_declared");
      app.fake.assertNoUnexpectedRequests();
    });
  });
}
