/**
 * A stand-in for a coding-agent CLI (`claude -p {prompt}`): prints a transcript on
 * stderr, edits a file in its working directory as the prompt asks, and prints its final
 * message on stdout.
 *
 *   node dist/test/runners/fake-agent.js <prompt> [max-turns]
 */
import { writeFileSync } from "node:fs";

const [prompt = "", turns = ""] = process.argv.slice(2);
process.stderr.write(
  `[fake-agent] prompt: ${prompt}\n[fake-agent] turns allowed: ${turns || "unlimited"}\n`,
);
writeFileSync("NOTES.md", `# Notes\n\nAsked: ${prompt}\n`);
process.stderr.write("[fake-agent] wrote NOTES.md\n");
process.stdout.write(`Done: I wrote NOTES.md for "${prompt}".\n`);
