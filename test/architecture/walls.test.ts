/**
 * The walls of docs/architecture.md that a grep can see: SQL lives in app/store only, and
 * nothing outside app/runtime imports the runtime's internals (only app/runtime/index.js).
 * Reads the sources (app/**\/*.ts) from the repository, wherever the compiled test runs.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { test } from "node:test";

const root = process.cwd();

function sources(dir: string): string[] {
  return readdirSync(join(root, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return sources(path);
    return entry.name.endsWith(".ts") ? [path] : [];
  });
}

const SQL_KEYWORDS =
  /`[^`]*\b(SELECT\s+[\s\S]*?\bFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|SAVEPOINT)\b/;

test("no SQL outside app/store", () => {
  const found = sources("app")
    .map((path) => relative(root, join(root, path)))
    .filter((path) => !path.startsWith("app/store/"))
    .filter((path) => {
      const text = readFileSync(join(root, path), "utf8");
      return /\.query\s*[<(]/.test(text) || SQL_KEYWORDS.test(text);
    });
  assert.deepEqual(found, [], `SQL outside app/store in: ${found.join(", ")}`);
});

const RUNTIME_IMPORT = /from\s+["']((?:\.\.\/)+(?:app\/)?runtime\/([\w-]+)\.js)["']/g;

test("nothing outside app/runtime imports its internals (only app/runtime/index.js)", () => {
  const found: string[] = [];
  for (const dir of ["app"]) {
    for (const path of sources(dir)) {
      if (path.startsWith("app/runtime/")) continue;
      const text = readFileSync(join(root, path), "utf8");
      for (const match of text.matchAll(RUNTIME_IMPORT)) {
        if (match[2] !== "index") found.push(`${path} → ${match[1]}`);
      }
    }
  }
  assert.deepEqual(found, [], `runtime internals imported in: ${found.join(", ")}`);
});
