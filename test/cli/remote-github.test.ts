/**
 * The `baton` binary against a running GitHub app's API (`BATON_URL` or `--url`, a GitHub
 * token from GITHUB_TOKEN): what it prints with --json and the exit codes of `baton --help`
 * (0 done, 1 the answer is no, 2 wrong arguments, 4 not authenticated or not allowed).
 */
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { BACKENDS, createTestDatabase, type TestDatabase } from "../helpers/db.js";
import {
  type AppApi,
  assertOnlyBadTokenRequests,
  REPOSITORY,
  startAppApi,
} from "../http/github-app-api.js";
import { baton, startBaton, waitFor } from "./baton-process.js";

interface JsonError {
  error: {
    code: string;
    message: string;
    details?: string[];
    permission?: string;
    required?: string;
  };
}

for (const backend of BACKENDS) {
  describe(`baton against a GitHub app on ${backend}`, () => {
    let testDb: TestDatabase;
    let app: AppApi;
    let emptyPath: string;
    /** As `who`: BATON_URL and that person's GitHub token; nothing local. */
    const as = (who: keyof AppApi["tokens"], extra: NodeJS.ProcessEnv = {}) => ({
      env: {
        BATON_URL: app.url,
        GITHUB_TOKEN: app.tokens[who],
        BATON_TOKEN: "",
        DATABASE_URL: "",
        ...extra,
      },
    });
    before(async () => {
      testDb = await createTestDatabase(backend);
      app = await startAppApi(testDb.db);
      emptyPath = await mkdtemp(join(tmpdir(), "baton-no-gh-"));
    });
    after(async () => {
      await app.stop();
      await testDb.drop();
      await rm(emptyPath, { recursive: true, force: true });
    });

    test("a write user starts a live flow; a read user lists and shows it but cannot cancel it (exit 4)", async () => {
      const started = await baton(
        ["run", "release", "--repo", REPOSITORY, "version=1.2", "--json"],
        as("writer"),
      );
      assert.equal(started.code, 0, started.stderr);
      const run = JSON.parse(started.stdout) as {
        id: string;
        number: number;
        flow: string;
        repository: string;
      };
      assert.equal(run.flow, "release");
      assert.equal(run.repository, REPOSITORY);
      const ref = `${REPOSITORY}/release#${run.number}`;

      const [listed, shown, cancel] = await Promise.all([
        baton(
          ["--url", app.url, "runs", "--repo", REPOSITORY, "--json"],
          as("reader", { BATON_URL: "" }),
        ),
        baton(["show", ref, "--json"], as("reader")),
        baton(["cancel", ref, "--json"], as("reader")),
      ]);
      assert.equal(listed.code, 0, listed.stderr);
      const runs = JSON.parse(listed.stdout) as Array<{ id: string; repository: string }>;
      assert.ok(runs.some((r) => r.id === run.id && r.repository === REPOSITORY));
      assert.equal(shown.code, 0, shown.stderr);
      assert.equal((JSON.parse(shown.stdout) as { id: string }).id, run.id);

      assert.equal(cancel.code, 4, cancel.stderr);
      const refused = JSON.parse(cancel.stdout) as JsonError;
      assert.equal(refused.error.code, "permission_denied");
      assert.equal(refused.error.permission, "read");
      assert.equal(refused.error.required, "write");
      assert.match(
        cancel.stderr,
        /reader has read permission on acme\/widgets; cancelling a run needs write/,
      );

      const approved = await baton(["approve", ref, "ship", "--json"], as("admin"));
      assert.equal(approved.code, 0, approved.stderr);
      assert.deepEqual(JSON.parse(approved.stdout), {
        run: ref,
        step: "ship",
        decision: "approve",
        counted: true,
        user: "admin",
      });
      app.fake.assertNoUnexpectedRequests();
    });

    test("run --wait follows a live run on the app until it ends", async () => {
      const before = await app.call(app.tokens.reader, "GET", `/api/runs?repository=${REPOSITORY}`);
      const seen = new Set((before.body as unknown as Array<{ id: string }>).map((r) => r.id));
      const waiting = startBaton(
        ["run", "release", "--repo", REPOSITORY, "version=7", "--wait", "--json"],
        as("writer"),
      );
      // The run waits for its approval; an admin gives it through the API.
      const run = await waitFor(async () => {
        const listed = await app.call(
          app.tokens.reader,
          "GET",
          `/api/runs?repository=${REPOSITORY}`,
        );
        const runs = listed.body as unknown as Array<{ id: string; status: string }>;
        return runs.find((r) => r.status === "running" && !seen.has(r.id));
      });
      const approved = await app.call(
        app.tokens.admin,
        "POST",
        `/api/runs/${run.id}/steps/ship/approve`,
        {},
      );
      assert.equal(approved.body.counted, true, JSON.stringify(approved.body));
      const done = await waiting.exited;
      assert.equal(done.code, 0, done.stderr);
      const finished = JSON.parse(done.stdout) as { id: string; state: { status: string } };
      assert.equal(finished.id, run.id);
      assert.equal(finished.state.status, "success");
      app.fake.assertNoUnexpectedRequests();
    });

    test("invalid inputs exit 1 with each problem; a missing repository exits 1; wrong arguments exit 2", async () => {
      const [invalid, unlisted, noUrl, badRepo] = await Promise.all([
        baton(["run", "release", "--repo", REPOSITORY, "colour=blue", "--json"], as("writer")),
        baton(["runs", "--json"], as("reader")),
        baton(["run", "release", "--repo", REPOSITORY], as("writer", { BATON_URL: "" })),
        baton(["runs", "--repo", "widgets"], as("reader")),
      ]);
      assert.equal(invalid.code, 1, invalid.stderr);
      const error = (JSON.parse(invalid.stdout) as JsonError).error;
      assert.equal(error.code, "invalid_inputs");
      assert.ok(error.details?.some((d) => /version/.test(d)));
      assert.ok(error.details?.some((d) => /colour/.test(d)));
      assert.match(invalid.stderr, /colour/);

      assert.equal(unlisted.code, 1, unlisted.stderr);
      assert.equal((JSON.parse(unlisted.stdout) as JsonError).error.code, "repository_required");
      assert.equal(noUrl.code, 2);
      assert.match(noUrl.stderr, /--url or BATON_URL/);
      assert.equal(badRepo.code, 2);
      assert.match(badRepo.stderr, /owner\/repo/);
    });

    test("no usable token exits 4 and says how to log in", async () => {
      const [bad, none] = await Promise.all([
        baton(
          ["runs", "--repo", REPOSITORY, "--json"],
          as("reader", { GITHUB_TOKEN: "gho_revoked" }),
        ),
        // No token in the environment and no `gh` on the PATH.
        baton(
          ["runs", "--repo", REPOSITORY, "--json"],
          as("reader", { GITHUB_TOKEN: "", PATH: emptyPath }),
        ),
      ]);
      assert.equal(bad.code, 4, bad.stderr);
      assert.equal((JSON.parse(bad.stdout) as JsonError).error.code, "unauthorized");
      assert.equal(none.code, 4, none.stderr);
      assert.match(none.stderr, /GITHUB_TOKEN/);
      assert.match(none.stderr, /gh auth login/);
      // The revoked token's GET /user is answered 401, as GitHub does: expected here.
      assertOnlyBadTokenRequests(app.fake);
    });

    test("an admin gets a flow's webhook secret and its URL; a write user is refused (exit 4)", async () => {
      const [admin, writer] = await Promise.all([
        baton(["webhook-secret", REPOSITORY, "hook", "--json"], as("admin")),
        baton(["webhook-secret", REPOSITORY, "hook", "--json"], as("writer")),
      ]);
      assert.equal(admin.code, 0, admin.stderr);
      const secret = JSON.parse(admin.stdout) as {
        secret: string;
        url: string;
        repository: string;
      };
      assert.match(secret.secret, /^[0-9a-f]{64}$/);
      assert.equal(secret.url, `${app.url}/api/flows/${REPOSITORY}/hook/webhook`);
      assert.equal(writer.code, 4, writer.stderr);
      assert.equal((JSON.parse(writer.stdout) as JsonError).error.required, "admin");
      assert.doesNotMatch(writer.stdout + writer.stderr, new RegExp(secret.secret));
      app.fake.assertNoUnexpectedRequests();
    });
  });
}
