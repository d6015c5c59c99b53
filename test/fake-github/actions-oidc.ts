/**
 * The fake's GitHub Actions OIDC issuer, as on GitHub Enterprise Server
 * (`<host>/_services/token`): its public keys at `/.well-known/jwks`, and the endpoint a
 * job's `ACTIONS_ID_TOKEN_REQUEST_URL` names, which gives a job of a workflow run a signed
 * token for the audience it asks (what `core.getIDToken(audience)` calls).
 */
import {
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { FakeWorkflowRun } from "./actions.js";

export const OIDC_PATH = /^\/_services\/token\/(\.well-known\/jwks|id-token)$/;

export class FakeActionsOidc {
  readonly #privateKey: KeyObject;
  readonly #jwk: Record<string, unknown>;
  readonly #kid = randomBytes(8).toString("hex");
  /** Request tokens given to jobs, by token: which run they are of. */
  readonly #jobs = new Map<string, FakeWorkflowRun>();

  constructor(
    private readonly baseUrl: () => string,
    private readonly now: () => number,
  ) {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    this.#privateKey = createPrivateKey(privateKey.export({ type: "pkcs8", format: "pem" }));
    this.#jwk = {
      ...publicKey.export({ format: "jwk" }),
      kid: this.#kid,
      alg: "RS256",
      use: "sig",
    };
  }

  get issuer(): string {
    return `${this.baseUrl()}/_services/token`;
  }

  /** The environment GitHub's runner gives a job of `run` whose workflow has `id-token: write`. */
  jobEnvironment(run: FakeWorkflowRun): Record<string, string> {
    const token = `oidc_${randomBytes(16).toString("hex")}`;
    this.#jobs.set(token, run);
    return {
      ACTIONS_ID_TOKEN_REQUEST_URL: `${this.issuer}/id-token?api-version=2.0`,
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: token,
    };
  }

  /** A token as GitHub signs them, with any claims changed (for tests of refusals). */
  mint(run: FakeWorkflowRun, audience: string, overrides: Record<string, unknown> = {}): string {
    const now = Math.floor(this.now() / 1000);
    const [owner = ""] = run.repository.split("/");
    const claims = {
      jti: randomBytes(8).toString("hex"),
      sub: `repo:${run.repository}:ref:refs/heads/${run.ref}`,
      aud: audience,
      ref: `refs/heads/${run.ref}`,
      sha: run.headSha,
      repository: run.repository,
      repository_owner: owner,
      run_id: String(run.id),
      run_attempt: "1",
      actor: "octocat",
      workflow: run.name,
      workflow_ref: `${run.repository}/${run.path}@refs/heads/${run.ref}`,
      event_name: "workflow_dispatch",
      iss: this.issuer,
      nbf: now - 5,
      iat: now,
      exp: now + 300,
      ...overrides,
    };
    const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
    const body = `${encode({ alg: "RS256", typ: "JWT", kid: this.#kid })}.${encode(claims)}`;
    return `${body}.${sign("RSA-SHA256", Buffer.from(body), this.#privateKey).toString("base64url")}`;
  }

  /** Answer a request under `/_services/token/`. */
  serve(request: IncomingMessage, response: ServerResponse, url: URL, which: string): void {
    const json = (status: number, body: unknown) => {
      response.writeHead(status, { "content-type": "application/json" });
      response.end(JSON.stringify(body));
    };
    if (request.method !== "GET") return json(405, { message: "Method Not Allowed" });
    if (which === ".well-known/jwks") return json(200, { keys: [this.#jwk] });
    const token = /^Bearer (\S+)$/.exec(request.headers.authorization ?? "")?.[1] ?? "";
    const run = this.#jobs.get(token);
    if (!run) return json(401, { message: "Bad credentials" });
    json(200, { value: this.mint(run, url.searchParams.get("audience") ?? this.baseUrl()) });
  }
}
