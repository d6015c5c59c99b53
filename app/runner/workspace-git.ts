/**
 * git in a step's workspace: clone the run's repository at the run's commit (with the
 * short-lived token minted for the step), and tell what an agent changed.
 *
 * The token never appears on a command line (other users of the machine can read those):
 * it reaches git through GIT_CONFIG_COUNT/KEY/VALUE (git ≥ 2.31) as an HTTP header, for
 * this one invocation, and is not written to the workspace's .git/config.
 *
 * git gets the same environment a step starts from (step-env.ts, and what the runner's
 * configuration declares, e.g. a proxy), not the runner's own.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { minimalEnv } from "./step-env.js";

export interface CheckoutSpec {
  url: string;
  sha: string;
  token?: string;
}

export class GitError extends Error {
  constructor(
    readonly args: readonly string[],
    readonly stderr: string,
  ) {
    super(
      `git ${args[0] ?? ""} failed: ${stderr.trim().split("\n").slice(-3).join(" | ") || "no message"}`,
    );
    this.name = "GitError";
  }
}

/** A fixed identity for the commits Baton makes (the agent's baseline), none of the user's config. */
const IDENTITY = [
  "-c",
  "user.name=Baton",
  "-c",
  "user.email=baton@localhost",
  "-c",
  "commit.gpgsign=false",
];

export function git(
  cwd: string,
  args: readonly string[],
  extraEnv: Record<string, string> = {},
): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      [...args],
      {
        cwd,
        env: { ...minimalEnv(), GIT_TERMINAL_PROMPT: "0", ...extraEnv },
        maxBuffer: 16 * 1024 * 1024,
      },
      (error, stdout, stderr) => {
        if (error) reject(new GitError(args, String(stderr) || error.message));
        else resolve(String(stdout));
      },
    );
  });
}

/**
 * Fetch exactly the run's commit into the (empty) workspace and check it out, detached.
 * `env`: what the runner's configuration declares (a proxy, say). (Default: none)
 */
export async function checkoutCommit(
  workspace: string,
  spec: CheckoutSpec,
  env: Record<string, string> = {},
): Promise<void> {
  const auth: Record<string, string> = spec.token
    ? {
        GIT_CONFIG_COUNT: "1",
        GIT_CONFIG_KEY_0: "http.extraheader",
        GIT_CONFIG_VALUE_0: `AUTHORIZATION: basic ${Buffer.from(`x-access-token:${spec.token}`).toString("base64")}`,
      }
    : {};
  await git(workspace, ["init", "-q"], env);
  await git(workspace, ["fetch", "-q", "--depth", "1", "--no-tags", spec.url, spec.sha], {
    ...env,
    ...auth,
  });
  await git(workspace, ["checkout", "-q", "--detach", "FETCH_HEAD"], env);
}

/**
 * Before an agent starts: the workspace's commit to compare with afterwards. A workspace
 * that is not a repository (no checkout) becomes one, with everything in it committed.
 */
export async function baselineOf(workspace: string): Promise<string> {
  if (!existsSync(join(workspace, ".git"))) {
    await git(workspace, ["init", "-q"]);
    await git(workspace, ["add", "-A"]);
    await git(workspace, [...IDENTITY, "commit", "-q", "--allow-empty", "-m", "baseline (Baton)"]);
  }
  return (await git(workspace, ["rev-parse", "HEAD"])).trim();
}

export interface WorkspaceChanges {
  /** Files changed, added or deleted, committed or not, relative to the workspace. */
  files: string[];
  /** The branch checked out at the end (none when detached). */
  branch?: string;
  /** HEAD when the agent committed something. */
  commit?: string;
}

/** The branch checked out now (undefined when detached). */
export async function currentBranch(workspace: string): Promise<string | undefined> {
  const branch = (await git(workspace, ["rev-parse", "--abbrev-ref", "HEAD"])).trim();
  return branch === "HEAD" ? undefined : branch;
}

export async function changesSince(workspace: string, baseline: string): Promise<WorkspaceChanges> {
  const files = new Set<string>();
  const head = (await git(workspace, ["rev-parse", "HEAD"])).trim();
  if (head !== baseline) {
    for (const line of (await git(workspace, ["diff", "--name-only", baseline, head])).split("\n"))
      if (line !== "") files.add(line);
  }
  for (const line of (
    await git(workspace, ["status", "--porcelain", "-uall", "--no-renames"])
  ).split("\n")) {
    if (line.length > 3) files.add(line.slice(3).replace(/^"(.*)"$/, "$1"));
  }
  const branch = await currentBranch(workspace);
  return {
    files: [...files].sort(),
    ...(branch !== undefined ? { branch } : {}),
    ...(head !== baseline ? { commit: head } : {}),
  };
}
