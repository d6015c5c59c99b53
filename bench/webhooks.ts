/**
 * Webhook acknowledgement latency (issue 4): deliveries POSTed at a steady 200 per second
 * (open loop: a slow answer does not slow the sender, as with GitHub), each a real
 * `issues.labeled` example payload, signed. Latency is measured by the sender, from the
 * request's start to the end of the answer. The inbox verifies the signature, stores the
 * delivery and answers 202 — on PGlite and on Postgres — while a delivery worker drains
 * the inbox in the same process, as in the app.
 *
 * Anchor, in the same run: a bare Node HTTP server that reads the body and answers 202
 * (no verification, no database): the floor set by HTTP and the sender itself.
 */
import { startAppAgainst } from "../test/fake-github/start-app-against.js";
import { createHmac, randomUUID } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { Agent, createServer, request as httpRequest, type RequestListener } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startDeliveryWorker } from "../app/github/process-deliveries.js";
import { createWebhookInbox } from "../app/github/webhook-inbox.js";
import { silentLogger } from "../app/runtime/log.js";
import type { Database } from "../app/store/database.js";
import { migrate } from "../app/store/migrate.js";
import { openPglite } from "../app/store/pglite.js";
import { openPostgres } from "../app/store/postgres.js";
import { FakeGitHub } from "../test/fake-github/server.js";
import { patchPayload, sendWebhook, webhookExample } from "../test/fake-github/webhooks.js";
import { describeStore, figureKey, withBenchDatabase } from "./bench-database.js";
import type { Sizes } from "./runtime.js";
import { figure, fmt, percentile, printTable } from "./table.js";

const RATE_PER_SECOND = 200;
/** Deliveries sent before measuring (connections, JIT, caches); stored like the others. */
const WARM_UP = 20;
const SECRET = "bench secret";

export async function benchWebhookAck(sizes: Sizes): Promise<void> {
  const count = sizes.webhookDeliveries;
  const body = JSON.stringify(webhookExample("issues", "labeled"));
  const anchor = await measure(count, body, (request, response) => {
    request.resume();
    request.on("end", () => response.writeHead(202).end());
  });
  const { pglite, postgres } = await onBoth((store) => measureInbox(store, count, body));
  const ack = (database: string, latency: Latency) =>
    figure({
      figure: `webhooks.ack_p99_ms.${database}`,
      baton: latency.p99,
      anchor: anchor.p99,
      unit: "ms",
      aim: { of: "baton", op: "<", value: 25 },
    });
  printTable(
    `Webhook acknowledgement: ${fmt.int(count)} signed deliveries at ${RATE_PER_SECOND}/s (${fmt.int(body.length)} bytes each)`,
    [
      { label: "anchor: bare HTTP 202, p50 / p99", value: pair(anchor) },
      {
        label: `inbox on ${pglite.database}, p50 / p99`,
        value: pair(pglite),
        figure: ack(figureKey(pglite.database), pglite),
      },
      {
        label: `inbox on ${postgres.database}, p50 / p99`,
        value: pair(postgres),
        figure: ack("postgres", postgres),
      },
    ],
    [
      `non-202 answers: PGlite ${pglite.failed}, Postgres ${postgres.failed}; ` +
        `stored: PGlite ${pglite.stored}, Postgres ${postgres.stored} of ${count + WARM_UP} sent (warm-up included)`,
    ],
  );
}

export interface Latency {
  p50: number;
  p99: number;
  failed: number;
  stored: number;
}

export function pair(latency: Latency): string {
  return `${fmt.ms(latency.p50, 2)} / ${fmt.ms(latency.p99, 2)}`;
}

export async function withPglite<T>(fn: (store: Database) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "baton-bench-webhooks-"));
  const store = await openPglite(dir);
  try {
    await migrate(store);
    return await fn(store);
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * `measure` on a fresh PGlite, then on a fresh Postgres database; each result carries
 * its store's description (with its durability settings).
 */
export async function onBoth<T>(
  measure: (store: Database) => Promise<T>,
): Promise<{ pglite: T & { database: string }; postgres: T & { database: string } }> {
  const on = async (store: Database) => {
    const database = await describeStore(store);
    return { ...(await measure(store)), database };
  };
  const pglite = await withPglite(on);
  const postgres = await withBenchDatabase({}, async (bench) => {
    const store = openPostgres({ connectionString: bench.url, max: 10 });
    try {
      return await on(store);
    } finally {
      await store.close();
    }
  });
  return { pglite, postgres };
}

async function measureInbox(store: Database, count: number, body: string): Promise<Latency> {
  // Deliveries of an event nobody handles are marked ignored: the worker's own cost.
  const worker = startDeliveryWorker({ store, handlers: {}, log: silentLogger });
  const inbox = createWebhookInbox({
    store,
    secret: SECRET,
    log: silentLogger,
    onStored: () => worker.kick(),
  });
  try {
    const latency = await measure(count, body, (request, response) => {
      void inbox(request, response);
    });
    const stored = await store.query<{ n: string | number }>(
      "SELECT count(*) AS n FROM github_deliveries",
    );
    return { ...latency, stored: Number(stored.rows[0]?.n ?? 0) };
  } finally {
    await worker.stop();
  }
}

/** Send `count` deliveries at RATE_PER_SECOND to a server with `listener`; latencies in ms. */
async function measure(count: number, body: string, listener: RequestListener): Promise<Latency> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  const agent = new Agent({ keepAlive: true, maxSockets: 64 });
  const signature = `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`;
  const latencies: number[] = [];
  let failed = 0;
  const send = (): Promise<void> =>
    new Promise((resolve) => {
      const started = performance.now();
      const request = httpRequest(
        {
          host: "127.0.0.1",
          port,
          path: "/api/github/webhooks",
          method: "POST",
          agent,
          headers: {
            "content-type": "application/json",
            "x-github-event": "issues",
            "x-github-delivery": randomUUID(),
            "x-hub-signature-256": signature,
            "user-agent": "GitHub-Hookshot/bench",
          },
        },
        (response) => {
          response.resume();
          response.on("end", () => {
            latencies.push(performance.now() - started);
            if (response.statusCode !== 202) failed += 1;
            resolve();
          });
        },
      );
      request.on("error", () => {
        failed += 1;
        resolve();
      });
      request.end(body);
    });
  // Warm up (connections, JIT, the database's caches), not measured.
  await Promise.all(Array.from({ length: WARM_UP }, send));
  latencies.length = 0;
  failed = 0;
  const started = performance.now();
  const sent: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = started + (i * 1000) / RATE_PER_SECOND;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    sent.push(send());
  }
  await Promise.all(sent);
  agent.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return {
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    failed,
    stored: count,
  };
}

/**
 * From a trigger's delivery to its first step dispatched (issue 4): the whole app as
 * `npm start` composes it, against the fake GitHub, with a live flow listening to
 * `issues.labeled`. Each delivery is sent signed, one at a time (50 ms apart); the figure
 * is from sending it to the moment its run's first attempt started (the time of the
 * decision that enqueues the step's execution, in whole milliseconds). Anchor, in the same
 * run and database: starting the same flow through the run service, from the call to its
 * commit (no HTTP, no inbox, no delivery worker, no live-flow lookup).
 */
export async function benchTriggerToStep(sizes: Sizes): Promise<void> {
  const count = sizes.triggerDeliveries;
  const { pglite, postgres } = await onBoth((store) => measureTriggers(store, count));
  const first = (database: string, f: { trigger: Latency; anchor: Latency }) =>
    figure({
      figure: `trigger.first_step_p50_ms.${database}`,
      baton: f.trigger.p50,
      anchor: f.anchor.p50,
      unit: "ms",
      aim: { of: "baton", op: "<", value: 20 },
    });
  printTable(`Trigger to first step: ${fmt.int(count)} issues.labeled deliveries, one at a time`, [
    {
      label: `anchor: service.startRun on ${pglite.database}, p50 / p99`,
      value: pair(pglite.anchor),
    },
    {
      label: `delivery → first step on ${pglite.database}, p50 / p99`,
      value: pair(pglite.trigger),
      figure: first(figureKey(pglite.database), pglite),
    },
    {
      label: `anchor: service.startRun on ${postgres.database}, p50 / p99`,
      value: pair(postgres.anchor),
    },
    {
      label: `delivery → first step on ${postgres.database}, p50 / p99`,
      value: pair(postgres.trigger),
      figure: first("postgres", postgres),
    },
  ]);
}

const TRIGGERED_FLOW = `on:
  manual: {}
  github:
    issues: { types: [labeled] }
steps:
  first:
    run: "true"
`;

async function measureTriggers(
  store: Database,
  count: number,
): Promise<{ trigger: Latency; anchor: Latency }> {
  const fake = await FakeGitHub.start({ secondaryRateLimit: { perMinute: 1_000_000 } });
  const running = await startAppAgainst(fake, store, { secret: SECRET });
  try {
    await fake.install({
      installationId: 1,
      account: "acme",
      repositories: [{ name: "widgets", files: { ".github/flows/bench.yml": TRIGGERED_FLOW } }],
    });
    const version = await waitFor(async () => {
      const live = await store.query<{ version_id: string | null }>(
        "SELECT version_id FROM live_flows WHERE repository = 'acme/widgets' AND flow = 'bench'",
      );
      return live.rows[0]?.version_id ?? undefined;
    });
    const repository = fake.repository("acme/widgets");
    const payload = patchPayload(webhookExample("issues", "labeled"), {
      installationId: 1,
      repository: { id: repository.id, owner: "acme", name: "widgets" },
    });
    const trigger: number[] = [];
    for (let i = 0; i < count + WARM_UP; i++) {
      const sentAt = Date.now();
      await sendWebhook({
        url: `${running.url}/api/github/webhooks`,
        secret: SECRET,
        event: "issues",
        payload,
      });
      // Deliveries go one at a time: the (i + 1)th run is this delivery's.
      const runId = await waitFor(async () => {
        const runs = await store.query<{ id: string }>(
          "SELECT id FROM runs WHERE flow = 'bench' ORDER BY id OFFSET $1 LIMIT 1",
          [i],
        );
        return runs.rows[0]?.id;
      });
      const startedAt = await attemptStartedAt(store, runId);
      if (i >= WARM_UP) trigger.push(startedAt - sentAt);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const anchor: number[] = [];
    for (let i = 0; i < count + WARM_UP; i++) {
      const calledAt = performance.now();
      await running.app.service.startRun({
        flowFile: { versionId: version },
        actor: "bench",
        github: { installationId: 1, headSha: fake.head("acme/widgets") },
      });
      if (i >= WARM_UP) anchor.push(performance.now() - calledAt);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { trigger: latencyOf(trigger), anchor: latencyOf(anchor) };
  } finally {
    await running.stop();
    await fake.stop();
  }
}

/** When the run's first attempt started (the decision's own clock, ms). */
function attemptStartedAt(store: Database, runId: string): Promise<number> {
  return waitFor(async () => {
    const events = await store.query<{ at: string | number }>(
      `SELECT (data ->> 'at') AS at FROM run_events
        WHERE run_id = $1 AND type = 'attempt.started' ORDER BY seq LIMIT 1`,
      [runId],
    );
    const at = events.rows[0]?.at;
    return at === undefined ? undefined : Number(at);
  });
}

/** Poll (every 2 ms, at most 30 s) until `read` gives a value. */
export async function waitFor<T>(read: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("bench: timed out waiting (30 s)");
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

export function latencyOf(values: number[]): Latency {
  return {
    p50: percentile(values, 50),
    p99: percentile(values, 99),
    failed: 0,
    stored: values.length,
  };
}
