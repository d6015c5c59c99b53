/**
 * What the tests need beyond `npm ci`, and the command that installs each (Debian and
 * Ubuntu package names: what CI runs on). Postgres is not here: the runner starts its own
 * (test/helpers/test-postgres-server.ts). The runner checks these before the first test and
 * names what is missing in one line each, at the start and again at the end; the suites that
 * need a missing one fail with the same line. None is skipped. .ci/run and the README's test
 * section name the same commands.
 */
import { existsSync } from "node:fs";

export interface Requirement {
  path: string;
  what: string;
  neededBy: string;
  install: string;
}

export const OPENSSH_SERVER: Requirement = {
  path: "/usr/sbin/sshd",
  what: "an OpenSSH server",
  neededBy: "the SSH executor's tests (test/runner-ssh, test/runners) start private ones",
  install: "apt-get update && apt-get install -y openssh-server",
};

export const REQUIREMENTS: readonly Requirement[] = [OPENSSH_SERVER];

export function missingRequirements(
  requirements: readonly Requirement[] = REQUIREMENTS,
): Requirement[] {
  return requirements.filter((requirement) => !existsSync(requirement.path));
}

/** One line: what is missing, who needs it, and the command (as root) that installs it. */
export function missingLine(requirement: Requirement): string {
  return (
    `missing ${requirement.path} (${requirement.what}): ${requirement.neededBy}. ` +
    `Install it as root with: ${requirement.install}`
  );
}
