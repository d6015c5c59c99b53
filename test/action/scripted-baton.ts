/**
 * A real HTTP server playing Baton for the action's tests: it expects a script of requests,
 * in order, answers each as scripted, and records anything else as unexpected (answered
 * 500, so that the action fails too). `assertDone` fails a test that left a scripted
 * request unsent or made one that was not scripted.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface ExpectedRequest {
  method: "GET" | "POST";
  path: string;
  /** The exact Authorization header. */
  authorization: string;
  /** The parsed JSON body, compared deeply; absent for a GET. */
  body?: unknown;
  answer: { status: number; body: unknown; headers?: Record<string, string> };
}

export interface ReceivedRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  body: unknown;
}

export class ScriptedBaton {
  readonly received: ReceivedRequest[] = [];
  readonly problems: string[] = [];
  private readonly script: ExpectedRequest[] = [];
  private readonly server: Server = createServer((request, response) => {
    readBody(request)
      .then((body) => {
        const answer = this.answer({
          method: request.method ?? "",
          path: request.url ?? "",
          authorization: request.headers.authorization,
          body,
        });
        response.writeHead(answer.status, {
          "content-type": "application/json",
          ...answer.headers,
        });
        response.end(JSON.stringify(answer.body));
      })
      .catch((error: unknown) => {
        this.problems.push(`reading a request failed: ${String(error)}`);
        response.writeHead(500).end();
      });
  });

  private constructor() {}

  static async start(): Promise<ScriptedBaton> {
    const baton = new ScriptedBaton();
    await new Promise<void>((resolve) => baton.server.listen(0, "127.0.0.1", resolve));
    return baton;
  }

  /** Baton's base URL, as a step token or BATON_URL would give it. */
  get url(): string {
    const { port } = this.server.address() as AddressInfo;
    return `http://127.0.0.1:${port}`;
  }

  expect(...requests: ExpectedRequest[]): this {
    this.script.push(...requests);
    return this;
  }

  private answer(request: ReceivedRequest): ExpectedRequest["answer"] {
    this.received.push(request);
    const expected = this.script.shift();
    const seen = `${request.method} ${request.path}`;
    if (expected === undefined) {
      this.problems.push(`unexpected request ${seen}`);
      return {
        status: 500,
        body: { error: { code: "unexpected", message: `not scripted: ${seen}` } },
      };
    }
    const mismatch: string[] = [];
    if (request.method !== expected.method || request.path !== expected.path)
      mismatch.push(`expected ${expected.method} ${expected.path}`);
    if (request.authorization !== expected.authorization)
      mismatch.push(
        `Authorization was '${request.authorization}', expected '${expected.authorization}'`,
      );
    try {
      assert.deepEqual(request.body, expected.body);
    } catch {
      mismatch.push(
        `body ${JSON.stringify(request.body)}, expected ${JSON.stringify(expected.body)}`,
      );
    }
    if (mismatch.length > 0) {
      this.problems.push(`${seen}: ${mismatch.join("; ")}`);
      return { status: 500, body: { error: { code: "unexpected", message: mismatch.join("; ") } } };
    }
    return expected.answer;
  }

  /** Every scripted request was made, as scripted, and nothing else. */
  assertDone(): void {
    assert.deepEqual(this.problems, [], "requests that did not match the script");
    assert.deepEqual(
      this.script.map((request) => `${request.method} ${request.path}`),
      [],
      "scripted requests that were never made",
    );
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve, reject) =>
      this.server.close((error) => (error ? reject(error) : resolve())),
    );
  }
}

async function readBody(request: IncomingMessage): Promise<unknown> {
  let text = "";
  for await (const chunk of request) text += String(chunk);
  return text === "" ? undefined : (JSON.parse(text) as unknown);
}

/** A step token as Baton shapes it; the signature is not checked by the action. */
export function stepToken(payload: {
  url: string;
  run: string;
  step: string;
  attempt?: number;
  exp?: number;
}): string {
  const body = { attempt: 1, exp: Math.floor(Date.now() / 1000) + 3600, ...payload };
  const encoded = Buffer.from(JSON.stringify(body)).toString("base64url");
  return `bst1.${encoded}.${Buffer.from("not-a-real-signature").toString("base64url")}`;
}
