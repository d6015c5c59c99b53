/** Flow files for runtime tests, written into a fresh temporary directory. */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "../../app/runtime/log.js";

export async function writeFlows(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "baton-flows-"));
  for (const [name, source] of Object.entries(files)) await writeFile(join(dir, name), source);
  return dir;
}

export async function flowFile(
  dir: string,
  name: string,
): Promise<{ path: string; source: string }> {
  const path = join(dir, name);
  return { path, source: await readFile(path, "utf8") };
}

/** A logger that keeps warnings and errors (a test can assert there were none) and prints them. */
export function testLogger(
  print = process.env.BATON_TEST_LOG === "1",
): Logger & { problems: string[] } {
  const problems: string[] = [];
  const line = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    const text = `${level} ${message} ${JSON.stringify(fields, (_k, v: unknown) => (v instanceof Error ? v.stack : v))}`;
    if (level !== "info") problems.push(text);
    if (print || level === "error") process.stderr.write(`${text}\n`);
  };
  return { info: line("info"), warn: line("warn"), error: line("error"), problems };
}
