/**
 * An exclusive, cross-process lock on a PGlite data directory: a file `lock` holding the
 * owner's pid (and whatever else it wants others to know, such as the URL of its API).
 *
 * Created with O_EXCL, so two processes cannot both create it. A lock whose pid is no
 * longer alive is stale (its process crashed) and is taken over. What would change this:
 * data directories on network filesystems, where pids of other hosts mean nothing; the
 * file records the hostname so that a lock from another host is never taken over.
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { StoreLockedError } from "./database.js";

export interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
  /** The owner's HTTP API, when it serves one: where other CLI processes should go. */
  url?: string;
  [key: string]: unknown;
}

export interface DataDirLock {
  readonly file: string;
  /** Rewrite what the lock tells others (e.g. the URL once the HTTP server listens). */
  update(info: Partial<LockOwner>): void;
  release(): void;
}

export function lockFileOf(dataDir: string): string {
  return join(dataDir, "lock");
}

/** Who holds the data directory, or undefined when nobody (alive) does. */
export function readLockOwner(dataDir: string): LockOwner | undefined {
  const owner = readOwner(lockFileOf(dataDir));
  return owner && !isStale(owner) ? owner : undefined;
}

export function acquireDataDirLock(dataDir: string): DataDirLock {
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const file = lockFileOf(dataDir);
  let owner: LockOwner = {
    pid: process.pid,
    hostname: hostname(),
    startedAt: new Date().toISOString(),
  };
  for (let tries = 0; ; tries++) {
    try {
      writeFileSync(file, JSON.stringify(owner), { flag: "wx", mode: 0o600 });
      break;
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST" || tries >= 5) throw error;
    }
    const current = readOwner(file);
    if (current && !isStale(current)) {
      throw new StoreLockedError(dataDir, file, current.pid, current);
    }
    // Stale (or half-written by a process that died): remove it and try again. Another
    // process doing the same at the same moment is caught by O_EXCL on the next try.
    try {
      unlinkSync(file);
    } catch (error: unknown) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  let released = false;
  return {
    file,
    update(info) {
      owner = { ...owner, ...info, pid: process.pid };
      writeFileSync(file, JSON.stringify(owner));
    },
    release() {
      if (released) return;
      released = true;
      // Only remove our own lock (a stale-lock takeover may, in theory, have replaced it).
      if (readOwner(file)?.pid === process.pid) unlinkSync(file);
    },
  };
}

function readOwner(file: string): LockOwner | undefined {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error: unknown) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
  try {
    const parsed = JSON.parse(text) as LockOwner;
    return typeof parsed.pid === "number" ? parsed : undefined;
  } catch {
    return undefined; // half-written: treated as stale
  }
}

function isStale(owner: LockOwner): boolean {
  if (owner.hostname !== hostname()) return false;
  if (owner.pid === process.pid) return false; // this process holds it (opened twice)
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (error: unknown) {
    // EPERM: alive but someone else's; ESRCH: gone.
    return (error as NodeJS.ErrnoException).code === "ESRCH";
  }
}
