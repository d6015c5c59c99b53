/**
 * Tenants stay apart in the store (issue 12), on Postgres and on PGlite: concurrency
 * groups and run references are a repository's; the embedded database's files are
 * private; and a database at migration 10 upgrades in place, its data meaning what it
 * meant (a queued run that waited on another repository's run is freed, webhook secrets
 * keep working and are bound to their repository, late results are bounded).
 */
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { deriveWebhookSecret } from "../../app/github/triggers/webhook-secrets.js";
import { webhookSecretIssue } from "../../app/store/triggers.js";
import { findRunCandidates } from "../../app/http/run-refs.js";
import { BatonService } from "../../app/runtime/service.js";
import { ConcurrencyRejectedError } from "../../app/runtime/errors.js";
import type { Database } from "../../app/store/database.js";
import { loadEvents } from "../../app/store/events.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import { migrate } from "../../app/store/migrate.js";
import { MIGRATIONS } from "../../app/store/migrations/index.js";
import { openPglite } from "../../app/store/pglite.js";
import { openPostgres } from "../../app/store/postgres.js";
import { getRunById } from "../../app/store/runs.js";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import {
  BACKENDS,
  createEmptyPostgresDatabase,
  createTestDatabase,
  type Backend,
  type TestDatabase,
} from "../helpers/db.js";

const flowSource = (mode: string) =>
  `name: deploy\nconcurrency: { group: deploy, mode: ${mode} }\nsteps:\n  hold: { wait: { signal: go } }\n`;

async function versionIn(db: Database, repository: string, mode: string): Promise<string> {
  const source = flowSource(mode);
  const parsed = parseFlow(source, ".github/flows/deploy.yml");
  assert.ok(parsed.flow, JSON.stringify(parsed.diagnostics));
  const version = await saveFlowVersion(db, {
    sourceKind: "repository",
    repository,
    path: ".github/flows/deploy.yml",
    sha: createHmac("sha256", mode).update(repository).digest("hex").slice(0, 40),
    name: "deploy",
    definition: parsed.flow,
    source,
  });
  return version.id;
}

for (const backend of BACKENDS) {
  describe(`tenants in the store (${backend})`, () => {
    let t: TestDatabase;
    let service: BatonService;
    before(async () => {
      t = await createTestDatabase(backend);
      service = new BatonService({ store: t.db });
    });
    after(async () => {
      await t.drop();
    });

    const start = async (repository: string, mode: string, installationId: number) =>
      service.startRun({
        flowFile: { versionId: await versionIn(t.db, repository, mode) },
        actor: "octocat",
        github: { installationId, headSha: "f".repeat(40) },
      });

    test("a concurrency group is the repository's: the same group name elsewhere neither rejects, queues nor cancels", async () => {
      const acme = await start("acme/widgets", "reject", 1);
      assert.equal(acme.status, "running");
      // Before issue 12, `deploy` of other/gadgets (installation 2) collided with acme's.
      const other = await start("other/gadgets", "reject", 2);
      assert.equal(other.status, "running");
      await assert.rejects(start("acme/widgets", "reject", 1), ConcurrencyRejectedError);

      const queued = await start("other/gadgets", "queue", 2);
      assert.equal(queued.status, "queued", "queued behind other/gadgets' own run");
      const superseding = await start("acme/widgets", "cancel-in-progress", 1);
      assert.equal(superseding.status, "running");
      const cancels = async (runId: string) =>
        (await loadEvents(t.db, runId)).filter((event) => event.type === "run.cancel-requested");
      assert.equal((await cancels(acme.runId)).length, 1, "acme's own run is superseded");
      assert.deepEqual(await cancels(other.runId), [], "other/gadgets' run is untouched");
      assert.equal((await getRunById(t.db, other.runId))?.status, "running");
    });

    test("run references resolve only within the repository they are asked for", async () => {
      const acme = await findRunCandidates(t.db, "deploy#1", "acme/widgets");
      assert.deepEqual(
        acme.map((run) => run.repository),
        ["acme/widgets"],
      );
      assert.equal((await findRunCandidates(t.db, "deploy#1")).length, 2, "unscoped: both");
      assert.deepEqual(await findRunCandidates(t.db, "other/gadgets/deploy#1", "acme/widgets"), []);
      const [theirs] = await findRunCandidates(t.db, "other/gadgets/deploy#1");
      assert.ok(theirs);
      assert.deepEqual(await findRunCandidates(t.db, theirs.id, "acme/widgets"), []);
      assert.deepEqual(await findRunCandidates(t.db, theirs.id.slice(0, 8), "acme/widgets"), [
        ...(await findRunCandidates(t.db, theirs.id.slice(0, 8))).filter(
          (run) => run.repository === "acme/widgets",
        ),
      ]);
      assert.deepEqual(
        (await findRunCandidates(t.db, theirs.id, "other/gadgets")).map((run) => run.id),
        [theirs.id],
      );
    });
  });
}

/** Every mode under `dir`, as "<relative path> <octal mode>" for those not private. */
function looseEntries(dir: string): string[] {
  const loose: string[] = [];
  const visit = (path: string, rel: string) => {
    const stats = statSync(path);
    const mode = stats.mode & 0o777;
    if (stats.isDirectory()) {
      if (mode !== 0o700) loose.push(`${rel}/ ${mode.toString(8)}`);
      for (const name of readdirSync(path)) visit(join(path, name), `${rel}/${name}`);
    } else if ((mode & 0o077) !== 0) {
      loose.push(`${rel} ${mode.toString(8)}`);
    }
  };
  visit(dir, ".");
  return loose;
}

describe("the embedded database's files are private", () => {
  let parent: string;
  before(async () => {
    parent = await mkdtemp(join(tmpdir(), "baton-private-"));
  });
  after(async () => {
    await rm(parent, { recursive: true, force: true });
  });

  test("a new data directory is 0700 and everything in it 0600 (PGlite's own files too), open and closed", async () => {
    const dir = join(parent, "new", ".baton");
    const db = await openPglite(dir);
    try {
      await db.query("CREATE TABLE secrets (v text)");
      await db.query("INSERT INTO secrets VALUES ('do not share')");
      assert.deepEqual(looseEntries(dir), []);
      assert.equal(statSync(join(dir, "lock")).mode & 0o777, 0o600);
      assert.ok(readdirSync(join(dir, "pgdata", "pg_wal")).length > 0, "the WAL is in there");
    } finally {
      await db.close();
    }
    assert.deepEqual(looseEntries(dir), [], "PGlite's rewrites while it ran are tightened");
  });

  test("an existing data directory with looser modes is tightened when opened", async () => {
    const dir = join(parent, "loose");
    const first = await openPglite(dir);
    await first.close();
    chmodSync(dir, 0o755);
    chmodSync(join(dir, "pgdata"), 0o777);
    chmodSync(join(dir, "pgdata", "PG_VERSION"), 0o666);
    mkdirSync(join(dir, "extra"), { mode: 0o755 });
    writeFileSync(join(dir, "extra", "server.json"), "{}", { mode: 0o644 });
    chmodSync(join(dir, "extra", "server.json"), 0o644);
    assert.ok(looseEntries(dir).length >= 5, looseEntries(dir).join(", "));
    const db = await openPglite(dir);
    try {
      assert.deepEqual(looseEntries(dir), []);
      assert.equal(statSync(join(dir, "extra", "server.json")).mode & 0o777, 0o600);
    } finally {
      await db.close();
    }
  });
});

describe("a data directory this user may not make private", () => {
  test("is refused with the command that fixes it, and nothing is written into it", async () => {
    const parent = await mkdtemp(join(tmpdir(), "baton-foreign-"));
    try {
      // Another user's directory, open to everyone. As root, the refused process runs as
      // nobody (uid 65534) against root's directory; otherwise this user meets the
      // filesystem's root, which is root's.
      const asRoot = process.getuid?.() === 0;
      const dir = asRoot ? join(parent, "data") : "/";
      if (asRoot) {
        chmodSync(parent, 0o755);
        mkdirSync(dir, { mode: 0o777 });
        chmodSync(dir, 0o777);
      }
      const pglite = fileURLToPath(new URL("../../app/store/pglite.js", import.meta.url));
      const script = `
        const { openPglite } = await import(${JSON.stringify(pglite)});
        try { await openPglite(${JSON.stringify(dir)}); console.log("opened"); }
        catch (error) { console.log(JSON.stringify({ name: error.name, message: error.message })); }`;
      const child = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
        encoding: "utf8",
        ...(asRoot ? { uid: 65534, gid: 65534 } : {}),
      });
      const answer = JSON.parse(child.stdout.trim()) as { name: string; message: string };
      assert.equal(answer.name, "DataDirPermissionsError", child.stderr);
      assert.match(answer.message, /must be private to its owner/);
      assert.match(
        answer.message,
        /chown -R "\$\(id -u\):\$\(id -g\)" '.*' && chmod -R u\+rwX,go= /,
      );
      if (asRoot) {
        assert.deepEqual(readdirSync(dir), [], "no lock, no pgdata");
        assert.equal(statSync(dir).mode & 0o777, 0o777, "and its modes are not touched");
      }
    } finally {
      await rm(parent, { recursive: true, force: true });
    }
  });
});

/** Apply migrations 1-10 only: the schema of the release before issue 12. */
async function migrateTo10(db: Database): Promise<void> {
  await migrateTo(db, 10);
}

/** Apply migrations 1-`last` only: the schema of an earlier release. */
async function migrateTo(db: Database, last: number): Promise<void> {
  await db.query(
    "CREATE TABLE IF NOT EXISTS baton_migrations (id integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
  );
  for (const migration of MIGRATIONS.filter((m) => m.id <= last)) {
    await db.transaction(async (tx) => {
      await tx.query("INSERT INTO baton_migrations (id) VALUES ($1)", [migration.id]);
      await tx.exec(migration.sql);
    });
  }
}

async function openEmpty(backend: Backend): Promise<{ db: Database; drop: () => Promise<void> }> {
  if (backend === "postgres") {
    const created = await createEmptyPostgresDatabase();
    const db = openPostgres({ connectionString: created.url });
    return {
      db,
      drop: async () => {
        await db.close();
        await created.drop();
      },
    };
  }
  const dir = await mkdtemp(join(tmpdir(), "baton-upgrade-"));
  const db = await openPglite(dir);
  return {
    db,
    drop: async () => {
      await db.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

for (const backend of BACKENDS) {
  test(`a database at migration 10 upgrades in place, its data meaning the same (${backend})`, async () => {
    const { db, drop } = await openEmpty(backend);
    try {
      await migrateTo10(db);
      // Today's data: two repositories whose flows both use group `deploy`.
      await db.transaction((tx) =>
        tx.exec(`
        INSERT INTO github_repositories (repository, github_id, installation_id, default_branch)
        VALUES ('acme/widgets', 101, 1, 'main'), ('other/gadgets', 202, 2, 'main');
        INSERT INTO flow_versions (id, source_kind, repository, path, sha, name, definition, source)
        VALUES ('v-acme', 'repository', 'acme/widgets', '.github/flows/deploy.yml', 'a', 'deploy', '{}', ''),
               ('v-other', 'repository', 'other/gadgets', '.github/flows/deploy.yml', 'b', 'deploy', '{}', '');
        INSERT INTO runs (id, flow_version_id, repository, flow, number, status, concurrency_group,
                          actor, trigger_event, inputs, created_at)
        VALUES ('r1', 'v-acme', 'acme/widgets', 'deploy', 1, 'running', 'deploy', 'a', 'manual', '{}', '2026-01-01T00:00:00Z'),
               -- waits for r1, another repository's run, under the old global groups
               ('r2', 'v-other', 'other/gadgets', 'deploy', 1, 'queued', 'deploy', 'b', 'manual', '{}', '2026-01-01T00:01:00Z'),
               ('r3', 'v-other', 'other/gadgets', 'deploy', 2, 'queued', 'deploy', 'b', 'manual', '{}', '2026-01-01T00:02:00Z'),
               -- waits for r1 of its own repository: still waits
               ('r4', 'v-acme', 'acme/widgets', 'deploy', 2, 'queued', 'deploy', 'a', 'manual', '{}', '2026-01-01T00:03:00Z'),
               ('r5', 'v-acme', 'acme/widgets', 'deploy', 3, 'success', 'deploy', 'a', 'manual', '{}', '2026-01-01T00:04:00Z');
        INSERT INTO baton_keys (name, key) VALUES ('webhook-secrets', 'k3y');
        INSERT INTO flow_webhook_secrets (repository, flow, generation, rotated_by)
        VALUES ('acme/widgets', 'deploy', 3, 'admin'), ('gone/away', 'deploy', 1, 'admin');
        INSERT INTO runners (id, name, labels, token_hash, scope_kind, scope, installation_id, registered_by)
        VALUES ('ru1', 'box', '{self-hosted}', 'h', 'repository', 'acme/widgets', 1, 'admin');
      `),
      );
      const late = Array.from({ length: 13 }, (_, i) => ({ runnerId: "ru1", leaseId: `l${i}` }));
      await db.query(
        `INSERT INTO runner_jobs (key, run_id, step, attempt, kind, labels, repository, payload, status, late_results)
         VALUES ('r1/s/1', 'r1', 's', 1, 'execute', '{self-hosted}', 'acme/widgets', '{}', 'finished', $1::jsonb),
                ('r1/s/2', 'r1', 's', 2, 'execute', '{self-hosted}', 'acme/widgets', '{}', 'queued', '[{"leaseId":"only"}]')`,
        [JSON.stringify(late)],
      );

      assert.deepEqual(await migrate(db), [11, 12, 13]);

      const runs = await db.query<{ id: string; status: string; concurrency_group: string }>(
        "SELECT id, status, concurrency_group FROM runs ORDER BY id",
      );
      assert.deepEqual(
        runs.rows.map((r) => [r.id, r.status, r.concurrency_group]),
        [
          ["r1", "running", "deploy"],
          ["r2", "queued", "deploy"],
          ["r3", "queued", "deploy"],
          ["r4", "queued", "deploy"],
          ["r5", "success", "deploy"],
        ],
        "runs and their groups are kept as they were",
      );
      // r2 no longer waits for acme's r1: the runtime is asked to admit the oldest queued
      // run of other/gadgets' group, as the end of a run of that group asks.
      const tasks = await db.query<{ kind: string; run_id: string; key: string; payload: unknown }>(
        "SELECT kind, run_id, key, payload FROM tasks ORDER BY key",
      );
      assert.deepEqual(tasks.rows, [
        {
          kind: "run-ended",
          run_id: "r2",
          key: "r2/run-ended/regroup",
          payload: { type: "run-ended", concurrencyGroup: "deploy" },
        },
      ]);

      // The secret issued before keeps working (same derivation), now bound to id 101.
      const issue = await webhookSecretIssue(db, "acme/widgets", "deploy");
      assert.deepEqual(issue, { generation: 3, derivation: "name", repositoryId: 101 });
      assert.equal(
        deriveWebhookSecret("k3y", { repository: "acme/widgets", flow: "deploy", ...issue }),
        createHmac("sha256", "k3y").update("acme/widgets/deploy/3").digest("hex"),
      );
      assert.deepEqual(await webhookSecretIssue(db, "gone/away", "deploy"), {
        generation: 1,
        derivation: "name",
        repositoryId: undefined,
      });

      // Late results: the first 10 kept, the rest counted; short lists untouched.
      const jobs = await db.query<{
        key: string;
        late_results: { leaseId: string }[];
        late_results_dropped: number;
      }>("SELECT key, late_results, late_results_dropped FROM runner_jobs ORDER BY key");
      assert.deepEqual(
        jobs.rows.map((j) => [j.key, j.late_results.map((l) => l.leaseId), j.late_results_dropped]),
        [
          ["r1/s/1", ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8", "l9"], 3],
          ["r1/s/2", ["only"], 0],
        ],
      );
      assert.deepEqual(await migrate(db), [], "a second migrate does nothing");
    } finally {
      await drop();
    }
  });
}

for (const backend of BACKENDS) {
  test(`a database at migration 12 upgrades in place: a run's stored state reads the same from the step rows (${backend})`, async () => {
    const { db, drop } = await openEmpty(backend);
    try {
      await migrateTo(db, 12);
      const step = (id: string, status: string, extra: Record<string, unknown> = {}) => ({
        id,
        status,
        attempt: status === "pending" ? 0 : 1,
        outputs: {},
        approvals: [],
        ...extra,
      });
      const state = {
        status: "running",
        meta: { id: "r1", number: 1, actor: "a", repository: "acme/widgets", sha: "s" },
        inputs: { who: "me" },
        trigger: { event: "manual", payload: {} },
        runAttempt: 1,
        steps: {
          build: step("build", "done", {
            result: "success",
            outputs: { out: "1" },
            startedAt: 1000,
            finishedAt: 2000,
            compensation: "running",
          }),
          test: step("test", "running", { startedAt: 2000 }),
          // No steps row for it (written before the row existed): the migration adds one.
          ship: step("ship", "pending"),
        },
        outputs: {},
        createdAt: 500,
      };
      await db.transaction(async (tx) => {
        await tx.exec(`
          INSERT INTO flow_versions (id, source_kind, repository, path, sha, name, definition, source)
          VALUES ('v1', 'repository', 'acme/widgets', '.github/flows/deploy.yml', 'a', 'deploy', '{}', '');
          INSERT INTO runs (id, flow_version_id, repository, flow, number, status, actor, trigger_event, inputs, created_at, last_seq)
          VALUES ('r1', 'v1', 'acme/widgets', 'deploy', 1, 'running', 'a', 'manual', '{}', '2026-01-01T00:00:00Z', 7);
          INSERT INTO steps (run_id, step, status, result, attempt, outputs)
          VALUES ('r1', 'build', 'done', 'success', 1, '{"out":"1"}'), ('r1', 'test', 'running', NULL, 1, '{}');
        `);
        await tx.query("UPDATE runs SET state = $1::jsonb WHERE id = 'r1'", [
          JSON.stringify(state),
        ]);
      });

      assert.deepEqual(await migrate(db), [13]);

      const run = await getRunById(db, "r1");
      assert.deepEqual(run?.state, state, "the state reads as it was stored");
      const stored = await db.query<{ has_steps: boolean }>(
        "SELECT state ? 'steps' AS has_steps FROM runs WHERE id = 'r1'",
      );
      assert.equal(stored.rows[0]?.has_steps, false, "runs.state keeps only the run-level fields");
      const rows = await db.query<{ step: string; status: string }>(
        "SELECT step, status FROM steps WHERE run_id = 'r1' ORDER BY step",
      );
      assert.deepEqual(
        rows.rows.map((r) => [r.step, r.status]),
        [
          ["build", "done"],
          ["ship", "pending"],
          ["test", "running"],
        ],
      );
    } finally {
      await drop();
    }
  });
}
