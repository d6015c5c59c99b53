/**
 * A stand-in for a coding-agent CLI (`claude -p {prompt}`): prints a transcript on
 * stderr, edits a file in its working directory as the prompt asks, and prints its final
 * message on stdout. A prompt that says "commit" makes it commit on a branch of its own.
 *
 *   node dist/test/runners/fake-agent.js <prompt> [max-turns]
 */
import { execFileSync } from "node:child_process";
import { writeFileSync } from "node:fs";

const [prompt = "", turns = ""] = process.argv.slice(2);
process.stderr.write(
  `[fake-agent] prompt: ${prompt}\n[fake-agent] turns allowed: ${turns || "unlimited"}\n`,
);
writeFileSync("NOTES.md", `# Notes\n\nAsked: ${prompt}\n`);
process.stderr.write("[fake-agent] wrote NOTES.md\n");
if (prompt.includes("commit")) {
  // Like an agent that opens a pull request: a branch of its own, and a commit on it.
  const git = (...args: string[]) => execFileSync("git", args, { stdio: "ignore" });
  git("checkout", "-q", "-b", "agent/notes");
  git("add", "NOTES.md");
  git("-c", "user.name=agent", "-c", "user.email=agent@localhost", "commit", "-q", "-m", "notes");
  process.stderr.write("[fake-agent] committed on agent/notes\n");
}
process.stdout.write(`Done: I wrote NOTES.md for "${prompt}".\n`);
