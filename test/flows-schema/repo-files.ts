/** Paths into the repository from compiled tests (dist/test/flows-schema/*.js). */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";

export const REPO_ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

/** The *.yml files of a repository folder, sorted, as [relative path, text]. */
export function yamlFiles(folder: string): [string, string][] {
  return readdirSync(repoPath(folder))
    .filter((name) => name.endsWith(".yml"))
    .sort()
    .map((name) => [`${folder}/${name}`, readFileSync(repoPath(folder, name), "utf8")]);
}
