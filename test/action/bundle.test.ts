import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { bundleAction, repoRoot } from "../../action/scripts/bundle.js";

test("the committed action/dist is what action/src bundles to, byte for byte", async () => {
  const files = await bundleAction();
  assert.deepEqual(Object.keys(files).sort(), ["action/dist/index.js", "action/dist/package.json"]);
  for (const [path, text] of Object.entries(files)) {
    let committed: string | undefined;
    try {
      committed = readFileSync(join(repoRoot, path), "utf8");
    } catch {
      committed = undefined;
    }
    assert.ok(
      committed === text,
      `action/dist is stale: run \`npm run action\` and commit it (${path} differs)`,
    );
  }
});

test("bundling twice gives the same text (the committed bundle does not churn)", async () => {
  assert.deepEqual(await bundleAction(), await bundleAction());
});
