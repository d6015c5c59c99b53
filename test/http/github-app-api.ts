/**
 * The API as the GitHub app serves it, for tests: a real HTTP server with the
 * GitHub-users route, on a test database, against the fake GitHub. One repository,
 * acme/widgets, installed (installation 7) with live flows, and people with each role.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";
import { parseFlow } from "../../flows-schema/parse-flow.js";
import { createGitHubClient } from "../../app/github/github-client.js";
import { apiPart } from "../../app/http/api-part.js";
import { serveApiRoute } from "../../app/http/api-server.js";
import { silentLogger } from "../../app/runtime/log.js";
import { BatonService } from "../../app/runtime/service.js";
import type { Database } from "../../app/store/database.js";
import { saveFlowVersion } from "../../app/store/flow-versions.js";
import { FakeGitHub } from "../fake-github/server.js";

export const REPOSITORY = "acme/widgets";
export const INSTALLATION_ID = 7;

/** A manual flow with a required input and an approval that needs write permission. */
export const RELEASE_FLOW = `
on:
  manual:
    inputs:
      version: { type: string, required: true, description: Version to ship }
      dry-run: { type: boolean }
steps:
  ship:
    approval:
      via: [cli]
      approvers: { permission: write }
`;

/** Started only by its webhook. */
export const HOOK_FLOW = `
on:
  webhook: {}
steps:
  hold:
    wait: { signal: go }
`;

export interface AppApi {
  fake: FakeGitHub;
  url: string;
  /** The commit whose flows are live. */
  liveSha: string;
  /** Tokens of people by role on acme/widgets; `stranger` has none. */
  tokens: Record<"reader" | "writer" | "admin" | "stranger", string>;
  /** The live version of each flow, by name. */
  versions: Record<string, string>;
  /** Calls the API with a token (none: no Authorization header). */
  call(
    token: string | undefined,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: Record<string, unknown> & { error?: ApiErrorBody } }>;
  stop(): Promise<void>;
}

export interface ApiErrorBody {
  code: string;
  message: string;
  details?: string[];
  permission?: string;
  required?: string;
}

export async function startAppApi(store: Database): Promise<AppApi> {
  const fake = await FakeGitHub.start();
  fake.addInstallation({ id: INSTALLATION_ID, account: "acme" });
  const files = {
    ".github/flows/release.yml": RELEASE_FLOW,
    ".github/flows/hook.yml": HOOK_FLOW,
  };
  const repo = fake.addRepository({
    owner: "acme",
    name: "widgets",
    installationId: INSTALLATION_ID,
    files,
  });
  const liveSha = fake.head(REPOSITORY);
  fake.setRole(REPOSITORY, "reader", "read");
  fake.setRole(REPOSITORY, "writer", "write");
  fake.setRole(REPOSITORY, "admin", "admin");
  const tokens = {
    reader: fake.userToken("reader"),
    writer: fake.userToken("writer"),
    admin: fake.userToken("admin"),
    stranger: fake.userToken("stranger"),
  };

  // What the flow loader records when the app is installed: the repository and its live flows.
  await store.query(
    `INSERT INTO github_repositories (repository, github_id, installation_id, default_branch, live_sha)
     VALUES ($1, $2, $3, 'main', $4)`,
    [REPOSITORY, repo.id, INSTALLATION_ID, liveSha],
  );
  const versions: Record<string, string> = {};
  for (const [path, source] of Object.entries(files)) {
    const parsed = parseFlow(source, path);
    if (!parsed.flow) throw new Error(`test flow ${path} is invalid: ${JSON.stringify(parsed)}`);
    const name = path.replace(/^.*\//, "").replace(/\.yml$/, "");
    const version = await saveFlowVersion(store, {
      sourceKind: "repository",
      repository: REPOSITORY,
      path,
      sha: liveSha,
      name,
      definition: parsed.flow,
      source,
    });
    versions[name] = version.id;
    await store.query(
      "INSERT INTO live_flows (repository, flow, path, version_id) VALUES ($1, $2, $3, $4)",
      [REPOSITORY, name, path, version.id],
    );
  }

  const github = createGitHubClient({
    appId: fake.appId,
    privateKey: fake.privateKey,
    baseUrl: fake.url,
    throttle: false,
  });
  // Mounted as the app mounts it; served on a server of its own.
  const [route] =
    apiPart({
      store,
      service: new BatonService({ store }),
      github,
      log: silentLogger,
      now: Date.now,
    }).routes ?? [];
  if (!route) throw new Error("the API part has no route");
  const server: Server = serveApiRoute(route);
  await new Promise<void>((done) => server.listen(0, "127.0.0.1", done));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  return {
    fake,
    url,
    liveSha,
    tokens,
    versions,
    async call(token, method, path, body) {
      const response = await fetch(new URL(path, url), {
        method,
        headers: {
          ...(token !== undefined ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return {
        status: response.status,
        body: (await response.json()) as Record<string, unknown> & { error?: ApiErrorBody },
      };
    },
    async stop() {
      server.closeAllConnections();
      await new Promise((done) => server.close(done));
      await fake.stop();
    },
  };
}

/**
 * End a test: every request GitHub would refuse is a bug, except `GET /user` with a token
 * GitHub does not know (401), which is what a bad token gets and what the test asked for.
 */
export function assertOnlyBadTokenRequests(fake: FakeGitHub): void {
  const others = fake.unexpected.filter(
    (request) => !(request.path.endsWith("/user") && request.status === 401),
  );
  fake.unexpected.splice(0, fake.unexpected.length, ...others);
  fake.assertNoUnexpectedRequests();
}
