/**
 * SSH hosts as a runner's configuration defines them. Flow files name a host
 * (`runs-on: { ssh: build-vm }`); the address, user, key and pinned host key live here,
 * on the runner, never in a flow.
 */
import { createHash } from "node:crypto";
import type { Json } from "../../engine/types.js";

export interface SshHostConfig {
  /** DNS name or IP address. */
  host: string;
  /** (Default: 22) */
  port?: number;
  username: string;
  /** The private key itself (OpenSSH, PEM or PPK). One of privateKey and privateKeyPath. */
  privateKey?: string | Buffer;
  /** A file holding the private key (`~/` is the home directory), read at each step, so a rotated key is picked up. */
  privateKeyPath?: string;
  /** For an encrypted private key. */
  passphrase?: string;
  /**
   * The host's key fingerprint(s), as `ssh-keygen -lf` prints them (`SHA256:…`). A host
   * presenting any other key is refused: that is how a man in the middle looks.
   * Get it from the host itself: `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub`.
   */
  hostKey?: string | string[];
  /**
   * Accept whatever key the host presents (each step logs the fingerprint it accepted).
   * Only for throwaway hosts on a trusted network. (Default: false: without `hostKey`,
   * connections are refused)
   */
  acceptAnyHostKey?: boolean;
  /** How long connecting and authenticating may take. (Default: 20000 ms) */
  connectTimeoutMs?: number;
  /** Between keepalive probes on a quiet connection; 0 turns them off. (Default: 10000 ms) */
  keepaliveIntervalMs?: number;
  /** Unanswered keepalive probes before the connection counts as lost. (Default: 3) */
  keepaliveCountMax?: number;
}

/** The OpenSSH fingerprint of a host key blob: `SHA256:` and unpadded base64. */
export function hostKeyFingerprint(key: Buffer): string {
  return `SHA256:${createHash("sha256").update(key).digest("base64").replace(/=+$/, "")}`;
}

/** The pinned fingerprints, in the form hostKeyFingerprint gives (prefix and padding optional in the config). */
export function pinnedFingerprints(config: SshHostConfig): string[] {
  const pins = config.hostKey === undefined ? [] : [config.hostKey].flat();
  return pins.map((pin) => {
    const bare = pin
      .trim()
      .replace(/^SHA256:/i, "")
      .replace(/=+$/, "");
    return `SHA256:${bare}`;
  });
}

/** The SSH host a step's `runs-on` names, if it names one (`runs-on: { ssh: <host> }`). */
export function sshTargetOf(spec: Json): string | undefined {
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) return undefined;
  const runsOn = spec["runs-on"];
  if (runsOn === null || typeof runsOn !== "object" || Array.isArray(runsOn)) return undefined;
  return typeof runsOn.ssh === "string" ? runsOn.ssh : undefined;
}
