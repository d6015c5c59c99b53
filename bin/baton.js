#!/usr/bin/env node
// The `baton` command. `npm ci` compiles the TypeScript sources to dist/ (the `prepare`
// script); this shim only wires the process to the compiled CLI.
import { main } from "../dist/app/cli/main.js";

process.exitCode = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
