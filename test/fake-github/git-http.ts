/**
 * Git over HTTP for the fake GitHub: `git fetch`/`git clone` of
 * `<fake>/<owner>/<repo>.git`, as GitHub serves it, authenticated with an installation
 * token as basic auth (`x-access-token:<token>`). The fake's objects carry git's own
 * SHA-1s, so they are written as loose objects into a bare repository (refreshed at each
 * request), which git's own `git http-backend` serves (smart HTTP, fetch only).
 */
import { spawn } from "node:child_process";
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { join } from "node:path";
import { deflateSync } from "node:zlib";
import type { GitObjects } from "./git-objects.js";

/** `/<owner>/<repo>.git/<service path>`: what git asks for. */
export const GIT_HTTP_PATH = /^\/([^/]+)\/([^/]+?)\.git(\/(?:info\/refs|git-upload-pack))$/;

export interface GitHttpRepository {
  fullName: string;
  /** Branch name → commit SHA. */
  refs: ReadonlyMap<string, string>;
  defaultBranch: string;
}

export async function serveGitHttp(options: {
  request: IncomingMessage;
  response: ServerResponse;
  body: Buffer;
  url: URL;
  servicePath: string;
  repository: GitHttpRepository;
  objects: GitObjects;
  /** Where the bare repositories live (one per repository). */
  root: string;
}): Promise<void> {
  const { request, response, repository } = options;
  const dir = join(options.root, `${repository.fullName.replace("/", "__")}.git`);
  materialise(dir, repository, options.objects);
  const child = spawn("git", ["http-backend"], {
    env: {
      PATH: process.env.PATH,
      GIT_PROJECT_ROOT: options.root,
      GIT_HTTP_EXPORT_ALL: "1",
      PATH_INFO: `/${repository.fullName.replace("/", "__")}.git${options.servicePath}`,
      QUERY_STRING: options.url.search.replace(/^\?/, ""),
      REQUEST_METHOD: request.method ?? "GET",
      CONTENT_TYPE: request.headers["content-type"] ?? "",
      CONTENT_LENGTH: String(options.body.length),
      REMOTE_USER: "x-access-token",
      REMOTE_ADDR: request.socket.remoteAddress ?? "",
      ...(request.headers["git-protocol"]
        ? { GIT_PROTOCOL: String(request.headers["git-protocol"]) }
        : {}),
    },
    stdio: ["pipe", "pipe", "pipe"],
  });
  child.stdin.end(options.body);
  const chunks: Buffer[] = [];
  child.stdout.on("data", (chunk: Buffer) => chunks.push(chunk));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const output = Buffer.concat(chunks);
  const split = output.indexOf("\r\n\r\n");
  if (code !== 0 || split === -1) {
    response.writeHead(500, { "content-type": "text/plain" }).end("git http-backend failed");
    return;
  }
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of output.subarray(0, split).toString("utf8").split("\r\n")) {
    const colon = line.indexOf(":");
    if (colon === -1) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (name.toLowerCase() === "status") status = Number(value.split(" ")[0]);
    else headers[name] = value;
  }
  response.writeHead(status, headers).end(output.subarray(split + 4));
}

/** Write every object the fake knows that the bare repository lacks, and the branches. */
function materialise(dir: string, repository: GitHttpRepository, objects: GitObjects): void {
  if (!existsSync(dir)) {
    execFileSync("git", ["init", "-q", "--bare", dir]);
    // GitHub lets a fetch ask for any commit by SHA (a runner fetches exactly the run's).
    execFileSync("git", ["-C", dir, "config", "uploadpack.allowAnySHA1InWant", "true"]);
  }
  for (const object of objects.all()) {
    const path = join(dir, "objects", object.sha.slice(0, 2), object.sha.slice(2));
    if (existsSync(path)) continue;
    mkdirSync(join(dir, "objects", object.sha.slice(0, 2)), { recursive: true });
    const body = objects.raw(object.sha);
    writeFileSync(
      path,
      deflateSync(Buffer.concat([Buffer.from(`${object.type} ${body.length}\0`), body])),
    );
  }
  for (const [branch, sha] of repository.refs) {
    const ref = join(dir, "refs", "heads", branch);
    mkdirSync(join(ref, ".."), { recursive: true });
    writeFileSync(ref, `${sha}\n`);
  }
  writeFileSync(join(dir, "HEAD"), `ref: refs/heads/${repository.defaultBranch}\n`);
}
