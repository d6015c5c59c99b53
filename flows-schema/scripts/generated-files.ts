/**
 * The generated files and their text, formatted as the repository's Prettier config
 * would: shared by `generate.ts` (which writes them) and the staleness test (which
 * compares them).
 */
import { format } from "prettier";
import { renderJsonSchema, renderReadme } from "../render-reference.js";

/** Keep in step with .prettierrc.json. */
const PRETTIER = { printWidth: 100 } as const;

export async function generatedFiles(
  template: string,
  examples: string[],
): Promise<Record<string, string>> {
  return {
    "flows-schema/flow.schema.json": renderJsonSchema(),
    "flows-schema/README.md": await format(renderReadme(template, examples), {
      ...PRETTIER,
      parser: "markdown",
    }),
  };
}
