/**
 * `npm run schema`: writes flows-schema/flow.schema.json and flows-schema/README.md from
 * the zod schema, the README template and the example flows, and flows-schema/github-routes.ts
 * from GitHub's REST description (scripts/github-routes.ts). The only file in
 * flows-schema that does I/O. A test regenerates both in memory and fails when the
 * committed files are stale.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { generatedFiles } from "./generated-files.js";
import { GITHUB_ROUTES_FILE, readOpenApi, renderGithubRoutes } from "./github-routes.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

async function main(): Promise<void> {
  const template = await readFile(join(ROOT, "flows-schema/scripts/README.template.md"), "utf8");
  const folder = join(ROOT, "examples/flows");
  const names = (await readdir(folder)).filter((name) => name.endsWith(".yml")).sort();
  const examples = await Promise.all(names.map((name) => readFile(join(folder, name), "utf8")));
  for (const [path, text] of Object.entries(await generatedFiles(template, examples))) {
    await writeFile(join(ROOT, path), text);
    process.stdout.write(`wrote ${path}\n`);
  }
  const { doc, version } = readOpenApi();
  await writeFile(join(ROOT, GITHUB_ROUTES_FILE), await renderGithubRoutes(doc, version));
  process.stdout.write(`wrote ${GITHUB_ROUTES_FILE}\n`);
}

await main();
