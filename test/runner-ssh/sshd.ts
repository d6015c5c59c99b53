/**
 * A real OpenSSH server for the SSH executor's tests: started on a free loopback port with
 * its own configuration, host key and authorized key in a temporary directory, as the
 * current user, in the foreground (-D -e) so that the test owns the process.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { missingLine, OPENSSH_SERVER } from "../helpers/requirements.js";
import { freePort } from "../helpers/free-port.js";

const SSHD = OPENSSH_SERVER.path;

export interface TestSshd {
  port: number;
  username: string;
  /** `SHA256:…`, as ssh-keygen -lf prints it. */
  hostKeyFingerprint: string;
  userKeyPath: string;
  /** A scratch directory for the tests. */
  dir: string;
  /** The per-connection sshd processes (not the listener): killing them drops connections. */
  connectionProcesses(): number[];
  stop(): Promise<void>;
}

export async function startSshd(): Promise<TestSshd> {
  if (!existsSync(SSHD)) throw new Error(missingLine(OPENSSH_SERVER));
  const dir = await mkdtemp(join(tmpdir(), "baton-sshd-"));
  const keygen = (file: string, passphrase = "") =>
    execFileSync("ssh-keygen", [
      "-q",
      "-t",
      "ed25519",
      "-N",
      passphrase,
      "-C",
      "baton-test",
      "-f",
      file,
    ]);
  keygen(join(dir, "host_ed25519"));
  keygen(join(dir, "user_ed25519"));
  writeFileSync(join(dir, "authorized_keys"), readFileSync(join(dir, "user_ed25519.pub")));
  const hostKeyFingerprint = (
    execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "host_ed25519.pub")], {
      encoding: "utf8",
    }).split(" ")[1] ?? ""
  ).trim();
  // sshd running as root insists on its privilege separation directory.
  if (process.getuid?.() === 0) mkdirSync("/run/sshd", { recursive: true, mode: 0o755 });

  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const config = join(dir, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${join(dir, "host_ed25519")}`,
        `PidFile ${join(dir, "sshd.pid")}`,
        `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
        "UsePAM no",
        "StrictModes no",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "PermitRootLogin prohibit-password",
        `AllowUsers ${userInfo().username}`,
        "LogLevel VERBOSE",
        "",
      ].join("\n"),
    );
    const child = spawn(SSHD, ["-D", "-e", "-f", config], { stdio: ["ignore", "ignore", "pipe"] });
    const listening = await waitForListening(child);
    if (listening === true) {
      return {
        port,
        username: userInfo().username,
        hostKeyFingerprint,
        userKeyPath: join(dir, "user_ed25519"),
        dir,
        connectionProcesses: () => descendantsNamed(child.pid ?? -1, "sshd"),
        stop: async () => {
          for (const pid of descendantsNamed(child.pid ?? -1, "sshd")) killQuietly(pid);
          if (child.exitCode === null && child.signalCode === null) {
            const exited = new Promise((resolve) => child.once("exit", resolve));
            child.kill("SIGKILL");
            await exited;
          }
          await rm(dir, { recursive: true, force: true });
        },
      };
    }
    if (attempt >= 5 || !/Address already in use/.test(listening)) {
      await rm(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start:\n${listening}`);
    }
  }
}

/** True once sshd listens, or what it printed before it exited. */
function waitForListening(child: ChildProcess): Promise<true | string> {
  return new Promise((resolve) => {
    let output = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      resolve(`no "Server listening" within 10 s:\n${output}`);
    }, 10_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (text: string) => {
      output += text;
      if (/Server listening on/.test(output)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      resolve(`exited with ${code ?? signal}:\n${output}`);
    });
  });
}

/** Descendants of `pid` whose command is `name`, found through /proc (children files). */
function descendantsNamed(pid: number, name: string): number[] {
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of childrenOf(parent)) {
      if (commandOf(child) === name) {
        found.push(child);
        visit(child);
      }
    }
  };
  visit(pid);
  return found;
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8")
      .split(" ")
      .filter((field) => field.trim() !== "")
      .map(Number);
  } catch {
    return [];
  }
}

function commandOf(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

/** Whether a process exists and is not a zombie (zombies have stopped running). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

function killQuietly(pid: number): void {
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    // Gone already.
  }
}
